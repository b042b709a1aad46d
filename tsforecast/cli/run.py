"""``tsforecast run``: run a YAML pipeline for one as-of date (what a cron job or an Airflow task calls)."""

from __future__ import annotations

import logging
from pathlib import Path

from tsforecast.cli import common

logger = logging.getLogger(__name__)

_DESCRIPTION = """\
Run a pipeline described in YAML: load, validate, backtest the model and the baselines on the latest
windows, quality gate, fit, forecast, evaluate (optional), write the outputs, record in MLflow.
The file is validated before anything runs. Outputs go atomically to <outputs.dir>/<as-of>/ with a
manifest.json; rerunning the same --as-of on the same data replaces them with identical files, except
run.json and the model file (they record when it ran and the training's epoch times). If the
retrained model is worse than the best baseline (or the current model, on the windows after its
training data) by more than the gate's margin, the previous model stays current, the baseline
forecast is written, and the exit code is 4. The model is registered in MLflow only at the end of a
successful run, and once per as-of date and inputs."""

_EPILOG = """\
examples:
  tsforecast run pipelines/m4_hourly.yaml
  tsforecast run pipelines/retrain_and_forecast.yaml --as-of 2024-05-31 --set data.path=sales.csv
  tsforecast run pipelines/retrain_and_forecast.yaml --set model.params.max_epochs=5 --check

  # crontab: every night at 02:00, for the previous day
  0 2 * * * cd /srv/forecasts && .venv/bin/tsforecast run pipelines/retrain_and_forecast.yaml \\
      --as-of "$(date -d yesterday +\\%F)" >> logs/nightly.log 2>&1

See pipelines/README.md for the file format."""


def add_parser(subparsers) -> None:
    """Register the ``run`` subcommand on an ``argparse`` subparsers object."""
    parser = common.add_command(
        subparsers,
        "run",
        help="run a YAML pipeline (scheduled batch job)",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        handler=run,
    )
    parser.add_argument("pipeline", help="pipeline YAML file")
    parser.add_argument(
        "--as-of",
        metavar="DATE",
        help="the date the run is for (YYYY-MM-DD or an ISO time stamp; default: today): names the "
        "outputs folder, and datetime data after it is left out; data that end too long before it "
        "stop the run with exit 3 (data.max_staleness)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field by its dotted path, value read as YAML (repeatable), e.g. "
        "model.params.hidden_size=32, model.params.learning_rate=1e-3, data.path=sales.csv, "
        "tracking.enabled=false",
    )
    parser.add_argument("--check", action="store_true", help="validate the pipeline and exit (nothing runs)")


def run(args) -> int:
    """Run the pipeline file as of ``--as-of`` (or only validate it, ``--check``) and print the report.

    Returns :attr:`ExitCode.OK`, or :attr:`ExitCode.GATE` when the run kept no model; errors
    propagate (the ``tsforecast`` command maps them to its exit codes).
    """
    from tsforecast.cli.exit_codes import ExitCode
    from tsforecast.pipelines import AsOf, load_config, run_pipeline

    config = load_config(args.pipeline, args.overrides)
    as_of = AsOf.parse(args.as_of)
    if args.check:
        print(f"{args.pipeline}: valid pipeline {config.name!r} (as of {as_of.label}).")
        return int(ExitCode.OK)
    logger.info("pipeline %s (%s), as of %s", config.name, args.pipeline, as_of.label)
    result = run_pipeline(config, as_of, progress=bool(args.progress))
    print(report(result, config))
    if result.status != "success":
        return int(ExitCode.GATE)
    return int(ExitCode.OK)


def report(result, config) -> str:
    """What a person reads at the end of a run: tables, the gate's verdict, where things went."""
    from tsforecast.pipelines.evaluation import text_table

    manifest = result.manifest
    data = manifest["data"]
    backtest = manifest["backtest"]
    lines = [
        f"pipeline {config.name}, as of {manifest['as_of']}: {result.status}",
        f"data: {data['n_series']} series, {data['n_rows']} observations, "
        f"from {data['first']} to {data['last']}",
        "",
        f"backtest: the last {backtest['n_windows']} window(s) of {backtest['horizon']} steps of each series",
        text_table(result.tables["comparison"]),
    ]
    if result.gate is not None:
        lines += ["", result.gate.describe()]
    current = manifest.get("current_model")
    if current is not None:
        verdict = "" if current["compared"] else " not compared"
        lines.append(f"current model {current['source']}{verdict}: {current['reason']}")
    if "evaluation" in result.tables:
        title = "test set: forecasts from the end of the history scored on the held-out actuals"
        if "m4_method" in result.tables["evaluation"]:
            title += "; m4_* columns are the published M4 figures of the same method"
            if config.data.kind == "m4" and config.data.limit_series:
                title += f" (all series; this run: the first {config.data.limit_series})"
        lines += ["", title, text_table(result.tables["evaluation"])]
    if "reference" in result.tables:
        lines += ["", "published M4 results for reference:", text_table(result.tables["reference"])]
    folder = Path(result.folder)
    files = sorted(p.name for p in folder.iterdir())
    lines += ["", f"outputs:  {folder}/  ({', '.join(files)})", f"manifest: {folder / 'manifest.json'}"]
    mlflow = result.tracking
    if "run_id" in mlflow:
        lines.append(f"MLflow:   run {mlflow['run_id']} in {mlflow['tracking_uri']}")
        if "fit_run_id" in mlflow:
            model = mlflow.get("registered_model_uri") or mlflow["model_uri"]
            version = f" (version {mlflow['registered_version']})" if "registered_version" in mlflow else ""
            lines.append(f"model:    {model}{version}, training curves in run {mlflow['fit_run_id']}")
    if result.status != "success":
        lines.append("the retrained model was NOT kept: the previous model stays current.")
    return "\n".join(lines)
