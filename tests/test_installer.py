"""The plugin's package installer: commands, failures explained, and a real install into a fresh QGIS profile."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lst_fusion_plugin import dependencies, installer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import build_plugin  # noqa: E402
import qgis_desktop  # noqa: E402


def test_the_pins_are_the_projects_and_each_group_runs_once(tmp_path):
    project = (REPO / "requirements.txt").read_text()
    assert "-r lst_fusion_plugin/requirements/fusion.txt" in project  # one list of pins, not two
    fusion, training = installer.pip_commands(["fusion", "training"], tmp_path, python="py")
    assert fusion[:3] == ["py", "-m", "pip"] and fusion[fusion.index("--target") + 1] == str(tmp_path)
    assert "numba==0.68.1" in fusion and "dask[distributed]==2026.8.0" in fusion
    import numpy

    assert f"numpy=={numpy.__version__}" in fusion  # pip may not bring another numpy than QGIS's
    assert "torch==2.13.0" in training
    assert training[training.index("--extra-index-url") + 1] == installer.TORCH_CPU_INDEX
    assert installer.module_of("dask[distributed]==2026.8.0") == "distributed"
    assert installer.module_of("affine<3") == "affine"
    assert dependencies.OPTIONAL["onnxruntime"][0] == "onnxruntime==1.32.0"


def _fake_python(tmp_path: Path, output: str, status: int) -> str:
    script = tmp_path / "python3"
    script.write_text(f"#!/bin/sh\necho {output!r}\nexit {status}\n")
    script.chmod(0o755)
    return str(script)


@pytest.mark.parametrize("output,why", [
    ("/usr/bin/python3: No module named pip", "has no pip"),
    ("WARNING: Retrying ... Failed to establish a new connection: [Errno 111]", "could not be reached"),
    ("ERROR: Failed building wheel for llvmlite", "exit status 1"),
])
def test_failures_are_explained(tmp_path, output, why):
    with pytest.raises(installer.InstallError, match=why) as info:
        installer.install(["fusion"], tmp_path / "pkgs", on_line=lambda line: None,
                          python=_fake_python(tmp_path, output, 1), only_missing=False)
    assert output.split(":")[-1].strip()[:20] in str(info.value)  # pip's own last lines are shown too


def test_numpy_pip_brought_is_removed(tmp_path):
    target = tmp_path / "pkgs"
    (target / "numpy").mkdir(parents=True)  # there before the install: not ours to remove
    pip = tmp_path / "python3"  # a pip that brings numpy as a dependency, beside what was asked for
    pip.write_text("#!/bin/sh\nt=\"$(echo \"$@\" | sed 's/.*--target \\([^ ]*\\).*/\\1/')\"\n"
                   "mkdir -p \"$t/numba\" \"$t/numpy-1.24.2.dist-info\" \"$t/numpy.libs\" \"$t/bin\"\n"
                   "touch \"$t/bin/f2py\"\necho ok\n")
    pip.chmod(0o755)
    installer.install(["fusion"], target, on_line=lambda line: None, python=str(pip), only_missing=False)
    assert sorted(p.name for p in target.iterdir()) == ["bin", "numba", "numpy"]
    assert not list((target / "bin").iterdir())


def test_the_packages_folder_comes_after_a_venv(tmp_path, monkeypatch):
    folder = tmp_path / "profile" / "python" / installer.folder_name()
    folder.mkdir(parents=True)
    venv_site = tmp_path / "venv" / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    venv_site.mkdir(parents=True)
    monkeypatch.setenv(installer.TARGET_ENV, str(folder))
    monkeypatch.setenv(dependencies.ENV_VAR, str(tmp_path / "venv"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    dependencies.add_paths()
    assert sys.path.index(str(venv_site)) < sys.path.index(str(folder)) < sys.path.index(str(Path(os.__file__).parent))


# ------------------------------------------------------------------ a real install (slow)

FUSE_CHECK = textwrap.dedent("""
    def main(out, finish):
        import processing
        res = processing.run("lst_fusion:fuse", PARAMS)
        out["output"] = res["OUTPUT"]
        import numba
        out["numba"] = numba.__file__
        finish(out)
""")


@pytest.mark.slow
@pytest.mark.skipif(not qgis_desktop.available(), reason="needs qgis and xvfb-run")
def test_installer_makes_a_fresh_profile_fuse(tiny_patches, tmp_path):
    """The zip in a profile with no venv: headless Fuse says what is missing and the command; that command
    installs from the package index into the profile; QGIS, restarted under Xvfb, then fuses."""
    root = tiny_patches.parent
    fine, coarse = sorted((root / "landsat").glob("*_filled.tif")), sorted((root / "modis30").glob("*.tif"))
    profiles = tmp_path / "profiles"
    zip_path = build_plugin.package(tmp_path / "dist" / "lst_fusion_plugin.zip")
    plugin = build_plugin.deploy(zip_path, profiles / "profiles" / "default")
    qgis_desktop.enable_plugin(profiles / "profiles" / "default")
    env = {k: v for k, v in os.environ.items() if k not in ("QGIS_PLUGINPATH", installer.TARGET_ENV,
                                                              dependencies.ENV_VAR, "PYTHONPATH", "VIRTUAL_ENV")}
    env.update(QT_QPA_PLATFORM="offscreen", QGIS_CUSTOM_CONFIG_PATH=str(profiles))
    env["PATH"] = ":".join(p for p in env["PATH"].split(":") if ".venv" not in p)
    params = {"METHOD": 0, "WINDOW": 11, "FINE_T1": str(fine[1]), "COARSE_T1": str(coarse[1]),
              "COARSE_T2": str(coarse[2])}

    def headless(out: Path):
        args = [f"{k}={v}" for k, v in {**params, "OUTPUT": str(out)}.items()]
        return subprocess.run(["/usr/bin/qgis_process.bin", "run", "lst_fusion:fuse", "--", *args], env=env,
                              capture_output=True, text=True, timeout=300)

    before = headless(tmp_path / "before.tif")
    said = before.stdout + before.stderr
    assert before.returncode != 0 and "numba" in said and "Traceback" not in said, said[-3000:]
    command = next(line for line in said.splitlines() if "installer.py" in line).split("Install with: ", 1)[1]
    target = profiles / "profiles" / "default" / "python" / installer.folder_name()
    assert str(target) in command and str(plugin / "installer.py") in command
    python = command.split(" ")[0].strip('"')
    assert subprocess.run([python, "-c", "import qgis.core"], env=env).returncode == 0  # QGIS's own Python
    assert not (tmp_path / "before.tif").exists()

    run = subprocess.run(command, shell=True, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert (target / "numba").is_dir() and (target / "onnxruntime").is_dir() and not (target / "numpy").exists()

    out, log = qgis_desktop.run(profiles, FUSE_CHECK, tmp_path, env=env,
                                PARAMS=dict(params, OUTPUT=str(tmp_path / "after.tif")))
    assert out is not None, log
    assert "error" not in out, out["error"]
    assert Path(out["output"]).exists() and out["numba"].startswith(str(target))
    after = headless(tmp_path / "after_headless.tif")
    assert after.returncode == 0, (after.stdout + after.stderr)[-3000:]


def test_the_dialog_lists_what_is_missing_and_shows_pips_log(qgis_app, tmp_path, monkeypatch):
    from qgis.PyQt.QtWidgets import QDialogButtonBox

    from lst_fusion_plugin.installer_dialog import InstallerDialog

    monkeypatch.setenv(installer.TARGET_ENV, str(tmp_path / "pkgs"))
    monkeypatch.setattr(installer, "missing", lambda groups: ["numba==0.68.1"] if "fusion" in groups else [])
    monkeypatch.setattr(installer, "qgis_python", lambda: _fake_python(tmp_path, "Successfully installed numba", 0))
    dialog = InstallerDialog()
    assert dialog.boxes["fusion"].isChecked() and "numba==0.68.1" in dialog.boxes["fusion"].text()
    assert not dialog.boxes["training"].isEnabled()
    assert str(tmp_path / "pkgs") in dialog.layout().itemAt(0).widget().text()  # says where it installs
    dialog.start()
    assert dialog.worker.wait(30000)
    qgis_app.processEvents()
    text = dialog.log.toPlainText()
    assert "Successfully installed numba" in text and "Restart QGIS" in text
    assert dialog.progress.value() == 1 and not dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()
