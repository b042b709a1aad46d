"""How messages name a series: by its id, or as the unnamed series (a ``pd.Series`` without a name)."""

from __future__ import annotations

import numpy as np

UNNAMED_SERIES_ID = "series"  # the id an unnamed series gets in long frames


def series_label(series_id) -> str:
    """``"series 'a'"`` for the id ``"a"``; ``"the unnamed series"`` for an unnamed ``pd.Series``.

    Examples
    --------
    >>> series_label("a"), series_label(np.int64(3)), series_label(None)
    ("series 'a'", 'series 3', 'the unnamed series')
    """
    if series_id is None:
        return "the unnamed series"
    if isinstance(series_id, np.generic):  # ids of a long frame's integer column: 3, not np.int64(3)
        series_id = series_id.item()
    return f"series {series_id!r}"
