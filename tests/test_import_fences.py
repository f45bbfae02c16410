"""The three packages' import fences: bench -> trainloop, bench -> reports, and nothing else.

Run-time checks import every module in a fresh interpreter and look at what got loaded;
the source checks read every ``import`` statement, lazy ones inside functions included.
"""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

HEAVY = ("tensorflow", "keras")


def _modules(package: str) -> list[str]:
    path = [str(ROOT / package)]
    return [package, *(m.name for m in pkgutil.walk_packages(path, f"{package}."))]


def _loaded_after_importing(modules: list[str]) -> list[str]:
    """Top-level packages among HEAVY, bench, reports, trainloop loaded by ``modules``."""
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + "print(sorted({m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    loaded = set(ast.literal_eval(out.stdout.strip()))
    return sorted(loaded & {*HEAVY, "bench", "reports", "trainloop"})


def _imported_packages(path: Path) -> set[str]:
    """The top-level packages a source file imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_reports_loads_no_tensorflow_nor_the_other_packages():
    modules = _modules("reports")
    assert "reports.summary" in modules and "reports.layout" in modules
    assert _loaded_after_importing(modules) == ["reports"]


def test_the_parent_side_of_bench_loads_no_tensorflow():
    # Everything the tapebench command runs in its own process; the benchmark scripts
    # time TensorFlow in-process and are left out, and __main__ would run the command.
    modules = [
        m
        for m in _modules("bench")
        if not m.startswith("bench.benchmarks") and m != "bench.__main__"
    ]
    assert "bench.worker" in modules and "bench.cli.run" in modules
    assert _loaded_after_importing(modules) == ["bench", "reports", "trainloop"]


@pytest.mark.parametrize(
    "package, forbidden",
    [("trainloop", {"bench", "reports"}), ("reports", {"bench", "trainloop", *HEAVY})],
)
def test_no_module_imports_across_a_fence(package, forbidden):
    files = sorted((ROOT / package).rglob("*.py"))
    assert len(files) > 5
    crossings = {str(f.relative_to(ROOT)): sorted(_imported_packages(f) & forbidden) for f in files}
    assert {f: c for f, c in crossings.items() if c} == {}


def test_the_source_scan_sees_lazy_imports(tmp_path):
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from bench.cli import main\n    import tensorflow as tf\n")
    assert _imported_packages(source) == {"bench", "tensorflow"}
