"""The global recurrent forecasters: :class:`LSTMForecaster`, :class:`GRUForecaster`, :class:`RNNForecaster`.

They share everything but the cell (:class:`~tsforecast.nn.forecaster.RecurrentForecaster`). By
default (the M4 Hourly recipe) each series is moved to log space (``scaler="auto"``; an additive
``y / mean|y|`` space when some value is <= 0), each step sees its last season and, with a long
season, the values one long season before each forecast step, all relative to the causal level
(see :mod:`tsforecast.nn.streams`); at every step the head emits a correction of the seasonal naive
forecast for all ``horizon`` steps at once (direct multi-output), trained with a masked absolute (or
pinball) loss.

Training is truncated back-propagation through time (``training="tbptt"``): the panel is laid out
once on the device as parallel streams and the network walks them ``tbptt_steps`` at a time,
carrying its state (detached) from chunk to chunk and starting every series from a zero state.
Series longer than ``stream_length`` steps are cut into several streams (more, shorter streams per
batch); a cut stream starts ``warmup_steps`` early from a zero state and the outputs of those
warm-up steps are masked (see :mod:`tsforecast.windowing`). ``training="windows"`` trains the same
network on classic sliding windows of ``lookback`` steps instead.

Forecasts run the network over the whole history of every series (no truncation), all series in one
batched pass, and read the outputs at the last step.

Covariates (``X``, with the columns named by ``future_covariates``, ``past_covariates`` and
``static_covariates``) enter the recurrent input at every step, beside the target features; the
head's forecast for ``t+k`` also sees the future-known covariates of ``t+1 .. t+k``
(:mod:`tsforecast.nn.covariates`, :mod:`tsforecast.nn.modules`).
"""

from __future__ import annotations

from tsforecast.exceptions import InvalidParameterError, ModelFileError
from tsforecast.nn.device import resolve_device
from tsforecast.nn.forecaster import RecurrentForecaster
from tsforecast.nn.persistence import read

__all__ = ["GRUForecaster", "LSTMForecaster", "RNNForecaster", "load"]

_PARAMETERS_DOC = """
    Parameters
    ----------
    horizon : int, default=48
        Steps forecast at once; ``predict`` may ask for fewer, not more.
    season_length : int or "auto", default="auto"
        Seasonal period: the lag window of the inputs, the level window and the seasonal naive
        forecast the network corrects. "auto": from the data's frequency (hourly 24, half-hourly
        48, 15-minute 96, daily 7, weekly 52, monthly 12, quarterly 4; an integer index or yearly
        data: 1, no season; see :func:`tsforecast.data.frequency.seasonal_periods`).
    long_season_length : int, "auto" or None, default="auto"
        A second, longer period whose values before each forecast step are inputs too. "auto": the
        frequency's long season (hourly 168, half-hourly 336, 15-minute 672, daily 365) when the
        season is the frequency's own; on an integer index a season of 24, 48 or 96 steps gets 7
        times it (a week of a daily cycle, as M4 Hourly); used only when every series holds three
        long seasons. None: no long season.
    hidden_size : int, default=64
    num_layers : int, default=1
        Stacked recurrent layers. One layer was chosen on validation windows cut from the training
        data: as good as two on M4 Hourly and better on few long series (``benchmarks/README.md``,
        "How the default recipe was chosen").
    dropout : float, default=0.0
        Between recurrent layers.
    residual : bool, default=False
        Skip connections around the layers after the first (equal widths).
    gate_init : {"standard", "chrono"}, default="standard"
        "standard": LSTM forget-gate bias 1, other biases 0. "chrono": gate biases drawn so memory
        time scales spread up to ``tbptt_steps`` (``lookback`` for windows), Tallec & Ollivier
        (2018); use it for dependencies of hundreds of steps (see ``benchmarks/long_memory.py``).
    training : {"tbptt", "windows"}, default="tbptt"
    tbptt_steps : int, default=72
        Chunk length of truncated back-propagation through time.
    lookback : int, default=168
        Window length for ``training="windows"``; such a model also forecasts from the last
        ``lookback`` steps of each series (from a zero state, as it was trained), where a TBPTT model
        warms its state up over the whole history.
    stream_length : int, "auto" or None, default="auto"
        Cut longer series into streams of at most this many scored steps (TBPTT), so that the
        batches hold more, shorter streams (more optimisation steps per epoch). "auto":
        ``2 * tbptt_steps``; None: one stream per series.
    warmup_steps : int, optional
        Leading steps of a cut stream that only warm the state up (their outputs are masked);
        default ``tbptt_steps // 2``.
    scaler : {"auto", "log", "level", "standard", "robust", "minmax", "none"}, default="auto"
        Per-series transform fitted on the training part (see :mod:`tsforecast.scaling`). "auto":
        log when every training value is > 0, else "level" (``y / mean|y|``).
    quantiles : tuple of float, optional
        Extra quantile outputs trained with the pinball loss; ``predict`` then adds columns
        ``q0.1``... to long-layout forecasts. A Series or wide frame has no room for them: forecasts
        in those layouts hold the point forecasts only (with a warning); pass the history as a long
        frame (``predict(y=long_frame)``) to get the quantiles.
    clip_norm : float or None, default=1.0
        Global gradient-norm clip.
    learning_rate : float, default=5e-3
        Peak of the one-cycle schedule.
    weight_decay : float, default=0.0
        AdamW weight decay (0: Adam).
    max_epochs : int, default=40
        Passes over the training data; the one-cycle learning-rate schedule spans them. Counted in
        passes, not optimizer steps: a few long series give few steps per epoch, and more passes
        over them overfit (``benchmarks/README.md``, "Few long series").
    max_steps : int, optional
        A budget of optimizer steps: training stops after that many (inside an epoch if need be,
        ``history_["stopped_by"] == "max_steps"``), and the one-cycle learning rate spans them
        instead of ``max_epochs`` epochs. Set ``max_epochs`` high enough to reach them. For very
        large panels, where a fixed number of updates matters more than whole passes.
    batch_size : int, default=256
        Streams (or windows) per batch.
    validation_size : int, default=0
        Steps cut from the end of each training series to score every epoch; > 0 enables early
        stopping and restores the best weights.
    patience : int or None, default=10
        Epochs without validation improvement before stopping.
    max_time : float, optional
        A safety cap in seconds: training stops when it is reached, with a warning and
        ``history_["stopped_by"] == "max_time"``. It never shapes the schedule, so a cap that does
        not fire changes nothing; budget training by ``max_epochs`` to keep it reproducible.
    callbacks : list of callable, optional
        Called after each epoch as ``callback(estimator, record)`` with a
        :class:`~tsforecast.epochs.EpochRecord`; returning True stops training, an exception
        propagates out of ``fit``.
    checkpoint_dir : str or path-like, optional
        Write a checkpoint (``checkpoint.pt``: weights, optimizer, the loop's position, random
        generators, ``history_``, scales) there after every epoch, atomically. A ``fit`` that finds
        one from the same settings and data resumes from it and ends with the same weights as an
        uninterrupted fit (bit-identical on CPU), so a killed job loses at most an epoch (or
        ``checkpoint_every`` minutes); a completed fit rerun trains no further. A checkpoint from
        other settings or other data is refused with an error. ``verbose``, ``callbacks``,
        ``max_time``, ``device`` and the checkpoint settings may differ between the runs.
    checkpoint_every : float, optional
        Minutes between checkpoints inside an epoch (for epochs too long to lose), on top of the
        one at each epoch's end. Needs ``checkpoint_dir``.
    warm_start : bool, default=False
        Continue from the fitted network (same architecture) instead of a new one.
    device : str, default="auto"
        "auto" (CUDA if available), "cpu", "cuda" or "cuda:N".
    precision : {"fp32", "bf16"}, default="fp32"
        "bf16" autocasts on CUDA; on CPU computation stays in fp32.
    random_state : int, RandomState or None
        Seeds initialisation, dropout and batch order (same seed on CPU: same forecasts).
    verbose : bool, default=False
        A progress bar with the loss, validation loss and gradient norm.
    future_covariates : list of str, optional
        Columns of ``X`` known for the forecast period too (a published load forecast, a planned
        price, a promotion): the value at ``t`` enters the recurrent input at step ``t``, and the
        forecast for ``t+k`` sees those of ``t+1 .. t+k`` (never later ones). ``fit`` needs them at
        every time stamp of the history, ``predict`` also at the ``horizon`` steps after it.
    past_covariates : list of str, optional
        Columns of ``X`` observed only up to the forecast origin (yesterday's temperature); they enter
        the recurrent input at every step of the history, and rows after it are never read.
    static_covariates : list of str, optional
        One value per series (``X`` per series, with the id column); they enter the recurrent input at
        every step.
    categorical_covariates : list of str, optional
        Those of the columns above that hold categories: each is embedded (a learned vector per
        category, up to 16 wide); a category not seen at ``fit`` is an error at ``predict``. The other
        covariates must be numeric: they are standardised per column, with one mean and standard
        deviation over all series, computed on the training part only (before ``validation_size``).
    calendar_features : list of str or "auto", optional
        Calendar features built from the time stamps as future-known covariates, without ``X``
        (:func:`tsforecast.data.calendar.calendar_covariates`: hour of day, day of week, day of year
        as sine/cosine pairs; "auto": those that vary at the data's frequency).
    holidays : str or (str, str), optional
        A country (and subdivision) whose public holidays become a future-known ``holiday`` column
        (needs the ``holidays`` package: ``pip install tsforecast[calendar]``).

    Attributes
    ----------
    network_ : RecurrentNetwork
    codec_ : PanelCodec
        The fitted encoder/decoder: feature layout (``codec_.spec``), per-series scaler
        (``codec_.scaler``) and global feature scales (``codec_.scales``).
    quantile_levels_ : tuple of float
    horizon_ : int
    history_ : pd.DataFrame
        One row per epoch (:class:`~tsforecast.epochs.EpochRecord`): epoch, train_loss, val_loss,
        grad_norm_mean, grad_norm_max (pre-clip global norms), clipped_fraction, learning_rate,
        seconds, skipped_steps (non-finite steps), steps, targets (forecast targets in the loss),
        stopped_by (why training ended early, on the last row).
    device_ : torch.device
    training_panel_ : Panel
        The training panel (``predict()`` without ``y`` continues it).
    covariate_categories_ : dict or None
        The categories of each categorical covariate, in code order (None without covariates).

    Parameters that have no effect with the others (``dropout`` with one layer, ``lookback`` under
    TBPTT, ``stream_length`` under windows, ``patience`` without a validation tail, ...) raise a
    :class:`~tsforecast.exceptions.TsforecastWarning` at ``fit``
    (see :func:`tsforecast.nn.parameters.inert_parameters`).

    ``fit`` raises :class:`~tsforecast.exceptions.TrainingError` when training diverges (non-finite
    steps or weights, a loss far above the seasonal naive forecast's, forecasts far outside the
    training range: the rule is :mod:`tsforecast.nn.divergence`); the estimator is then unfitted and
    ``history_`` keeps the epochs up to the one that diverged. ``predict`` never returns a
    non-finite forecast: it raises ``TrainingError`` for non-finite weights, and
    :class:`~tsforecast.exceptions.InvalidInputError` naming the series whose history gives one.
"""


def _example(name: str) -> str:
    return f"""
    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> t = np.arange(120)
    >>> index = pd.date_range("2024-01-01", periods=120, freq="h")
    >>> y = pd.Series(10 + np.sin(2 * np.pi * t / 12), index=index)
    >>> model = {name}(horizon=6, season_length=12, hidden_size=8, max_epochs=2, tbptt_steps=24,
    ...                random_state=0).fit(y)
    >>> model.predict().shape
    (6,)

    With a future-known covariate (``X`` covers the history and the horizon):

    >>> stamps = pd.date_range("2024-01-01", periods=126, freq="h")
    >>> X = pd.DataFrame({{"price": np.cos(np.arange(126) / 3)}}, index=stamps)
    >>> model.set_params(future_covariates=["price"]).fit(y, X=X).predict(X=X).shape
    (6,)
"""


class LSTMForecaster(RecurrentForecaster):  # noqa: D101 (__doc__ is assembled below)
    __doc__ = (
        "Global LSTM forecaster (TBPTT training by default).\n" + _PARAMETERS_DOC + _example("LSTMForecaster")
    )
    _cell = "lstm"


class GRUForecaster(RecurrentForecaster):  # noqa: D101 (__doc__ is assembled below)
    __doc__ = (
        "Global GRU forecaster (TBPTT training by default).\n" + _PARAMETERS_DOC + _example("GRUForecaster")
    )
    _cell = "gru"


class RNNForecaster(RecurrentForecaster):  # noqa: D101 (__doc__ is assembled below)
    __doc__ = (
        "Global vanilla (tanh) RNN forecaster (TBPTT training by default).\n"
        + _PARAMETERS_DOC
        + _example("RNNForecaster")
    )
    _cell = "rnn"


def load(path, device: str = "cpu"):
    """Load a forecaster written by ``est.save(path)``.

    The file's SHA-256 checksum is verified before anything in it is used, its description is
    checked against the model-file schema, and the saved parameters against the estimator's
    allowed values (see :mod:`tsforecast.nn.persistence`). Files of formats 1-3 load with a
    :class:`~tsforecast.exceptions.TsforecastWarning` (their description is not checksummed).

    Parameters
    ----------
    path : str or Path
    device : str, default="cpu"
        Where to put the network (CPU by default, whatever it was trained on).

    Raises
    ------
    ModelFileError
        The file is missing, corrupted (bytes that no longer match its checksum), not a tsforecast
        model, written by an incompatible version, or holds a description, parameters or tensors
        that break the schema. The message names the file and what is wrong.
    InvalidParameterError
        ``device`` is unknown or not available on this machine.
    """
    classes = {cls.__name__: cls for cls in (LSTMForecaster, GRUForecaster, RNNForecaster)}
    saved = read(path, resolve_device(device))
    if saved.class_name not in classes:
        raise ModelFileError(
            f"{path} is not a usable tsforecast model: unknown forecaster class {saved.class_name!r}."
        )
    cls = classes[saved.class_name]
    if (
        unknown := sorted(set(saved.params) - set(cls().get_params(deep=False)))
    ) or "callbacks" in saved.params:
        raise ModelFileError(
            f"{path} is not a usable tsforecast model: params holds {unknown or ['callbacks']}, which "
            f"{cls.__name__} does not take (or does not save)."
        )
    model = cls(**saved.params)
    try:
        model.check_params()
    except InvalidParameterError as error:
        raise ModelFileError(
            f"{path} is not a usable tsforecast model: its saved params are invalid: {error}"
        ) from None
    if saved.state.network.config.cell != cls._cell:
        raise ModelFileError(
            f"{path} is not a usable tsforecast model: a {cls.__name__} with a network of "
            f"{saved.state.network.config.cell!r} cells (network.cell must be {cls._cell!r})."
        )
    model.set_fitted_state(saved.state)
    return model
