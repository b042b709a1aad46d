"""The README's quickstart runs as written (in a fresh interpreter, from the repository root)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
M4_DIR = ROOT.parent / "shared" / "data" / "m4"  # the path the quickstart itself names


def section_code(title: str) -> str:
    """The first python code block of the README section ``## title``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, flags=re.S | re.M)
    assert section, f"README.md has no '## {title}' section"
    block = re.search(r"```python\n(.*?)```", section.group(1), flags=re.S)
    assert block, f"README.md's '## {title}' section has no python code block"
    return block.group(1)


def test_quickstart_block_is_found():
    code = section_code("Quickstart")
    assert "backtest(" in code and "load_m4" in code


@pytest.mark.skipif(not (M4_DIR / "Hourly-train.csv").is_file(), reason=f"M4 Hourly files not in {M4_DIR}")
def test_quickstart_runs_as_written():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", section_code("Quickstart")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "SeasonalNaive" in out.stdout and "smape" in out.stdout


def test_documented_import_paths_work_in_a_fresh_interpreter():
    """Import paths the README names (diagnostics, tracking's compare), as statements, not attributes."""
    code = (
        "import tsforecast.diagnostics\n"
        "from tsforecast.diagnostics import DiagnosticReport, diagnose\n"
        "from tsforecast.nn.diagnostics import diagnose as implementation\n"
        "from tsforecast.backtesting import compare\n"
        "import tsforecast\n"
        "assert diagnose is implementation is tsforecast.diagnostics.diagnose\n"
        "assert compare is tsforecast.compare\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
