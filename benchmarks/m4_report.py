"""The M4 benchmark's output (``benchmarks/m4.py``): tables a person reads, JSON a machine checks.

``report`` prints each model's sMAPE, MASE, OWA and time beside the published figures of the M4
method of the same name; with intervals, a second table of MSIS, coverage %, ACD, fit seconds and the
fit time over the point network's (same seed) beside M4's published interval figures; then the
reference rows of the published results. ``write_json`` writes the same numbers.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import pandas as pd

from tsforecast.datasets import M4Data

INTERVAL_SCORES = ("msis", "coverage", "acd", "fit_seconds", "fit_ratio")  # in the JSON with intervals
WITH_SD = ("smape", "mase", "owa", "msis", "coverage", "acd", "fit_ratio")  # mean ± sd over seeds

# Published rows printed under the table besides the best one: the overall M4 winner and M4's own
# neural-network benchmarks, the yardsticks of this project's recurrent models.
REFERENCE_ROWS = {
    "118": "ES-RNN, overall M4 winner",
    "RNN": "M4's RNN benchmark",
    "MLP": "M4's MLP benchmark",
}
INTERVAL_REFERENCE_ROWS = {"118": "ES-RNN, overall M4 winner", "ARIMA": "M4's ARIMA", "ETS": "M4's ETS"}


def report(
    data: M4Data, results: dict, specs: dict, published, reference_note, n_total, level=None, intervals=None
) -> str:
    """The tables: scores per model (beside M4's), the interval scores with ``level``, M4's references."""
    header = ["model", "sMAPE", "MASE", "OWA", "seconds"]
    if published is not None:
        header += ["M4 method", "M4 sMAPE", "M4 MASE", "M4 OWA"]
    rows = []
    for key, result in results.items():
        row = [
            _name(key, result),
            _num(result.smape, sd=result.sd.get("smape")),
            _num(result.mase, sd=result.sd.get("mase")),
            _num(result.owa, sd=result.sd.get("owa")),
            _num(result.seconds, 1),
        ]
        if published is not None:
            m4_name = specs[key].m4_name
            theirs = published.loc[m4_name] if m4_name in published.index else {}
            row += [m4_name or "-", *(_num(theirs.get(name)) for name in ("smape", "mase", "owa"))]
        rows.append(row)
    lines = [
        f"M4 {data.frequency}: {data.n_series} series, horizon {data.horizon}, season length "
        f"{data.season_length}; OWA relative to {reference_note}.",
    ]
    if published is not None and data.n_series < n_total:
        lines.append(f"The M4 columns score all {n_total} series, this run the first {data.n_series}.")
    lines += ["", _table(header, rows, left={0, 5})]
    if level is not None:
        lines += [
            "",
            f"{level:g}% intervals: MSIS averaged over series (seasonal period {data.season_length}), "
            "coverage and ACD pooled over all points (as M4); fit seconds, and x point: over the fit of the "
            "point network of the same seed:",
            _interval_table(results, specs, intervals),
        ]
    failures = [f"  {key}: {result.error}" for key, result in results.items() if result.error]
    if failures:
        lines += ["", "failed:", *failures]
    if published is not None:
        notes = {str(published["owa"].idxmin()): f"best {data.frequency} OWA", **REFERENCE_ROWS}
        columns = {"smape": "sMAPE", "mase": "MASE", "owa": "OWA"}
        lines += ["", f"Published M4 {data.frequency} results for reference:"]
        lines.append(_reference_table(published, notes, columns))
    if intervals is not None:
        notes = {str(intervals["msis"].idxmin()): f"best {data.frequency} MSIS", **INTERVAL_REFERENCE_ROWS}
        lines += ["", f"Published M4 {data.frequency} 95% intervals for reference:"]
        lines.append(_reference_table(intervals, notes, {"msis": "MSIS", "acd": "ACD"}))
    return "\n".join(lines)


def _interval_table(results: dict, specs: dict, intervals) -> str:
    header = ["model", "MSIS", "coverage %", "ACD", "fit s", "x point"]
    if intervals is not None:
        header += ["M4 method", "M4 MSIS", "M4 ACD"]
    rows = []
    for key, r in results.items():
        row = [
            _name(key, r),
            _num(r.msis, sd=r.sd.get("msis")),
            _num(100 * r.coverage, 1, 100 * r.sd.get("coverage", math.nan)),
            _num(r.acd, sd=r.sd.get("acd")),
            _num(r.fit_seconds, 1),
            _num(r.fit_ratio, 2, r.sd.get("fit_ratio")),
        ]
        if intervals is not None:
            method = specs[key].m4_intervals
            theirs = intervals.loc[method] if method in intervals.index else {}
            row += [method or "-", _num(theirs.get("msis")), _num(theirs.get("acd"))]
        rows.append(row)
    return _table(header, rows, left={0, 6})


def _reference_table(published: pd.DataFrame, notes: dict, columns: dict) -> str:
    rows = [
        [method, note, published.loc[method, "team"], *(_num(published.loc[method, c]) for c in columns)]
        for method, note in notes.items()
        if method in published.index
    ]
    return _table(["method", "note", "team", *columns.values()], rows, left={0, 1, 2})


def _name(key: str, result) -> str:
    return key if not result.seeds else f"{key} ({len(result.seeds)} seeds)"


def _num(value, digits: int = 3, sd: float | None = None) -> str:
    if value is None or pd.isna(value):
        return "-"
    return f"{value:.{digits}f}" + ("" if sd is None or pd.isna(sd) else f" ± {sd:.{digits}f}")


def _table(header: list, rows: list, left: set) -> str:
    """Plain-text columns: the ``left`` ones left-aligned (text), the others right-aligned (numbers)."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells):
        padded = (
            str(c).ljust(w) if i in left else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        return "  ".join(padded).rstrip()

    return "\n".join([line(header), *(line(row) for row in rows)])


def write_json(path: Path, data: M4Data, results: dict, specs: dict, level=None, intervals=None) -> None:
    """The scores as JSON, written atomically (see benchmarks/README.md for the schema)."""

    def finite(value):
        return float(value) if value is not None and math.isfinite(value) else None

    document = {
        "frequency": data.frequency,
        "n_series": data.n_series,
        "horizon": data.horizon,
        "results": {
            key: _result_json(result, specs[key].m4_intervals, finite, level, intervals)
            for key, result in results.items()
        },
    }
    if level is not None:
        document["level"] = level
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        try:
            json.dump(document, tmp, indent=2, allow_nan=False)
        except BaseException:
            tmp.close()
            os.remove(tmp.name)
            raise
    os.replace(tmp.name, path)  # readers never see a half-written file


def _result_json(result, method, finite, level=None, intervals=None) -> dict:
    names = ("smape", "mase", "owa", "seconds", *(INTERVAL_SCORES if level is not None else ()))
    document = {name: finite(getattr(result, name)) for name in names}
    if intervals is not None and method in intervals.index:
        document["m4_intervals"] = {
            "method": method,
            **{n: finite(intervals.loc[method, n]) for n in ("msis", "acd")},
        }
    if result.seeds:
        document.update({f"{name}_sd": finite(result.sd.get(name)) for name in names if name in WITH_SD})
        document["seeds"] = {
            str(seed): {name: finite(getattr(one, name)) for name in names}
            for seed, one in result.seeds.items()
        }
    return document
