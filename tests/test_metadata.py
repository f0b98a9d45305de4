"""The plugin as the QGIS plugin repository and the Processing toolbox see it: metadata, changelog, help, icons."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import build_plugin  # noqa: E402
import plugin_metadata  # noqa: E402

PUBLICATION = {"email": "lst-fusion@uni-lab.eu", "repository": "https://git.uni-lab.eu/lst-fusion",
               "tracker": "https://git.uni-lab.eu/lst-fusion/issues", "homepage": ""}


def test_source_metadata_has_every_required_field_and_no_placeholder():
    meta = plugin_metadata.read(REPO / "metadata.txt")
    assert plugin_metadata.problems(meta, REPO / "lst_fusion_plugin") == []
    assert meta["qgisMaximumVersion"] == "4.99" and meta["hasProcessingProvider"] == "yes"
    assert meta["supportsQt6"] == "True"  # QGIS 4's plugin manager offers only plugins that say so
    # What only the publisher knows is left out rather than invented, and an upload check says so.
    missing = plugin_metadata.problems(meta, REPO / "lst_fusion_plugin", upload=True)
    assert sorted(m.split()[0] for m in missing) == ["email", "repository", "tracker"]


def test_versions_agree_and_the_changelog_has_this_release():
    import tomllib

    from backend import __version__

    meta = plugin_metadata.read(REPO / "metadata.txt")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert meta["version"] == __version__ == project
    assert plugin_metadata.changelog_entries(REPO / "CHANGELOG.md")[0][0] == meta["version"]


@pytest.mark.parametrize("bad,why", [({"email": "dev@example.org"}, "placeholder"),
                                     ({"repository": "git.uni-lab.eu/lst"}, "not a web address"),
                                     ({"email": "not an address"}, "not an address")])
def test_the_checker_refuses_what_the_repository_would(bad, why):
    meta = {**plugin_metadata.read(REPO / "metadata.txt"), **PUBLICATION, **bad}
    assert any(why in p for p in plugin_metadata.problems(meta, REPO / "lst_fusion_plugin", upload=True))


def test_the_package_carries_the_publication_fields_and_the_changelog(tmp_path):
    zip_path = build_plugin.package(tmp_path / "lst_fusion_plugin.zip", PUBLICATION)
    with zipfile.ZipFile(zip_path) as zf:
        (tmp_path / "metadata.txt").write_bytes(zf.read("lst_fusion_plugin/metadata.txt"))
        names = zf.namelist()
    meta = plugin_metadata.read(tmp_path / "metadata.txt")
    assert plugin_metadata.problems(meta, REPO / "lst_fusion_plugin", upload=True, changelog=None) == []
    assert meta["repository"] == PUBLICATION["repository"] and "homepage" not in meta
    assert meta["changelog"].startswith(meta["version"] + ":")
    assert "lst_fusion_plugin/installer.py" in names and "lst_fusion_plugin/requirements/fusion.txt" in names
    with pytest.raises(SystemExit, match="placeholder"):
        build_plugin.package(tmp_path / "bad.zip", {**PUBLICATION, "email": "me@example.com"})
    assert not (tmp_path / "bad.zip").exists()


def test_every_algorithm_has_its_groups_icon_and_help_listing_its_parameters(provider):
    icons = set()
    for alg in provider.algorithms():
        assert not alg.icon().isNull()
        help_text = alg.shortHelpString()
        assert "<h3>Parameters</h3>" in help_text
        assert "&#x27;" not in help_text and "&quot;" not in help_text  # qgis_process shows the help raw
        for param in alg.parameterDefinitions():
            if param.flags() & param.FlagHidden:  # an old name kept for saved models
                assert f"<b>{param.name()}</b>" not in help_text, (alg.name(), param.name())
                continue
            assert f"<b>{param.name()}</b>" in help_text, (alg.name(), param.name())
            if param.type() in ("number", "boolean", "enum") and param.defaultValue() is not None:
                row = help_text.split(f"<b>{param.name()}</b>", 1)[1].split("</li>", 1)[0]
                assert "Default: " in row, (alg.name(), param.name(), row)  # every default is visible
        icons.add((alg.groupId(), (REPO / "lst_fusion_plugin" / "icons" / f"{alg.groupId()}.svg").is_file()))
    assert {group for group, exists in icons if exists} == {"data", "preprocessing", "training", "fusion",
                                                             "evaluation"}


def test_staging_touches_no_qgis_profile(tmp_path):
    """make install/test/demo stage the plugin for the tests; only `make deploy` writes into a profile (two
    clones staging must not overwrite the plugin a user runs)."""
    profile = tmp_path / "profile"
    dest = tmp_path / "staged"
    assert build_plugin.main(["stage", "--dest", str(dest), "--venv", str(tmp_path / "no-venv"),
                              "--profile", str(profile)]) == 0
    assert (dest / "lst_fusion_plugin" / "metadata.txt").is_file()
    assert not profile.exists()


@pytest.mark.slow
def test_qgis_process_script_leaves_the_default_profile_alone(tmp_path):
    """scripts/qgis_process enables the plugin in a profile of the clone's own, not in the user's."""
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "QGIS_CUSTOM_CONFIG_PATH"}
    run = subprocess.run([str(REPO / "scripts" / "qgis_process"), "plugins"], env={**env, "HOME": str(home)},
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "lst_fusion_plugin" in run.stdout
    touched = [p for p in home.rglob("*") if p.is_file() and "lst_fusion" in p.read_text(errors="ignore")]
    assert not touched, touched
    assert "lst_fusion_plugin=true" in (REPO / "build" / "qgis-config" / "profiles" / "default" / "QGIS" /
                                         "QGIS3.ini").read_text()


QT5_ONLY = '''from PyQt5.QtCore import QRegExp
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QDialog, QDialogButtonBox


def ask(parent):
    box = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
    box.setCenterButtons(Qt.AlignCenter == 4)
    return QDialog(parent).exec_()
'''


def test_the_qt6_lint_catches_qt5_only_idioms(tmp_path):
    """`make test` fails on code that runs on PyQt5 only; the scoped form, which both accept, passes."""
    import qt6_lint

    bad = tmp_path / "bad.py"
    bad.write_text(QT5_ONLY)
    found = "\n".join(qt6_lint.findings(bad))
    for expected in ("bad.py:1: from PyQt5.QtCore", "QRegExp is gone", "bad.py:7: QDialogButtonBox.Ok: write "
                     "QDialogButtonBox.StandardButton.Ok", "QDialogButtonBox.Cancel", "bad.py:8: Qt.AlignCenter: "
                     "write Qt.AlignmentFlag.AlignCenter", "bad.py:9: .exec_() is gone"):
        assert expected in found, (expected, found)
    assert qt6_lint.main([str(tmp_path)]) == 1
    good = tmp_path / "good.py"
    good.write_text(QT5_ONLY.replace("from PyQt5.QtCore import QRegExp\n", "").replace(".exec_()", ".exec()")
                    .replace("QDialogButtonBox.Ok", "QDialogButtonBox.StandardButton.Ok")
                    .replace("QDialogButtonBox.Cancel", "QDialogButtonBox.StandardButton.Cancel")
                    .replace("Qt.AlignCenter", "Qt.AlignmentFlag.AlignCenter"))
    assert qt6_lint.findings(good) == []
    assert qt6_lint.main([str(REPO / "lst_fusion_plugin"), str(REPO / "scripts"), str(REPO / "tests")]) == 0
