"""The fitted state of a recurrent forecaster, as one record (what ``fit`` sets and a model file holds)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from tsforecast.data import Panel
from tsforecast.nn.codec import PanelCodec
from tsforecast.nn.modules import RecurrentNetwork

__all__ = ["FittedState"]


@dataclass
class FittedState:
    """Everything a fitted recurrent forecaster holds besides its parameters.

    Set on an estimator by :meth:`~tsforecast.nn.forecaster.RecurrentForecaster.set_fitted_state`,
    the one door that ``fit`` and model loading both go through.

    Attributes
    ----------
    network : RecurrentNetwork
    codec : PanelCodec
    quantile_levels : tuple of float
    horizon : int
    history : pd.DataFrame
        One row per epoch (:class:`~tsforecast.epochs.EpochRecord` fields).
    panel : Panel
        The training panel.
    """

    network: RecurrentNetwork
    codec: PanelCodec
    quantile_levels: tuple
    horizon: int
    history: pd.DataFrame
    panel: Panel
