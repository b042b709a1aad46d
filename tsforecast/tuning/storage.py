"""Where studies live, how they resume, and who may prune: Optuna storages, pruners and samplers.

A study is kept in an Optuna RDB storage: by default the SQLite file ``./optuna.db``, otherwise any
URL Optuna accepts (``postgresql://...``, ``mysql+pymysql://...``, ``sqlite:///path.db``; SQLAlchemy
2.1 and later read ``postgresql://`` with the psycopg 3 driver, earlier ones with psycopg2). Several
processes on one or many machines that open the same study name in the same storage share its
trials: Optuna's storage hands each its own trial, and with the heartbeat on (the default here) a
trial whose process died (SIGKILL, a lost machine) stops beating and is marked FAIL by the next
worker that starts a trial, so the others carry on. No coordination of our own.

A storage is checked before anything is opened or created (:func:`parse_storage`): a value that is
neither a URL of a supported database (:data:`DIALECTS`) nor a plain file path raises
:class:`~tsforecast.exceptions.InvalidParameterError` naming it (password hidden), and a database
that is down raises :class:`~tsforecast.exceptions.UnavailableError` (retry later).
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

from tsforecast.exceptions import InvalidParameterError, UnavailableError
from tsforecast.urls import mistyped_url, redact_url

_LOGGER = logging.getLogger(__name__)

DEFAULT_STORAGE = "sqlite:///optuna.db"
HEARTBEAT_INTERVAL_S = 60
FINISHED_STATES = ("COMPLETE", "PRUNED")  # the trials that count towards n_trials
SETTINGS_ATTR = "tsforecast.settings"
# The databases Optuna's RDB storage is written and tested for (SQLAlchemy dialect names).
DIALECTS = ("sqlite", "postgresql", "mysql")
_EXAMPLES = "sqlite:///optuna.db, postgresql://user:password@host/db or mysql+pymysql://user:password@host/db"


def make_storage(url=None, *, heartbeat_interval=HEARTBEAT_INTERVAL_S, grace_period=None, retry_stale=0):
    """An Optuna RDB storage with the heartbeat on.

    Parameters
    ----------
    url : str or path-like, optional
        An Optuna RDB URL (``sqlite:///optuna.db``, ``postgresql://user:password@host/db``, ...) or a
        file path, read as an SQLite file (see :func:`parse_storage`). Default: ``sqlite:///optuna.db``
        in the working directory.
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

    Raises
    ------
    InvalidParameterError
        A malformed or empty URL, an unknown database or driver, a driver that is not installed, an
        SQLite file that cannot be opened; nothing is created for them.
    UnavailableError
        A database that is down or refuses the connection: retrying later may work.

    Examples
    --------
    >>> storage = make_storage("sqlite:///:memory:", heartbeat_interval=10)  # doctest: +SKIP
    >>> storage.grace_period  # doctest: +SKIP
    20
    """
    import optuna
    import sqlalchemy.exc

    url = parse_storage(url)
    if heartbeat_interval is not None and grace_period is None:
        grace_period = 2 * int(heartbeat_interval)
    for name, value in (("heartbeat_interval", heartbeat_interval), ("grace_period", grace_period)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InvalidParameterError(f"{name} must be a whole number of seconds >= 1; got {value!r}.")
    engine_kwargs = {}
    _make_sqlite_folder(url)  # only now: a storage that fails its checks leaves nothing on disk
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
            if url.startswith("sqlite") and "unable to open" in str(error):
                reason = getattr(error, "orig", error)
                raise InvalidParameterError(
                    f"storage {redact_url(url)!r}: SQLite cannot open this file ({reason}); pass a file in a "
                    "folder you may write to."
                ) from None
            # A database that is down or refuses us: retrying later may work (exit code 6).
            raise UnavailableError(
                f"cannot open the Optuna storage {redact_url(url)!r}: {getattr(error, 'orig', error)}"
            ) from None
        except ImportError as error:
            raise InvalidParameterError(
                f"storage {redact_url(url)!r} needs a database driver that is not installed ({error}); "
                "install it (psycopg[binary] for postgresql://, psycopg2-binary for postgresql+psycopg2://, "
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
    return redact_url(getattr(storage, "url", None) or type(storage).__name__)


def parse_storage(url) -> str:
    r"""``url`` checked, as the URL Optuna opens; nothing is opened or created here.

    None is the default (``sqlite:///optuna.db``). A value with ``://`` is a SQLAlchemy URL of one of
    :data:`DIALECTS`, with a driver SQLAlchemy knows (whether it is installed is checked when the
    storage opens). Any other value is a file path, read as an SQLite file; since a colon or a ``//``
    in such a value means a mistyped URL (``postgres:/db``, ``sqlite//optuna.db``, ``::::``), a path
    holds neither, except a Windows drive (``C:\studies\optuna.db``); pass a ``pathlib.Path``
    for any other name.

    Raises
    ------
    InvalidParameterError
        Naming the value (password hidden) and what is wrong.

    Examples
    --------
    >>> parse_storage("postgresql://tuner:secret@db/optuna")
    'postgresql://tuner:secret@db/optuna'
    >>> parse_storage("postgres:/db")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tsforecast.exceptions.InvalidParameterError: storage 'postgres:/db' is neither a database URL nor ...
    """
    if url is None:
        return DEFAULT_STORAGE
    if isinstance(url, os.PathLike):
        return _sqlite_file(Path(url), str(url))
    text = str(url)
    if not text.strip():
        raise InvalidParameterError(
            f"storage is empty ({text!r}); pass a URL such as {_EXAMPLES}, or a file path (read as an SQLite "
            "file), or leave it out for ./optuna.db."
        )
    if "://" in text:
        return _database_url(text)
    if mistyped_url(text):
        raise InvalidParameterError(
            f"storage {redact_url(text)!r} is neither a database URL nor a file path: a URL reads "
            f"dialect://..., e.g. {_EXAMPLES}; a file path (read as an SQLite file) holds no ':' and no "
            "'//'. Nothing was created."
        )
    return _sqlite_file(Path(text), text)


def _database_url(text: str) -> str:
    import sqlalchemy.exc
    from sqlalchemy.engine import make_url

    shown = redact_url(text)
    try:
        parsed = make_url(text)
    except sqlalchemy.exc.ArgumentError:
        raise InvalidParameterError(
            f"storage {shown!r} is not a valid database URL; write dialect[+driver]://user:password@host/db, "
            f"e.g. {_EXAMPLES}. Nothing was created."
        ) from None
    backend = parsed.get_backend_name()
    if backend not in DIALECTS:
        hint = " (SQLAlchemy spells it postgresql://)" if backend == "postgres" else ""
        raise InvalidParameterError(
            f"storage {shown!r}: unknown database {backend!r}{hint}; supported: {', '.join(DIALECTS)} "
            f"(e.g. {_EXAMPLES})."
        )
    try:
        parsed.get_dialect()
    except sqlalchemy.exc.NoSuchModuleError:
        raise InvalidParameterError(
            f"storage {shown!r}: SQLAlchemy has no driver {parsed.get_driver_name()!r} for {backend}; "
            f"write {backend}:// for its default driver or name a known one (e.g. {_EXAMPLES})."
        ) from None
    if backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
        _refuse_folder(Path(parsed.database), text)
    return text


def _sqlite_file(path: Path, shown: str) -> str:
    """The ``sqlite:///`` URL of a file path."""
    path = path.expanduser()
    _refuse_folder(path, shown)
    return f"sqlite:///{path.resolve().as_posix()}"


def _refuse_folder(path: Path, shown: str) -> None:
    if path.is_dir():
        raise InvalidParameterError(
            f"storage {redact_url(shown)!r} is a folder; name the SQLite file in it, e.g. "
            f"{(path / 'optuna.db').as_posix()}."
        )


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

    ``settings`` (what defines the study: :func:`~tsforecast.tuning.settings.study_settings`) are
    recorded with a new study; a study found under the same name with other settings raises, naming
    each difference, since its trials' scores are not comparable with this run's.
    """
    import optuna

    from tsforecast.tuning.settings import differences, plain

    settings = plain(settings)
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
    elif changed := differences(recorded, settings):
        raise InvalidParameterError(
            f"study {study_name!r} in {storage_url(storage)!r} was created for another tuning job "
            f"({'; '.join(changed)}); its trials' scores are not comparable with this run's, so it is not "
            "resumed. To resume it, rerun with the settings it was created with; to start a new study, "
            "pass another study name (--study-name, study_name=) or another storage (--storage, storage=)."
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
        folder = Path(url[len(prefix) :].split("?", 1)[0]).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InvalidParameterError(
                f"storage {redact_url(url)!r}: cannot create its folder {folder} "
                f"({error.strerror or error}); pass a file in a folder you may write to."
            ) from None
