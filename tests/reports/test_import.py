import pkgutil
import subprocess
import sys

import reports
from tests.conftest import ROOT


def test_reports_imports_without_tensorflow():
    modules = [m.name for m in pkgutil.walk_packages(reports.__path__, "reports.")]
    assert "reports.summary" in modules
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in ["reports", *modules])
        + "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras', 'trainloop', 'bench')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "[]"
