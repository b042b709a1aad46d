"""What a tuning job returns: the study, the best parameters and refitted model, a leaderboard."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from sklearn.base import clone

from tsforecast.data import Columns, Layout, to_long, to_panel
from tsforecast.exceptions import InvalidInputError, InvalidParameterError
from tsforecast.metrics import evaluate, interval_levels, owa, pooled_coverage
from tsforecast.tuning.validation import Validation

TUNED, DEFAULT = "tuned", "default"


@dataclass
class TuningResult:
    """The outcome of :func:`~tsforecast.tuning.tune`.

    Attributes
    ----------
    study : optuna.Study
        Every trial, from every session and worker (states, parameters, intermediate values).
    best_params_ : dict
        Parameters of the best trial (sampled and fixed), ready for ``set_params``.
    best_value_ : float
        Its validation score (``metric``).
    best_trial_ : int
        Its number in the study.
    best_estimator : BaseForecaster or None
        A clone of the estimator with ``best_params_``, refitted on all the training data (None when
        ``refit=False``).
    leaderboard : pd.DataFrame
        One row per model on the same validation windows: the baselines, ``"tuned"`` (the best
        trial) and ``"default"`` (the estimator's own parameters: the first trial of a new study
        whose space holds them, else a backtest of the estimator as given); columns ``role``, the
        metrics (``owa`` when Naive2 is a baseline; ``msis_<L>``, ``coverage_<L>``, ``acd_<L>`` and
        ``crps`` when intervals were scored) and ``trial``; sorted by ``metric``.
    metric : str
        The objective, as its leaderboard column (``"mase"``, ``"msis_95"``, ``"crps"``).
    validation : Validation
        The windows.
    beat_best_baseline : bool or None
        Whether the tuned model scored better than every baseline (None without baselines).
    verdict : str
        That, in a sentence, with the numbers.
    baselines : dict
        Name -> the (unfitted) baseline forecasters, for :meth:`score_holdout`.
    default_estimator : BaseForecaster
        The estimator as given.
    training_data, fit_params
        What the study was tuned on, for :meth:`score_holdout`.
    level : tuple of float
        The interval levels (percent) every model was asked for; empty for point forecasts only.
    """

    study: object
    best_params_: dict
    best_value_: float
    best_trial_: int
    best_estimator: object
    leaderboard: pd.DataFrame
    metric: str
    validation: Validation
    beat_best_baseline: bool | None
    verdict: str
    baselines: dict = field(default_factory=dict, repr=False)
    default_estimator: object = field(default=None, repr=False)
    training_data: object = field(default=None, repr=False)
    fit_params: dict = field(default_factory=dict, repr=False)
    level: tuple = ()

    @property
    def n_trials(self) -> dict:
        """Trials of the study by state (``COMPLETE``, ``PRUNED``, ``FAIL``, ``RUNNING``, ...)."""
        states = pd.Series([t.state.name for t in self.study.get_trials(deepcopy=False)], dtype=object)
        return {str(k): int(v) for k, v in states.value_counts().items()}

    def score_holdout(self, test, *, include_default=True, X=None) -> pd.DataFrame:
        """Test-set sMAPE, MASE and OWA of the tuned model beside the baselines (and the defaults).

        The tuned model is ``best_estimator`` (refitted on all training data); the baselines and the
        estimator as given (``"default"``) are fitted on the same data here. All forecast
        ``validation.horizon`` steps from the end of the training data; MASE is scaled by each
        series' training history, OWA is relative to Naive2 when Naive2 is among the baselines.
        A study that scored intervals (``level``) scores them here too: the models forecast them,
        and the table adds ``msis_<L>``, ``crps`` and the pooled ``coverage_<L>`` and ``acd_<L>``.

        Parameters
        ----------
        test : pd.Series or pd.DataFrame
            The values that follow the training data, in its layout.
        include_default : bool
            Also score the estimator as given.
        X : pd.DataFrame, optional
            Covariates over the training data and the test horizon, for the models that declare
            covariates (default: those the study was tuned with, which then must reach that far).

        Returns
        -------
        pd.DataFrame
            Indexed by model, columns ``smape``, ``mase`` (the interval metrics, and ``owa``), sorted
            by OWA else MASE.
        """
        if self.best_estimator is None:
            raise InvalidParameterError(
                "score_holdout needs the refitted best_estimator; tune with refit=True."
            )
        horizon = self.validation.horizon
        params = {k: v for k, v in self.fit_params.items() if k != "X"}
        X = self.fit_params.get("X") if X is None else X

        level = list(self.level) or None
        train = self.training_data
        if level is not None:  # the bounds come as columns beside y_pred in the long layout only
            train = _long(train, _columns(params), params.get("freq"))

        def covariates_of(model):  # only the models that declare covariates see X
            return X if model.covariate_roles() else None

        models = {
            name: clone(est).fit(train, X=covariates_of(est), **params)
            for name, est in self.baselines.items()
        }
        if include_default and self.default_estimator is not None:
            default = self.default_estimator
            models[DEFAULT] = clone(default).fit(train, X=covariates_of(default), **params)
        forecasts = {
            name: model.predict(horizon, X=covariates_of(model), level=level)
            for name, model in models.items()
        }
        # The tuned model was refitted on the data as given: with intervals, it forecasts from its long form.
        history = None if level is None else train
        forecasts[TUNED] = self.best_estimator.predict(
            horizon, X=covariates_of(self.best_estimator), y=history, level=level
        )
        return score_forecasts(
            forecasts,
            train,
            test,
            self.validation.season_length,
            naive2=naive2_name(self.baselines),
            level=level,
            **params,
        )


def score_forecasts(
    forecasts: dict, train, test, season_length, naive2=None, level=None, **fit_params
) -> pd.DataFrame:
    """Score each model's forecasts on the test part, as M4 did.

    sMAPE and MASE (and with ``level``, MSIS and the scaled CRPS of the interval bounds: forecasts in
    the long layout with ``y_lo_<L>``/``y_hi_<L>`` columns) are means over series; coverage and ACD
    are pooled over all points; OWA is added when ``naive2`` names the Naive2 forecasts.
    """
    columns = _columns(fit_params)
    levels = interval_levels(level)
    freq = fit_params.get("freq")
    train_long, test_long = _long(train, columns, freq), _long(test, columns, freq)
    rows = {}
    longest = int(test_long.groupby(columns.id_col).size().max())
    for name, forecast in forecasts.items():
        predicted = _long(forecast, columns, None, pred=True)
        horizon = int(predicted.groupby(columns.id_col).size().min())
        if longest > horizon:
            raise InvalidInputError(
                f"the test part holds up to {longest} steps of a series but {name} forecasts {horizon}; "
                f"pass the {horizon} steps that follow the training data."
            )
        scores = evaluate(
            predicted,
            test_long,
            train_long,
            season_length,
            metrics=("smape", "mase", "msis", "crps") if levels else ("smape", "mase"),
            id_col=columns.id_col,
            time_col=columns.time_col,
            target_col=columns.target_col,
            pred_col=columns.pred_col,
            level=level,
        )
        rows[name] = scores.mean().to_dict()
        if levels:
            points = test_long.merge(predicted, on=[columns.id_col, columns.time_col], how="left")
            rows[name] |= pooled_coverage(points, target_col=columns.target_col, level=level).to_dict()
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")
    if naive2 is not None:
        ref = table.loc[naive2]
        table["owa"] = [owa(r.smape, r.mase, ref.smape, ref.mase) for r in table.itertuples()]
    return table.sort_values("owa" if "owa" in table else "mase")


def leaderboard(rows: dict, metric: str) -> pd.DataFrame:
    """One row per model: ``rows`` maps name -> (role, scores, trial number or None)."""
    table = pd.DataFrame.from_dict(
        {name: {"role": role, **scores, "trial": trial} for name, (role, scores, trial) in rows.items()},
        orient="index",
    )
    table.index.name = "model"
    table["trial"] = table["trial"].astype("Int64")
    return table.sort_values(metric, kind="stable")


def verdict(table: pd.DataFrame, metric: str, estimator_name: str, validation: Validation, levels=()):
    """(beat the best baseline?, a sentence saying so with the numbers, and the tuned coverage)."""
    tuned = table.loc[TUNED, metric]
    where = f"{metric.upper()} over {validation.n_windows} validation window(s) of {validation.horizon} steps"
    baselines = table[table["role"] == "baseline"]
    lines = []
    beat = None
    if len(baselines):
        best_name = baselines[metric].idxmin()
        best = baselines.loc[best_name, metric]
        beat = bool(tuned < best)
        change = (tuned - best) / best * 100 if best else float("nan")
        lines.append(
            f"The tuned {estimator_name} {'BEAT' if beat else 'did NOT beat'} the best baseline, "
            f"{best_name}, "
            f"on {where}: {tuned:.4g} vs {best:.4g} ({change:+.1f}%)."
        )
    else:
        lines.append(f"The tuned {estimator_name} scored {tuned:.4g} on {where}; no baseline was scored.")
    if DEFAULT in table.index:
        default = table.loc[DEFAULT, metric]
        better = "improved on" if tuned < default else "did not improve on"
        lines.append(f"Tuning {better} the default parameters ({default:.4g}).")
    for level in levels:
        covered, gap = (table.loc[TUNED, f"{name}_{level:g}"] for name in ("coverage", "acd"))
        lines.append(
            f"Its {level:g}% intervals held {covered:.1%} of the validation actuals (ACD {gap:.3f})."
        )
    return beat, " ".join(lines)


_NAMES = ("id_col", "time_col", "target_col")


def _columns(fit_params: dict) -> Columns:
    return Columns(*(fit_params.get(k, d) for k, d in zip(_NAMES, ("unique_id", "ds", "y"), strict=True)))


def naive2_name(baselines: dict):
    """The name under which Naive2 (OWA's reference) is among ``baselines``, else None."""
    return next((name for name, est in baselines.items() if type(est).__name__ == "Naive2"), None)


def _long(frame, columns: Columns, freq, pred=False) -> pd.DataFrame:
    """Any layout as a long frame; forecasts get the prediction column."""
    if isinstance(frame, pd.DataFrame) and columns.pred_col in frame and columns.id_col in frame:
        return frame
    panel = to_panel(frame, freq=freq, columns=columns, missing="keep")
    long = to_long(panel.replace_layout(Layout("long", columns)))
    return long.rename(columns={columns.target_col: columns.pred_col}) if pred else long
