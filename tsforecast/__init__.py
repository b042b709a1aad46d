"""tsforecast: recurrent-network forecasting with honest statistical baselines.

The package is a facade: each public name (``tsforecast.Naive2``, ``tsforecast.backtest``,
``tsforecast.metrics``, ...) is imported from its module on first use, so ``import tsforecast``
itself loads no layer. Only the recurrent forecasters, ``load``, ``nn`` and ``diagnostics`` import
torch.
"""

from importlib import import_module

__version__ = "0.1.0"

_LAZY = {
    "Naive": "tsforecast.baselines",
    "SeasonalNaive": "tsforecast.baselines",
    "Naive2": "tsforecast.baselines",
    "SES": "tsforecast.baselines",
    "Holt": "tsforecast.baselines",
    "DampedHolt": "tsforecast.baselines",
    "Theta": "tsforecast.baselines",
    "AutoETS": "tsforecast.baselines",
    "AutoARIMA": "tsforecast.baselines",
    "backtest": "tsforecast.backtesting",
    "compare": "tsforecast.backtesting",
    "LSTMForecaster": "tsforecast.nn.estimators",
    "GRUForecaster": "tsforecast.nn.estimators",
    "RNNForecaster": "tsforecast.nn.estimators",
    "load": "tsforecast.nn.estimators",
    "tune": "tsforecast.tuning",
    "takes_covariates": "tsforecast.base",
    "has_own_intervals": "tsforecast.base",
    "calendar_covariates": "tsforecast.data.calendar",
    "ConformalIntervals": "tsforecast.conformal",
    "plot_forecasts": "tsforecast.plotting",
}
_MODULES = {
    name: f"tsforecast.{name}"
    for name in (
        "backtesting", "metrics", "datasets", "baselines", "data", "exceptions", "diagnostics",
        "tracking", "tuning", "nn", "conformal", "plotting",
    )
}  # fmt: skip


def __getattr__(name):
    # Lazy so that `import tsforecast` (and the baselines) never pull in torch.
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    if name in _MODULES:
        return import_module(_MODULES[name])
    raise AttributeError(f"module 'tsforecast' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])


__all__ = ["__version__", *_LAZY]
