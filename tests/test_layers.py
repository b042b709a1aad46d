"""The layering rules of STYLE.md ("The house: one direction of imports"), read from the source.

Every ``import`` and ``from ... import`` statement of ``tsforecast/`` is parsed with :mod:`ast`,
including those inside functions: a lazy import that points upward still points upward. A string
that is exactly a module path (``"tsforecast.nn.estimators"``, as the registry names its classes) is
read as the lazy import it stands for, and ``tsforecast.Name`` through the package facade as an
import of the module the facade loads ``Name`` from.
"""

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import tsforecast
from tsforecast.registry import MODELS

PACKAGE = Path(tsforecast.__file__).parent
ROOT = PACKAGE.parent
MAX_LINES = 500

# STYLE.md's table, bottom up: a module may import modules of its own level and of the levels below.
# The key is the first name after ``tsforecast.`` (a top-level module or a subpackage).
LAYERS = {
    # epochs.py: the typed training record (pandas only); urls.py: what storage and tracking URLs
    # share; memory.py: the process's resident memory (history_, benchmarks)
    0: ("exceptions", "epochs", "urls", "memory"),
    1: ("data", "datasets"),  # datasets.py: the public path of the loaders in data/
    2: ("windowing", "scaling"),
    3: ("metrics", "backtesting", "plotting"),  # plotting.py: matplotlib figures of forecasts
    4: ("base",),
    5: ("baselines", "conformal"),  # conformal.py: calibrated intervals around any forecaster
    6: ("nn", "diagnostics"),  # diagnostics.py: the public path of nn/diagnostics (imports torch)
    # registry.py names the classes of baselines and nn/ by module path and imports them on first
    # use, so it sits above nn/; tuning looks its baselines up there.
    7: ("tuning", "tracking", "registry"),
    # __main__.py: `python -m tsforecast` (torchrun starts it); spark.py: batch forecasts on Spark
    8: ("pipelines", "cli", "__main__", "spark"),
}
LEVEL = {name: level for level, names in LAYERS.items() for name in names}

# tsforecast/__init__.py is the public facade: it names every layer (lazily, so that importing it
# loads none of them) and sits above all of them, so it is exempt from the layer rule as an importer.
# Importing the bare package from a module is fine (it loads nothing); ``tsforecast.Name`` counts as
# an import of the module that Name comes from.
FACADE = "tsforecast"

TORCH_FREE = (
    "tsforecast",
    "tsforecast.exceptions",
    "tsforecast.urls",
    "tsforecast.data",
    "tsforecast.datasets",
    "tsforecast.windowing",
    "tsforecast.scaling",
    "tsforecast.metrics",
    "tsforecast.backtesting",
    "tsforecast.base",
    "tsforecast.baselines",
    "tsforecast.registry",
    "tsforecast.tuning",
)


@dataclass(frozen=True)
class Import:
    """One import of one module: what it names, where, and how (for the failure messages)."""

    importer: str
    target: str
    path: str
    line: int
    how: str

    def __str__(self):
        return f"{self.path}:{self.line} ({self.importer}) imports {self.target} [{self.how}]"


def _modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the package (``__init__.py`` names its package)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _owner(name: str) -> str:
    """The longest module of the package that ``name`` (a module or a name inside one) lies in."""
    while name not in MODULES and "." in name:
        name = name.rpartition(".")[0]
    return name


def _facade_target(attribute: str) -> str | None:
    """The module the facade loads ``tsforecast.<attribute>`` from, if it is one of its names."""
    if attribute in tsforecast._LAZY:
        return tsforecast._LAZY[attribute]
    return tsforecast._MODULES.get(attribute)


def _imports_of(module: str, path: Path) -> list[Import]:
    """Every import of ``module``: of tsforecast modules (resolved to the module) and of others."""
    tree = ast.parse(path.read_text(), filename=str(path))
    where = str(path.relative_to(ROOT))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []

    def add(target, node, how):
        if target.startswith(f"{FACADE}.") and target not in MODULES:
            target = _owner(target)
        found.append(Import(module, target, where, node.lineno, how))

    bare_package = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node, f"import {alias.name}")
                bare_package |= alias.name == FACADE and alias.asname is None
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the importer's package, up level - 1 packages
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            statement = f"from {'.' * node.level}{node.module or ''} import"
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in MODULES:
                    target = full
                elif base == FACADE:
                    target = _facade_target(alias.name) or FACADE
                else:
                    target = base
                add(target, node, f"{statement} {alias.name}")
        elif isinstance(node, ast.Constant) and node.value in MODULES and node.value != FACADE:
            add(node.value, node, f"the string {node.value!r}, a lazy import")
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == FACADE
            and _facade_target(node.attr)
        ):
            add(_facade_target(node.attr), node, f"tsforecast.{node.attr}")
    if not bare_package:  # a local variable of that name is not the package
        found = [i for i in found if not i.how.startswith("tsforecast.")]
    return found


IMPORTS = [imported for module, path in MODULES.items() for imported in _imports_of(module, path)]


def _layer(module: str) -> str | None:
    """The LAYERS key of a tsforecast module (None for the facade itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _is_nn(module: str) -> bool:
    return module == "tsforecast.nn" or module.startswith("tsforecast.nn.")


# -- (a) torch stays inside nn/ ---------------------------------------------------------------------


def test_only_nn_imports_torch():
    offenders = [
        f"{i}: only tsforecast/nn/ may import torch (STYLE.md: the torch boundary is nn/)"
        for i in IMPORTS
        if i.target.split(".")[0] == "torch" and not _is_nn(i.importer)
    ]
    assert not offenders, "\n".join(offenders)


def test_layers_below_nn_do_not_import_torch():
    """In a fresh interpreter, import each torch-free module in turn; name the first that pulls torch in."""
    code = (
        "import importlib, sys\n"
        f"for name in {TORCH_FREE!r}:\n"
        "    importlib.import_module(name)\n"
        "    if 'torch' in sys.modules:\n"
        "        sys.exit(f'importing {name} imported torch')\n"
        "import tsforecast\n"
        "tsforecast.backtest, tsforecast.compare, tsforecast.Naive2, tsforecast.metrics\n"
        "sys.exit('torch' in sys.modules and 'the lazy attributes of tsforecast imported torch')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


# -- (b) imports point down -------------------------------------------------------------------------


def test_every_module_has_a_layer():
    missing = sorted(
        {
            f"{MODULES[m].relative_to(ROOT)}: no layer for {_layer(m)!r}; add it to LAYERS (and STYLE.md)"
            for m in MODULES
            if m != FACADE and _layer(m) not in LEVEL
        }
    )
    assert not missing, "\n".join(missing)


def test_imports_point_down_the_layers():
    upward = []
    for i in IMPORTS:
        if i.importer == FACADE or not i.target.startswith(FACADE) or i.target == FACADE:
            continue
        mine, theirs = _layer(i.importer), _layer(i.target)
        if mine not in LEVEL or theirs not in LEVEL or LEVEL[theirs] <= LEVEL[mine]:
            continue
        upward.append(
            f"{i}: layer {LEVEL[mine]} ({mine}) imports layer {LEVEL[theirs]} ({theirs}); imports must "
            "point down (STYLE.md): move the code down a layer or pass the object in"
        )
    assert not upward, "\n".join(upward)


def test_the_rules_see_lazy_and_string_imports():
    """The parser finds what the rules rely on: function-level imports, strings, the facade."""
    edges = {(i.importer, i.target, i.how.split()[0]) for i in IMPORTS}
    assert ("tsforecast.cli.fit", "tsforecast.registry", "from") in edges  # inside add_parser
    assert ("tsforecast.registry", MODELS["lstm"].module, "the") in edges  # ModelEntry's module path
    assert ("tsforecast.tracking.pyfunc", tsforecast._LAZY["load"], "tsforecast.load") in edges


# -- (c) small modules ------------------------------------------------------------------------------


def test_modules_stay_small():
    too_long = []
    for path in MODULES.values():
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES:
            too_long.append(
                f"{path.relative_to(ROOT)} has {lines} lines, over {MAX_LINES} (STYLE.md 11): split it "
                "into modules that each own one thing"
            )
    assert not too_long, "\n".join(too_long)


# -- (d) no import cycles inside nn/ ----------------------------------------------------------------


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per back edge that a depth-first search of ``graph`` meets (each as a closed path)."""
    cycles, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for successor in sorted(graph.get(node, ())):
            if state.get(successor) == "open":
                cycles.append([*stack[stack.index(successor) :], successor])
            elif successor not in state:
                visit(successor)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_cycle_detection_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycles_inside_nn():
    graph, where = {}, {}
    for i in IMPORTS:
        if _is_nn(i.importer) and _is_nn(i.target) and i.importer != i.target:
            graph.setdefault(i.importer, set()).add(i.target)
            where.setdefault((i.importer, i.target), i)
    found = [
        " -> ".join(cycle)
        + "\n    "
        + "\n    ".join(str(where[edge]) for edge in zip(cycle, cycle[1:], strict=False))
        for cycle in _cycles(graph)
    ]
    assert not found, (
        "import cycles inside tsforecast/nn/ (STYLE.md: public seams, not lazy imports that dodge a "
        "cycle; move the shared piece down):\n" + "\n".join(found)
    )
