"""backend/ and models/ never import QGIS or Qt: they must run in plain Python."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = ("qgis", "PyQt5", "PyQt6", "processing", "sip")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_qgis_imports_in_source():
    files = sorted((REPO / "backend").rglob("*.py")) + sorted((REPO / "models").rglob("*.py"))
    assert files
    bad = {str(f.relative_to(REPO)): _imports(f) & set(FORBIDDEN) for f in files}
    assert not {k: v for k, v in bad.items() if v}


def test_backend_imports_without_qgis_loaded():
    modules = [".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
               for p in (REPO / "backend").rglob("*.py")]
    assert "backend.fusion.fuse" in modules and "backend.io" in modules
    code = (
        "import sys, importlib\n"
        f"for m in {modules!r} + ['models']: importlib.import_module(m)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}]\n"
        "assert not bad, bad\n"
        "print('ok', len(sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("ok")
