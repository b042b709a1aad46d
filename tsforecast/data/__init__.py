"""Input validation, the internal panel form, file reading and writing, and dataset loaders.

The lowest layer above :mod:`tsforecast.exceptions`: numpy and pandas (pyarrow for
parquet, scipy only to recognise sparse input), nothing else of tsforecast. Files:
:mod:`tsforecast.data.io`; M4: :mod:`tsforecast.datasets`.
"""

from tsforecast.data.frames import from_panel, to_long
from tsforecast.data.frequency import future_index, infer_frequency
from tsforecast.data.panel import (
    MISSING_POLICIES,
    Columns,
    Layout,
    Panel,
    check_min_length,
    conform_missing,
    read_parquet_panel,
    time_axis_kind,
    to_panel,
)

__all__ = [
    "MISSING_POLICIES",
    "Columns",
    "Layout",
    "Panel",
    "check_min_length",
    "conform_missing",
    "from_panel",
    "future_index",
    "infer_frequency",
    "read_parquet_panel",
    "time_axis_kind",
    "to_long",
    "to_panel",
]
