"""Training data of a tracked fit: summary parameters, an ``mlflow.data`` record, an input example."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import pandas as pd

from tsforecast.data import Columns, to_long, to_panel

_MAX_PARAM_CHARS = 500
_COLUMN_DEFAULTS = {"id_col": "unique_id", "time_col": "ds", "target_col": "y"}


class TrainingData:
    """The history given to ``fit``, validated: a panel, of which only small parts are laid out long.

    A panel of millions of rows is never turned into one long frame here: MLflow gets its digest
    (:meth:`Panel.digest`), its row count and the schema of one series.

    Parameters
    ----------
    y : pd.Series, pd.DataFrame, Panel or path
        The training history in any layout the forecasters accept.
    fit_params : dict
        The keyword arguments of ``fit`` (``freq`` and the long layout's column names).
    name : str, optional
        Dataset name in MLflow (default ``"y"``).

    Raises
    ------
    InvalidInputError
        If ``y`` is unusable (the same validation ``fit`` makes, interior NaN allowed).
    """

    def __init__(self, y, fit_params, name=None):
        self.columns = Columns(*(fit_params.get(key, default) for key, default in _COLUMN_DEFAULTS.items()))
        panel = to_panel(y, freq=fit_params.get("freq"), columns=self.columns, missing="keep")
        if panel.layout.kind == "series":
            panel = replace(panel, ids=["series" if panel.ids[0] is None else panel.ids[0]])
        self.name = name or "y"
        self.panel = panel.replace_layout(replace(panel.layout, kind="long"))

    def recent(self, n_series: int, steps: int) -> pd.DataFrame:
        """The last ``steps`` rows of the first ``n_series`` series, laid out long (for the plots)."""
        return self._long(self.panel.select(range(min(n_series, self.panel.n_series))).tail(steps))

    def _long(self, panel) -> pd.DataFrame:
        frame = to_long(panel)
        if isinstance(frame[self.columns.time_col].dtype, pd.PeriodDtype):
            frame[self.columns.time_col] = frame[self.columns.time_col].dt.to_timestamp()
        return frame

    def summary(self) -> dict:
        """Name, series count, length summary, frequency and time span."""
        lengths = self.panel.lengths
        return {
            "name": self.name,
            "n_series": self.panel.n_series,
            "n_observations": int(lengths.sum()),
            "length_min": int(lengths.min()),
            "length_median": float(np.median(lengths)),
            "length_max": int(lengths.max()),
            "freq": getattr(self.panel.freq, "freqstr", self.panel.freq),
            "start": min(index[0] for index in self.panel.index),
            "end": max(index[-1] for index in self.panel.index),
        }

    def log(self) -> None:
        """Log the summary as ``data.*`` parameters and the history as the run's training input."""
        import mlflow

        mlflow.log_params({f"data.{key}": param_value(value) for key, value in self.summary().items()})
        with quiet_integer_hint():
            mlflow.log_input(_panel_dataset(self), context="training")

    def example(self) -> pd.DataFrame:
        """The first series' history: a valid model input of realistic length."""
        return self._long(self.panel.select([0]))


def _panel_dataset(data: TrainingData):
    """An ``mlflow.data`` pandas dataset with the schema of one series and the size of the panel.

    MLflow's pandas dataset takes its schema and profile from the frame it holds; holding the first
    series keeps the schema, and the profile is the whole panel's.
    """
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.pandas_dataset import PandasDataset
    from mlflow.tracking.context import registry

    rows = int(data.panel.lengths.sum())

    class PanelDataset(PandasDataset):
        @property
        def profile(self):
            return {"num_rows": rows, "num_elements": rows * self.df.shape[1]}

    source = CodeDatasetSource(tags=registry.resolve_tags())
    return PanelDataset(
        data.example(),
        source,
        targets=data.columns.target_col,
        name=data.name,
        digest=data.panel.digest()[:8],
    )


@contextmanager
def quiet_integer_hint():
    """Silence MLflow's hint that integer columns cannot hold missing values.

    Integer columns here are time steps and series ids, which are never missing.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer", UserWarning)
        yield


def param_value(value) -> str:
    """A parameter as MLflow keeps it, a string: callables by name, long values cut."""
    if isinstance(value, (list, tuple)):
        text = "[" + ", ".join(param_value(item) for item in value) + "]"
    elif callable(value) and not isinstance(value, type):
        text = getattr(value, "__qualname__", type(value).__qualname__)
    else:
        text = str(value)
    return text[:_MAX_PARAM_CHARS]
