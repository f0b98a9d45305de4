"""QGIS itself, in subprocesses: qgis_process through the documented wrapper, the zip
package installed into a temporary profile, and the desktop application under Xvfb."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
WRAPPER = REPO / "scripts" / "qgis_process"
sys.path.insert(0, str(REPO / "scripts"))
import build_plugin  # noqa: E402
import qgis_desktop  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture()
def qgis_env(tmp_path):
    """Environment with a throw-away QGIS profile, so tests never touch the user's."""
    env = dict(os.environ)
    env["QGIS_CUSTOM_CONFIG_PATH"] = str(tmp_path / "qgis_config")
    env["QT_QPA_PLATFORM"] = "offscreen"
    env.pop("QGIS_PLUGINPATH", None)
    return env


def _json(stdout: str) -> dict:
    return json.loads(stdout[stdout.index("{"):])


def qgis_process(env, *args, check=True):
    run = subprocess.run([str(WRAPPER), *args], env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return run


def test_wrapper_lists_provider(qgis_env):
    listing = _json(qgis_process(qgis_env, "list", "--json").stdout)
    provider = listing["providers"]["lst_fusion"]
    assert provider["name"] == "LST Fusion"
    assert {"lst_fusion:generate_sample_dataset", "lst_fusion:import_lst"} <= set(provider["algorithms"])


def test_wrapper_runs_sample_data_and_import_with_json(qgis_env, tmp_path):
    out = tmp_path / "sample"
    res = _json(qgis_process(qgis_env, "run", "lst_fusion:generate_sample_dataset", "--json", "--",
                             f"OUTPUT_FOLDER={out}", "WIDTH=40", "HEIGHT=40", "N_DATES=2", "SEED=4").stdout)
    assert res["results"]["DATE_COUNT"] == 2
    manifest = Path(res["results"]["MANIFEST"])
    assert manifest.exists() and manifest.parent == out
    rec = json.loads(manifest.read_text())["dates"][1]
    decoded = tmp_path / "modis.tif"
    res = _json(qgis_process(qgis_env, "run", "lst_fusion:import_lst", "--json", "--",
                             f"INPUT={out / rec['modis_lst']}", f"OUTPUT={decoded}").stdout)
    assert res["results"]["OUTPUT"] == str(decoded) and res["results"]["DATE_OUT"] == rec["date"]
    from backend.io.readers import read_lst

    np.testing.assert_array_equal(read_lst(decoded).data, read_lst(out / rec["modis_lst"]).data)


def test_wrapper_reports_bad_input(qgis_env, tmp_path):
    bogus = tmp_path / "notes.tif"
    bogus.write_text("not a raster")
    run = qgis_process(qgis_env, "run", "lst_fusion:import_lst", "--", f"INPUT={bogus}",
                       f"OUTPUT={tmp_path / 'o.tif'}", check=False)
    assert run.returncode != 0
    assert "notes.tif: cannot be read as a raster" in run.stdout + run.stderr
    assert not (tmp_path / "o.tif").exists()


@pytest.fixture(scope="module")
def installed_profile(tmp_path_factory):
    """`make package`'s zip, unpacked into a fresh profile as QGIS's Install-from-ZIP does."""
    root = tmp_path_factory.mktemp("profiles")
    run = subprocess.run(["make", "package"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    zip_path = REPO / "dist" / "lst_fusion_plugin.zip"
    import zipfile

    names = zipfile.ZipFile(zip_path).namelist()
    assert {n.split("/")[0] for n in names} == {"lst_fusion_plugin"}, "one top folder"
    for needed in ("metadata.txt", "__init__.py", "provider.py", "backend/io/readers.py", "models/__init__.py",
                   "icons/lst_fusion.svg"):
        assert f"lst_fusion_plugin/{needed}" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    profile = root / "profiles" / "default"
    target = build_plugin.deploy(zip_path, profile)
    assert (target / "metadata.txt").exists() and not (target / "venv_path.txt").exists()
    qgis_desktop.enable_plugin(profile)
    return root


def test_packaged_plugin_runs_in_qgis_process(installed_profile, tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QGIS_CUSTOM_CONFIG_PATH=str(installed_profile))
    env.pop("QGIS_PLUGINPATH", None)
    run = subprocess.run(["/usr/bin/qgis_process.bin", "run", "lst_fusion:generate_sample_dataset", "--json",
                          "--", f"OUTPUT_FOLDER={tmp_path / 's'}", "WIDTH=24", "HEIGHT=24", "N_DATES=1"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert _json(run.stdout)["results"]["DATE_COUNT"] == 1


DESKTOP_CHECK = textwrap.dedent("""
    import sys
    from qgis.core import QgsApplication
    import qgis.utils

    def main(out, finish):
        reg = QgsApplication.processingRegistry()
        provider = reg.providerById("lst_fusion")
        out["active"] = "lst_fusion_plugin" in qgis.utils.active_plugins
        out["loaded"] = "lst_fusion_plugin" in qgis.utils.plugins
        out["plugin_file"] = getattr(sys.modules.get("lst_fusion_plugin"), "__file__", "")
        out["algorithms"] = [a.id() for a in provider.algorithms()] if provider else []
        import processing
        res = processing.run("lst_fusion:generate_sample_dataset",
                             {"OUTPUT_FOLDER": OUT_DIR, "WIDTH": 24, "HEIGHT": 24, "N_DATES": 1})
        out["date_count"] = res["DATE_COUNT"]
        finish(out)
""")


@pytest.mark.skipif(not qgis_desktop.available(), reason="needs qgis and xvfb-run")
def test_desktop_loads_packaged_plugin_under_xvfb(installed_profile, tmp_path):
    out, log = qgis_desktop.run(installed_profile, DESKTOP_CHECK, tmp_path, timeout=240,
                                OUT_DIR=str(tmp_path / "sample"))
    assert out is not None, log
    assert "error" not in out, out["error"]
    assert out["active"] and out["loaded"], out
    assert out["plugin_file"].startswith(str(installed_profile)), out
    assert "lst_fusion:import_lst" in out["algorithms"]
    assert out["date_count"] == 1
    assert "Traceback" not in log, log


def test_wrapper_runs_preprocessing_chain_and_model(qgis_env, tmp_path):
    s = tmp_path / "sample"
    qgis_process(qgis_env, "run", "lst_fusion:generate_sample_dataset", "--", f"OUTPUT_FOLDER={s}", "WIDTH=64",
                 "HEIGHT=64", "N_DATES=3", "START_DATE=2020-06-01", "END_DATE=2020-07-03")
    res = {}
    for alg, params in (
        ("gap_fill", [f"INPUT={s}", "SENSOR=1", f"OUTPUT_FOLDER={tmp_path / 'l'}"]),
        ("gap_fill", [f"INPUT={s}", "SENSOR=2", f"OUTPUT_FOLDER={tmp_path / 'm'}"]),
        ("resample", [f"INPUT={tmp_path / 'm'}", f"REFERENCE_FOLDER={tmp_path / 'l'}",
                      f"OUTPUT_FOLDER={tmp_path / 'm30'}"]),
        ("build_patches", [f"FINE={tmp_path / 'l'}", f"COARSE={tmp_path / 'm30'}", "PATCH_SIZE=32", "STRIDE=16",
                           f"OUTPUT_FOLDER={tmp_path / 'p'}"]),
    ):
        res[alg] = _json(qgis_process(qgis_env, "run", f"lst_fusion:{alg}", "--json", "--", *params).stdout)["results"]
    assert res["gap_fill"]["DATE_COUNT"] == 3 and Path(res["gap_fill"]["REPORT"]).exists()
    assert res["resample"]["DATE_COUNT"] == 3
    assert res["build_patches"]["TRIPLETS"] == 2 and Path(res["build_patches"]["MANIFEST"]).exists()
    model = REPO / "examples" / "lst_preprocessing.model3"
    out = _json(qgis_process(qgis_env, "run", str(model), "--json", "--", "WIDTH=64", "HEIGHT=64", "N_DATES=3",
                             "START_DATE=2020-06-01", "END_DATE=2020-07-03", "PATCH_SIZE=32", "STRIDE=16",
                             f"patches:PATCHES={tmp_path / 'model_patches'}").stdout)
    assert out["results"]["patches:PATCHES"] == str(tmp_path / "model_patches")
    assert (tmp_path / "model_patches" / "manifest.json").exists()
