"""What defines a tuning study (:mod:`tsforecast.tuning.settings`) and where it is stored
(:mod:`tsforecast.tuning.storage`): a study records its defining settings and refuses a resume with
other ones (what only sets the pace is not a setting); fixed parameters and search ranges are checked
before a study opens; storage URLs keep passwords hidden.

Real Optuna on real SQLite files in ``tmp_path``; every study is tiny (one validation window, one or
two epochs, one or two trials). Issue 15's cases through ``tsforecast tune`` (a changed ``--param``,
an invalid one, malformed storages: exit 2) are in ``test_faults.py``.
"""

from __future__ import annotations

import pytest

optuna = pytest.importorskip("optuna")
torch = pytest.importorskip("torch")

from conftest import free_port  # noqa: E402
from faulttools import TUNE_QUICK, TUNE_TINY, clip_space, tuning_panel  # noqa: E402
from optuna.distributions import FloatDistribution, IntDistribution  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from tsforecast.exceptions import InvalidParameterError, UnavailableError  # noqa: E402
from tsforecast.nn.estimators import LSTMForecaster  # noqa: E402
from tsforecast.tuning import make_storage, tune  # noqa: E402
from tsforecast.tuning.settings import differences  # noqa: E402
from tsforecast.tuning.storage import SETTINGS_ATTR  # noqa: E402

torch.set_num_threads(1)

CLIP = clip_space()


def test_a_changed_setting_is_refused_and_what_only_sets_the_pace_is_not(tmp_path):
    y = tuning_panel()
    options = dict(storage=tmp_path / "s.db", study_name="s", search_space=CLIP, **TUNE_QUICK)
    tune(LSTMForecaster(**TUNE_TINY), y, n_trials=1, **options)
    # Budget, timeout, threads, seed, device, verbosity: still the same study, which grows.
    other_pace = {**TUNE_TINY, "random_state": 7, "device": "auto", "verbose": False, "max_time": 600.0}
    more = tune(LSTMForecaster(**other_pace), y, n_trials=2, timeout=600, n_jobs=1, random_state=1, **options)
    assert len(more.study.get_trials(states=(TrialState.COMPLETE,))) == 2
    for params, change, expected in (
        (dict(hidden_size=8), {}, "params.hidden_size: study has 4, now 8"),
        (dict(max_epochs=2), {}, "params.max_epochs: study has 1, now 2"),
        ({}, dict(metric="smape"), "metric: study has 'mase', now 'smape'"),
        ({}, dict(validation=2), "validation: study has"),
        ({}, dict(y=tuning_panel(length=73)), "data: study has"),
        (
            {},
            dict(search_space={"clip_norm": FloatDistribution(0.1, 5.0, log=True)}),
            "search_space.clip_norm: study has FloatDistribution(high=10.0",
        ),
        (
            {},
            dict(search_space={**CLIP, "hidden_size": IntDistribution(4, 8)}),
            "search_space.hidden_size: study has (not set), now IntDistribution(",
        ),
    ):
        call = dict(y=y, n_trials=3, **options) | change
        with pytest.raises(InvalidParameterError, match="created for another tuning job") as caught:
            tune(LSTMForecaster(**TUNE_TINY | params), call.pop("y"), **call)
        assert expected in str(caught.value), str(caught.value)
        assert "another study name" in str(caught.value)
    assert len(optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 's.db'}").trials) == 2


def test_the_study_records_what_defines_it():
    recorded = {"estimator": "LSTMForecaster", "params": {"hidden_size": 8, "max_epochs": 1}}
    now = {"estimator": "GRUForecaster", "params": {"max_epochs": 1, "scaler": "log"}}
    assert differences(recorded, now) == [
        "estimator: study has 'LSTMForecaster', now 'GRUForecaster'",
        "params.hidden_size: study has 8, now (not set)",
        "params.scaler: study has (not set), now 'log'",
    ]
    assert differences(recorded, recorded) == []


def test_study_settings_are_stored_in_the_study(tmp_path):
    result = tune(
        LSTMForecaster(**TUNE_TINY),
        tuning_panel(),
        n_trials=1,
        storage=tmp_path / "r.db",
        search_space=CLIP,
        **TUNE_QUICK,
    )
    settings = result.study.user_attrs[SETTINGS_ATTR]
    assert set(settings) == {"estimator", "params", "search_space", "metric", "validation", "data", "freq"}
    assert settings["params"]["hidden_size"] == 4 and settings["params"]["horizon"] == 6
    assert settings["params"]["validation_size"] == 6  # what the trials ran with
    assert not {"clip_norm", "device", "random_state", "verbose", "callbacks"} & set(settings["params"])
    assert settings["validation"] == {"n_windows": 1, "step": 6, "horizon": 6, "season_length": 12}


def test_bad_fixed_params_and_search_ranges_stop_before_a_study_is_opened(tmp_path):
    storage = tmp_path / "never.db"
    with pytest.raises(InvalidParameterError, match=r"'learning_rate' parameter of LSTMForecaster.*Got -1"):
        tune(
            LSTMForecaster(**{**TUNE_TINY, "learning_rate": -1}),
            tuning_panel(),
            storage=storage,
            **TUNE_QUICK,
        )
    with pytest.raises(InvalidParameterError, match=r"search_space\['learning_rate'\] allows 0.0"):
        tune(
            LSTMForecaster(**TUNE_TINY),
            tuning_panel(),
            search_space={"learning_rate": FloatDistribution(0.0, 0.1)},
            storage=storage,
            **TUNE_QUICK,
        )
    assert not storage.exists()


def test_passwords_stay_hidden_and_a_database_that_is_down_is_still_retry_later(tmp_path):
    with pytest.raises(InvalidParameterError) as caught:
        make_storage("postgres://tuner:secret@db/optuna")
    assert "secret" not in str(caught.value) and "tuner:***@db" in str(caught.value)
    assert "postgresql://" in str(caught.value)  # the spelling SQLAlchemy reads
    with pytest.raises(InvalidParameterError) as caught:
        make_storage("postgres:/tuner:secret@db/optuna")
    assert "secret" not in str(caught.value)
    with pytest.raises(InvalidParameterError, match="is a folder"):
        make_storage(tmp_path)
    (tmp_path / "notes.txt").write_text("a file where a folder should be")
    with pytest.raises(InvalidParameterError, match="cannot create its folder"):
        make_storage(f"sqlite:///{tmp_path / 'notes.txt' / 'optuna.db'}")
    pytest.importorskip("psycopg", reason="the psycopg driver is not installed")
    with pytest.raises(UnavailableError, match=r"tuner:\*\*\*@127"):
        make_storage(f"postgresql://tuner:secret@127.0.0.1:{free_port()}/optuna")  # nobody listens
