"""Per-series value transforms, fitted on the training part of each series only (numpy only).

Every scaler maps a series ``y`` to ``z = (y - center) / scale`` per series, except ``"log"``, which
maps it to ``z = log(y)``. The recurrent forecasters then work on ``z`` relative to its recent level,
so any per-series shift of ``z`` cancels out; what the scaler decides is the *shape* of the space
the network sees: relative (log) changes, or additive changes in units of the series' size.

=========  ===============================================  ============================
kind       transform                                        fitted state per series
=========  ===============================================  ============================
log        ``log(y)``; needs every value > 0                none
level      ``y / mean(|y|)``: changes relative to the       scale
           series' typical size, the additive twin of log
standard   ``(y - mean) / std``                             center, scale
robust     ``(y - median) / IQR``                           center, scale
minmax     ``(y - min) / (max - min)``                      center, scale
none       ``y``                                            none
auto       ``log`` when every training value of every       resolved at fit
           series is > 0, else ``level``
=========  ===============================================  ============================

A zero spread (a constant series) falls back to a scale of 1. Missing values (NaN) are ignored when
fitting and stay NaN when transforming. The statistics are finite for finite values anywhere in the
float64 range (they are computed on the values divided by a power of two that bounds them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsforecast.exceptions import InvalidInputError

SCALERS = ("auto", "log", "level", "standard", "robust", "minmax", "none")

__all__ = ["SCALERS", "SeriesScaler", "resolve_kind"]


def resolve_kind(kind: str, values: list) -> str:
    """Resolve ``"auto"`` to ``"log"`` or ``"level"`` from the training values.

    Examples
    --------
    >>> import numpy as np
    >>> resolve_kind("auto", [np.array([1.0, 2.0])]), resolve_kind("auto", [np.array([0.0, 2.0])])
    ('log', 'level')
    """
    if kind not in SCALERS:
        raise InvalidInputError(f"scaler must be one of {SCALERS}; got {kind!r}.")
    if kind != "auto":
        return kind
    positive = all(np.nanmin(v) > 0 for v in values if np.isfinite(v).any())
    return "log" if positive else "level"


def _stats(kind: str, y: np.ndarray) -> tuple[float, float]:
    y = y[np.isfinite(y)]
    # Computed on y / 2**e, where 2**e bounds |y|, then scaled back: the squares of the standard
    # deviation and the sums of the means neither overflow (values near 1e300) nor underflow (near
    # 1e-300), and a power of two divides and multiplies exactly, so other data get the same bits.
    exponent = int(np.frexp(np.max(np.abs(y)))[1]) if y.size else 0
    y = np.ldexp(y, -exponent)
    if kind == "level":
        center, spread = 0.0, np.mean(np.abs(y))
    elif kind == "standard":
        center, spread = np.mean(y), np.std(y)
    elif kind == "robust":
        q25, center, q75 = np.percentile(y, [25, 50, 75])
        spread = q75 - q25
    elif kind == "minmax":
        center, spread = np.min(y), np.ptp(y)
    else:  # log, none: stateless
        return 0.0, 1.0
    center, spread = float(np.ldexp(center, exponent)), float(np.ldexp(spread, exponent))
    return center, spread if spread > 0 else 1.0


@dataclass
class SeriesScaler:
    """Per-series transform ``z = (y - center) / scale`` (or ``log y``).

    Parameters
    ----------
    kind : str
        One of :data:`SCALERS` other than ``"auto"`` (see :func:`resolve_kind`).

    Attributes
    ----------
    center, scale : np.ndarray of shape (n_series,)
        Fitted per-series statistics (0 and 1 for the stateless kinds).

    Examples
    --------
    >>> import numpy as np
    >>> train = [np.array([1.0, 3.0]), np.array([10.0, 30.0])]
    >>> scaler = SeriesScaler("level").fit(train)
    >>> [z.tolist() for z in scaler.transform(train)]
    [[0.5, 1.5], [0.5, 1.5]]
    >>> scaler.inverse(np.array([[1.0], [1.0]])).ravel().tolist()
    [2.0, 20.0]
    """

    kind: str
    center: np.ndarray | None = None
    scale: np.ndarray | None = None

    def fit(self, values: list, names: list | None = None) -> SeriesScaler:
        """Fit one center and scale per series from its (training) values (``names`` appear in errors)."""
        if self.kind == "log":
            _check_positive(values, names if names is not None else range(len(values)))
        stats = np.array([_stats(self.kind, np.asarray(v, dtype=np.float64)) for v in values])
        self.center, self.scale = stats[:, 0].copy(), stats[:, 1].copy()
        return self

    def subset(self, rows: np.ndarray) -> SeriesScaler:
        """The scaler of the series ``rows`` (in that order)."""
        return SeriesScaler(self.kind, self.center[rows], self.scale[rows])

    @staticmethod
    def concat(scalers: list) -> SeriesScaler:
        """One scaler holding the series of ``scalers`` one after the other."""
        return SeriesScaler(
            scalers[0].kind,
            np.concatenate([s.center for s in scalers]),
            np.concatenate([s.scale for s in scalers]),
        )

    def transform(self, values: list, names: list | None = None) -> list:
        """Transform each series with its own statistics (``names`` appear in error messages)."""
        if self.kind == "log":
            _check_positive(values, names if names is not None else range(len(values)))
            with np.errstate(invalid="ignore"):
                return [np.log(np.asarray(v, dtype=np.float64)) for v in values]
        return [
            (np.asarray(v, dtype=np.float64) - c) / s
            for v, c, s in zip(values, self.center, self.scale, strict=True)
        ]

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Map transformed forecasts of shape ``(n_series, ...)`` back to the data's units."""
        z = np.asarray(z, dtype=np.float64)
        if self.kind == "log":
            return np.exp(z)
        extra = (slice(None),) + (None,) * (z.ndim - 1)
        return z * self.scale[extra] + self.center[extra]

    def state(self) -> dict:
        """A JSON-friendly description (arrays as lists)."""
        return {"kind": self.kind, "center": self.center.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_state(cls, state: dict) -> SeriesScaler:
        """The scaler that :meth:`state` describes."""
        as_array = lambda x: np.asarray(x, dtype=np.float64)  # noqa: E731
        return cls(state["kind"], as_array(state["center"]), as_array(state["scale"]))


def _check_positive(values: list, names) -> None:
    for name, v in zip(names, values, strict=True):
        if np.nanmin(v) <= 0:
            # An unnamed pd.Series has the id None (the data layer's wording, repeated: numpy only here).
            label = "the unnamed series" if name is None else f"series {name!r}"
            raise InvalidInputError(
                f"{label} has values <= 0 (minimum {np.nanmin(v):g}) but the model works on "
                "log values (scaler='log', or 'auto' resolved to 'log' because every training value "
                "was positive). Use scaler='level', or refit on data that includes such values."
            )
