"""YAML pipelines: scheduled batch jobs that validate, backtest, gate, retrain, forecast and record.

A pipeline file is validated against :class:`PipelineConfig` before anything runs
(:func:`load_config`), then :func:`run_pipeline` runs its steps and writes the outputs of one
``--as-of`` date atomically. The ``tsforecast run`` command wraps both; see ``pipelines/README.md``
for the file format and the examples shipped with the project.

Examples
--------
>>> from tsforecast.pipelines import AsOf, load_config, run_pipeline  # doctest: +SKIP
>>> config = load_config("pipelines/retrain_and_forecast.yaml", ["data.path=sales.csv"])  # doctest: +SKIP
>>> result = run_pipeline(config, AsOf.parse("2024-05-31"))  # doctest: +SKIP
>>> result.status, result.folder  # doctest: +SKIP
('success', PosixPath('outputs/retrain-and-forecast/2024-05-31'))
"""

from tsforecast.pipelines.data import AsOf
from tsforecast.pipelines.runner import STEPS, RunResult, run_pipeline
from tsforecast.pipelines.schema import ConfigError, PipelineConfig, load_config

__all__ = ["STEPS", "AsOf", "ConfigError", "PipelineConfig", "RunResult", "load_config", "run_pipeline"]
