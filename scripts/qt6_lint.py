#!/usr/bin/env python3
"""Fail on Qt5-only idioms, so the plugin keeps running unchanged on PyQt5 (QGIS 3) and PyQt6 (QGIS 4).

What PyQt6 removed, found from the code's syntax tree and checked against the real classes:

* imports of PyQt5/PyQt4/sip instead of ``qgis.PyQt``, and of names Qt6 dropped (QRegExp,
  QDesktopWidget, qApp, compiled ``resources_rc``);
* ``exec_()`` and ``print_()`` (Qt6: ``exec()``, ``print()``);
* enum members reached without their enum (``QDialogButtonBox.Ok``, ``Qt.AlignCenter``): each
  ``Class.Name`` of a class imported from ``qgis.PyQt`` is looked up, and a member whose enum is
  nested in the class must be written ``Class.Enum.Name`` (PyQt5 ≥ 5.11 accepts that too).

There is no way to silence a finding in the code: fix it. Exit status 1 when anything is found.

    .venv/bin/python scripts/qt6_lint.py lst_fusion_plugin scripts
"""

from __future__ import annotations

import ast
import enum
import importlib
import sys
from pathlib import Path

REMOVED_MODULES = ("PyQt5", "PyQt4", "sip")
REMOVED_NAMES = {
    "QRegExp": "use QRegularExpression",
    "QDesktopWidget": "use QScreen (QApplication.screens())",
    "qApp": "use QApplication.instance()",
    "resources_rc": "load icons by file path (compiled resources are gone in Qt6)",
}
RENAMED_METHODS = {"exec_": "exec", "print_": "print"}


def _qt_classes(tree: ast.AST) -> dict[str, object]:
    """The names a file imports from ``qgis.PyQt.*``, bound to the real objects."""
    found: dict[str, object] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("qgis.PyQt"):
            try:
                module = importlib.import_module(node.module)
            except ImportError:
                continue
            for alias in node.names:
                if hasattr(module, alias.name):
                    found[alias.asname or alias.name] = getattr(module, alias.name)
    return found


def _enum_of(owner: object, name: str) -> str | None:
    """The enum's name when ``owner.name`` is an enum member reached without it (PyQt5's unscoped form)."""
    value = getattr(owner, name, None)
    if not isinstance(value, (int, enum.Enum)) or type(value) in (int, bool):  # PyQt5 members are int subclasses
        return None
    qualname = type(value).__qualname__
    return qualname.split(".", 1)[1] if qualname.startswith(f"{owner.__name__}.") else None


def _import_problems(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [f"import {a.name}: import Qt through qgis.PyQt" for a in node.names
                if a.name.split(".")[0] in REMOVED_MODULES]
    found = ([f"from {node.module}: import Qt through qgis.PyQt"]
             if (node.module or "").split(".")[0] in REMOVED_MODULES else [])
    return found + [f"{a.name} is gone in Qt6: {REMOVED_NAMES[a.name]}" for a in node.names if a.name in REMOVED_NAMES]


def _attribute_problem(node: ast.Attribute, classes: dict[str, object]) -> str | None:
    if node.attr in RENAMED_METHODS:
        return f".{node.attr}() is gone in Qt6: call .{RENAMED_METHODS[node.attr]}()"
    if isinstance(node.value, ast.Name) and isinstance(classes.get(node.value.id), type):
        enum_name = _enum_of(classes[node.value.id], node.attr)
        if enum_name:
            return (f"{node.value.id}.{node.attr}: write {node.value.id}.{enum_name}.{node.attr} "
                    "(PyQt6 has scoped enums only)")
    return None


def findings(path: Path) -> list[str]:
    """What in ``path`` runs on Qt5 only, as ``file:line: message`` lines."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    classes = _qt_classes(tree)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            messages = _import_problems(node)
        elif isinstance(node, ast.Attribute):
            messages = [m for m in [_attribute_problem(node, classes)] if m]
        else:
            continue
        out += [f"{path}:{node.lineno}: {m}" for m in messages]
    return out


def main(argv: list[str]) -> int:
    roots = [Path(a) for a in argv] or [Path("lst_fusion_plugin")]
    files = sorted(p for root in roots for p in ([root] if root.is_file() else root.rglob("*.py")))
    problems = [line for f in files for line in findings(f)]
    problems += [f"{p}: compiled Qt resources are gone in Qt6; load files by path"
                 for root in roots if root.is_dir() for p in root.rglob("*.qrc")]
    for line in problems:
        print(line)
    print(f"qt6 lint: {len(files)} files, {len(problems)} Qt5-only idiom(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
