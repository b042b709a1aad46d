"""plot_forecasts and the tracking forecast figure, drawn with real matplotlib (Agg canvas).

The forecast frames are made by ``data.from_panel``, the function ``predict`` answers through, so
they have the layout, index and column names ``predict(level=...)`` gives for each history layout.
"""

import doctest
import io
import sys

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.dates import date2num  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from tsforecast import plotting  # noqa: E402
from tsforecast.data import from_panel, to_panel  # noqa: E402
from tsforecast.exceptions import InvalidInputError, InvalidParameterError  # noqa: E402
from tsforecast.metrics.intervals import interval_columns  # noqa: E402
from tsforecast.plotting import plot_forecasts  # noqa: E402
from tsforecast.tracking.plots import forecast_figure  # noqa: E402

HORIZON = 6
TIMES = pd.date_range("2024-01-01", periods=30, freq="D")


def wide_history(n_series=3):
    rng = np.random.default_rng(0)
    steps = np.arange(len(TIMES))
    return pd.DataFrame(
        {f"s{k}": 10.0 * (k + 1) + np.sin(steps / 3) + rng.normal(size=len(TIMES)) for k in range(n_series)},
        index=TIMES,
    )


def as_layout(wide, layout):
    if layout == "series":
        return wide.iloc[:, 0]
    if layout == "wide":
        return wide
    return wide.rename_axis("ds").reset_index().melt(id_vars="ds", var_name="unique_id", value_name="y")


def forecast(history, levels=(80, 95)):
    """What predict(level=levels) returns for ``history``, and the arrays it holds (rows: series)."""
    panel = to_panel(history)
    point = np.array([v[-1] for v in panel.values])[:, None] + np.linspace(0, 1, HORIZON)  # (series, horizon)
    spread = np.arange(1, HORIZON + 1) / 2.0
    bounds = {}
    for k, level in enumerate(sorted(levels)):
        lo, hi = interval_columns(level)
        bounds[lo], bounds[hi] = point - (k + 1) * spread, point + (k + 1) * 1.5 * spread
    return from_panel(panel, point, bounds or None), point, bounds


def bands(ax):
    return {c.get_label(): c for c in ax.collections if isinstance(c, PolyCollection)}


def forecast_line(ax, label="forecast"):
    (line,) = [line for line in ax.get_lines() if line.get_label() == label]
    return line


def future_x():
    return date2num(pd.date_range(TIMES[-1], periods=HORIZON + 1, freq="D")[1:])


@pytest.mark.parametrize("layout", ["series", "wide", "long"])
def test_every_layout_draws_bands_and_point_forecasts_of_its_series(layout):
    history = as_layout(wide_history(), layout)
    forecasts, point, bounds = forecast(history)
    figure = plot_forecasts(history, forecasts)
    assert len(figure.axes) == len(point)
    for row, ax in enumerate(figure.axes):
        line = forecast_line(ax)
        np.testing.assert_allclose(np.asarray(line.get_ydata(), dtype=float), point[row])
        np.testing.assert_allclose(date2num(line.get_xdata()), future_x())
        drawn = bands(ax)
        assert sorted(drawn) == ["80% interval", "95% interval"]
        for level in (80, 95):
            lo, hi = interval_columns(level)
            vertices = drawn[f"{level}% interval"].get_paths()[0].vertices
            np.testing.assert_allclose(
                np.unique(vertices[:, 1]), np.unique([*bounds[lo][row], *bounds[hi][row]])
            )
            assert vertices[:, 1].min() == pytest.approx(bounds[lo][row].min())
            assert vertices[:, 1].max() == pytest.approx(bounds[hi][row].max())
            assert vertices[:, 0].min() == pytest.approx(future_x()[0])
            assert vertices[:, 0].max() == pytest.approx(future_x()[-1])
        assert drawn["95% interval"].get_alpha() < drawn["80% interval"].get_alpha()  # wider is lighter
        assert ax.get_lines()[0].get_label() == "history"
    figure.savefig(io.BytesIO(), format="png")  # renders on the Agg canvas


def test_one_panel_per_series_up_to_max_series_in_history_order_sharing_no_axis():
    history = as_layout(wide_history(5), "long")
    forecasts = forecast(history)[0]
    figure = plot_forecasts(history, forecasts, max_series=3, n_cols=2)
    assert [ax.get_title() for ax in figure.axes] == ["s0", "s1", "s2"]
    first, second = figure.axes[:2]
    assert first.get_shared_y_axes().get_siblings(first) == [first]
    assert first.get_shared_x_axes().get_siblings(first) == [first]
    assert first.get_ylim() != second.get_ylim()  # each series at its own scale
    picked = plot_forecasts(history, forecasts, ids=["s4", "s0"], max_series=1)
    assert [ax.get_title() for ax in picked.axes] == ["s4", "s0"]


def test_forecasts_without_intervals_draw_lines_only():
    for layout in ("series", "wide", "long"):
        history = as_layout(wide_history(), layout)
        forecasts, point, _ = forecast(history, levels=())
        figure = plot_forecasts(history, forecasts)
        assert not any(bands(ax) for ax in figure.axes), layout
        np.testing.assert_allclose(forecast_line(figure.axes[-1]).get_ydata(), point[-1])


def test_level_chooses_the_bands_and_must_be_present():
    history = as_layout(wide_history(), "long")
    forecasts = forecast(history)[0]
    assert sorted(bands(plot_forecasts(history, forecasts, level=95).axes[0])) == ["95% interval"]
    assert not bands(plot_forecasts(history, forecasts, level=[]).axes[0])
    with pytest.raises(InvalidInputError, match=r"no interval for level \['90'\].*'y_lo_90'.*\['80', '95'\]"):
        plot_forecasts(history, forecasts, level=90)


def test_quantile_columns_draw_their_central_interval():
    history = as_layout(wide_history(1), "long")
    forecasts = forecast(history, levels=())[0]
    forecasts = forecasts.assign(**{"q0.1": forecasts["y_pred"] - 1, "q0.5": forecasts["y_pred"]})
    forecasts["q0.9"] = forecasts["y_pred"] + 2
    (band,) = bands(plot_forecasts(history, forecasts).axes[0]).values()
    assert band.get_label() == "80% interval"
    ys = band.get_paths()[0].vertices[:, 1]
    assert (ys.min(), ys.max()) == pytest.approx((forecasts["q0.1"].min(), forecasts["q0.9"].max()))


def test_history_steps_and_actuals_over_the_forecast_period():
    wide = wide_history(2)
    history, later = wide.iloc[:-HORIZON], wide
    forecasts = forecast(history)[0]
    figure = plot_forecasts(history, forecasts, actuals=later, history_steps=5)
    past, actual = (forecast_line(figure.axes[1], label) for label in ("history", "actual"))
    np.testing.assert_allclose(past.get_ydata(), history["s1"].to_numpy()[-5:])
    np.testing.assert_allclose(actual.get_ydata(), wide["s1"].to_numpy()[-HORIZON:])


def test_forecasts_alone_and_into_given_axes():
    history = as_layout(wide_history(2), "long")
    forecasts = forecast(history)[0]
    mine = Figure()
    axes = mine.subplots(1, 2)
    assert plot_forecasts(None, forecasts, ax=axes) is mine
    assert [line.get_label() for line in axes[0].get_lines()] == ["forecast"]
    with pytest.raises(InvalidParameterError, match="ax holds 1 axes for 2 series"):
        plot_forecasts(history, forecasts, ax=axes[0])


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda f: f.assign(unique_id=f["unique_id"].replace("s1", "zz")),
            r"1 series that history lacks: \['zz'\]",
        ),
        (
            lambda f: f.drop(columns="y_pred"),
            r"lacks the point forecast column 'y_pred'; it has \['unique_id'",
        ),
        (lambda f: f.drop(columns="ds"), r"no time column 'ds'"),
        (
            lambda f: pd.concat([f, f.iloc[:1]]),
            r"1 duplicate \(unique_id, ds\) row\(s\), first in series 's0'",
        ),
        (lambda f: f.iloc[:0], "forecasts is empty"),
        (lambda f: f.to_numpy(), "got ndarray"),
    ],
)
def test_bad_forecasts_are_named(change, message):
    history = as_layout(wide_history(), "long")
    with pytest.raises(InvalidInputError, match=message):
        plot_forecasts(history, change(forecast(history)[0]))


def test_bad_arguments_are_named():
    history = as_layout(wide_history(), "long")
    forecasts = forecast(history)[0]
    with pytest.raises(InvalidInputError, match=r"ids must name series with forecasts; \['nope'\]"):
        plot_forecasts(history, forecasts, ids=["nope"])
    with pytest.raises(InvalidParameterError, match="max_series must be a positive integer; got 0"):
        plot_forecasts(history, forecasts, max_series=0)
    with pytest.raises(InvalidInputError, match="history: "):
        plot_forecasts(history.assign(y="x"), forecasts)
    with pytest.raises(InvalidInputError, match="forecasts is one series .* but history has 3"):
        plot_forecasts(history, forecast(wide_history()["s0"])[0])


def test_missing_matplotlib_says_how_to_install_it(monkeypatch):
    history = wide_history(1)
    forecasts = forecast(history)[0]
    for name in [m for m in sys.modules if m.split(".")[0] == "matplotlib"]:  # as if never installed
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match="plot_forecasts needs matplotlib; install it"):
        plot_forecasts(history, forecasts)


def test_tracking_forecast_figure_draws_the_bands_of_each_model_and_window():
    rows = []
    for model, shift in (("Naive", 0.0), ("LSTM", 1.0)):
        for window in (0, 1):
            for uid in ("a", "b"):
                ds = TIMES[10 + 10 * window : 10 + 10 * window + HORIZON]
                value = np.arange(HORIZON) + shift
                rows.append(
                    pd.DataFrame(
                        {"model": model, "window": window, "unique_id": uid, "ds": ds, "value": value}
                    ).assign(y_lo_80=value - 1, y_hi_80=value + 1)
                )
    predicted = pd.concat(rows, ignore_index=True)
    actual = pd.concat([pd.DataFrame({"unique_id": u, "ds": TIMES, "value": 1.0}) for u in "ab"])
    figure = forecast_figure(actual, predicted, n_series=1)
    (ax,) = figure.axes
    assert ax.get_title() == "series a"
    assert len(bands(ax)) == 4  # one per model and window
    naive = [c for c in ax.collections if c.get_label().endswith("Naive 80%")]
    assert [c.get_paths()[0].vertices[:, 1].max() for c in naive] == [HORIZON, HORIZON]
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["actual", "Naive 80%", "Naive", "LSTM 80%", "LSTM"]
    plain = forecast_figure(actual, predicted.drop(columns=["y_lo_80", "y_hi_80"]), n_series=2)
    assert len(plain.axes) == 2 and not any(bands(ax) for ax in plain.axes)
    assert len(plain.axes[1].get_lines()) == 1 + 4  # actual, then a line per model and window


def test_examples_run():
    assert doctest.testmod(plotting, raise_on_error=False).failed == 0
