"""Where studies live, how they resume, and who may prune: Optuna storages, pruners and samplers.

A study is kept in an Optuna RDB storage: by default the SQLite file ``./optuna.db``, otherwise any
URL Optuna accepts (``postgresql://...``, ``mysql+pymysql://...``, ``sqlite:///path.db``; SQLAlchemy
2.1 and later read ``postgresql://`` with the psycopg 3 driver, earlier ones with psycopg2). Several
processes on one or many machines that open the same study name in the same storage share its
trials: Optuna's storage hands each its own trial, and with the heartbeat on (the default here) a
trial whose process died (SIGKILL, a lost machine) stops beating and is marked FAIL by the next
worker that starts a trial, so the others carry on. No coordination of our own.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from tsforecast.exceptions import InvalidParameterError, UnavailableError

_LOGGER = logging.getLogger(__name__)

DEFAULT_STORAGE = "sqlite:///optuna.db"
HEARTBEAT_INTERVAL_S = 60
FINISHED_STATES = ("COMPLETE", "PRUNED")  # the trials that count towards n_trials
SETTINGS_ATTR = "tsforecast.settings"


def make_storage(url=None, *, heartbeat_interval=HEARTBEAT_INTERVAL_S, grace_period=None, retry_stale=0):
    """An Optuna RDB storage with the heartbeat on.

    Parameters
    ----------
    url : str or path-like, optional
        An Optuna RDB URL (``sqlite:///optuna.db``, ``postgresql://user:password@host/db``, ...) or a
        file path, read as an SQLite file. Default: ``sqlite:///optuna.db`` in the working directory.
    heartbeat_interval : int or None, default=60
        Seconds between a running trial's heartbeats; None turns the heartbeat off (a killed worker's
        trial then stays RUNNING forever).
    grace_period : int, optional
        Seconds without a heartbeat after which a running trial counts as dead and is marked FAIL
        (by the next trial any worker starts). Default ``2 * heartbeat_interval``.
    retry_stale : int, default=0
        Re-queue a dead worker's trial (same parameters) up to this many times. Off by default: a
        trial that killed its worker (out of memory) would kill the next one too.

    Returns
    -------
    optuna.storages.RDBStorage

    Examples
    --------
    >>> storage = make_storage("sqlite:///:memory:", heartbeat_interval=10)  # doctest: +SKIP
    >>> storage.grace_period  # doctest: +SKIP
    20
    """
    import optuna
    import sqlalchemy.exc

    url = _url(url)
    if heartbeat_interval is not None and grace_period is None:
        grace_period = 2 * int(heartbeat_interval)
    for name, value in (("heartbeat_interval", heartbeat_interval), ("grace_period", grace_period)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InvalidParameterError(f"{name} must be a whole number of seconds >= 1; got {value!r}.")
    engine_kwargs = {}
    _make_sqlite_folder(url)
    if url.startswith("sqlite"):
        # Workers sharing one SQLite file wait for each other's write locks instead of failing.
        engine_kwargs["connect_args"] = {"timeout": 60}
    callback = None
    if retry_stale:
        callback = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=int(retry_stale))
    with warnings.catch_warnings():
        # The heartbeat has carried Optuna's "experimental" label since 2.9; we rely on it knowingly.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period if heartbeat_interval is not None else None,
                heartbeat_stale_trial_callback=callback,
            )
        except sqlalchemy.exc.OperationalError as error:
            # A database that is down or refuses us: retrying later may work (exit code 6).
            raise UnavailableError(
                f"cannot open the Optuna storage {redact(url)!r}: {getattr(error, 'orig', error)}"
            ) from None
        except ImportError as error:
            raise InvalidParameterError(
                f"storage {redact(url)!r} needs a database driver that is not installed ({error}); install "
                "it (psycopg[binary] for postgresql://, psycopg2-binary for postgresql+psycopg2://, "
                "pymysql for mysql+pymysql://)."
            ) from error


def resolve_storage(storage):
    """``storage`` as an Optuna storage: None / a URL / a path -> :func:`make_storage`; else as is."""
    import optuna

    if isinstance(storage, optuna.storages.BaseStorage):
        return storage
    return make_storage(storage)


def storage_url(storage) -> str:
    """The URL of a storage, password removed (for logs and MLflow)."""
    return redact(getattr(storage, "url", None) or type(storage).__name__)


def redact(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``."""
    scheme, sep, rest = str(url).partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return str(url)
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


def resolve_pruner(pruner):
    """``"median"``, ``"hyperband"``, ``"none"`` (or None), or an ``optuna.pruners.BasePruner``.

    ``"median"`` is ``MedianPruner(n_startup_trials=5, n_warmup_steps=2)``: no trial is pruned before
    five have finished, nor in its first two epochs; ``"hyperband"`` is ``HyperbandPruner()`` with
    the resource = reported epochs.
    """
    import optuna

    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    key = "none" if pruner is None else str(pruner).lower()
    if key == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if key == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource="auto", reduction_factor=3)
    if key == "none":
        return optuna.pruners.NopPruner()
    raise InvalidParameterError(
        "pruner must be 'median', 'hyperband', 'none' or an optuna.pruners.BasePruner instance; "
        f"got {pruner!r}."
    )


def resolve_sampler(sampler, random_state):
    """The given sampler, else TPE with the constant liar on (for parallel workers).

    With ``random_state``, the TPE is seeded per trial number
    (:class:`~tsforecast.tuning.sampler.TrialSeededTPESampler`): workers that run the same command
    against one study draw different parameters, and one worker running a new study twice draws the
    same ones. A plain ``TPESampler(seed=random_state)`` would make every such worker repeat the
    others' trials. Without ``random_state``, an unseeded ``TPESampler``.
    """
    import optuna

    if sampler is not None:
        if not isinstance(sampler, optuna.samplers.BaseSampler):
            raise InvalidParameterError(
                f"sampler must be an optuna.samplers.BaseSampler instance; got {type(sampler).__name__}."
            )
        return sampler
    if random_state is None:
        return optuna.samplers.TPESampler(constant_liar=True)
    from tsforecast.tuning.sampler import TrialSeededTPESampler

    return TrialSeededTPESampler(int(random_state))


def open_study(storage, study_name: str, sampler, pruner, settings: dict):
    """Create the study, or load it when it exists (``load_if_exists``), checking it is the same job.

    ``settings`` (metric, windows, data fingerprint...) are recorded with a new study; a study found
    under the same name with other settings raises, since its scores would not be comparable.
    """
    import optuna

    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        sampler=sampler,
        pruner=pruner,
        direction="minimize",
        load_if_exists=True,
    )
    recorded = study.user_attrs.get(SETTINGS_ATTR)
    if recorded is None:
        study.set_user_attr(SETTINGS_ATTR, settings)
    elif (changed := {k: (recorded.get(k), v) for k, v in settings.items() if recorded.get(k) != v}) != {}:
        details = ", ".join(f"{k}: study has {old!r}, now {new!r}" for k, (old, new) in changed.items())
        raise InvalidParameterError(
            f"study {study_name!r} in {storage_url(storage)!r} was created for another tuning job "
            f"({details}); "
            "its scores are not comparable. Pass another study_name, or the settings it was created with."
        )
    return study


def n_finished(study) -> int:
    """Trials that count towards ``n_trials``: COMPLETE and PRUNED, by any worker, in any session."""
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=tuple(TrialState[s] for s in FINISHED_STATES)))


def fail_stale_trials(study) -> None:
    """Mark the trials of dead workers (no heartbeat for ``grace_period``) FAIL now."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _make_sqlite_folder(url: str) -> None:
    """SQLite creates the file but not its folder: ``sqlite:///outputs/study/optuna.db`` works too."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and url[len(prefix) :] not in ("", ":memory:"):
        Path(url[len(prefix) :].split("?", 1)[0]).parent.mkdir(parents=True, exist_ok=True)


def _url(url) -> str:
    if url is None:
        return DEFAULT_STORAGE
    text = str(url)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve().as_posix()}"
