"""The Fuse algorithm in QGIS: STARFM/ESTARFM behind one METHOD parameter, styled output, errors."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from qgis.core import QgsProcessingException, QgsProcessingFeedback, QgsProject

from backend.io.readers import read_lst

REPO = Path(__file__).resolve().parents[1]
Y = "yanco_ubestarfm"



def _yanco(shared_data, name):
    return str(shared_data / Y / name)


def test_starfm_on_yanco_loaded_and_styled(provider, layer_tree_view, shared_data, tmp_path):
    import processing

    QgsProject.instance().removeAllMapLayers()
    out = tmp_path / "starfm_20160308.tif"
    res = processing.runAndLoadResults("lst_fusion:fuse", {
        "METHOD": 0, "UNIT": 1, "WINDOW": 31,
        "FINE_T1": _yanco(shared_data, "Landsat_LST_cloudrm_20160205.tif"),
        "COARSE_T1": _yanco(shared_data, "MOD11A1_LST_cloudrm_20160205.tif"),
        "COARSE_T2": _yanco(shared_data, "MOD11A1_LST_cloudrm_20160308.tif"),
        "OUTPUT": str(out)}, feedback=QgsProcessingFeedback())
    assert res["DATE"] == "2016-03-08" and res["VALID_FRACTION"] > 0.99
    layer = QgsProject.instance().mapLayersByName("LST 2016-03-08 STARFM (K)")[0]
    assert layer.renderer().type() == "singlebandpseudocolor"
    assert read_lst(out).product == "STARFM fusion"
    QgsProject.instance().removeAllMapLayers()


def test_estarfm_needs_its_second_pair(provider, shared_data, tmp_path):
    import processing

    params = {"METHOD": 1, "UNIT": 1,
              "FINE_T1": _yanco(shared_data, "Landsat_LST_cloudrm_20160205.tif"),
              "COARSE_T1": _yanco(shared_data, "MOD11A1_LST_cloudrm_20160205.tif"),
              "COARSE_T2": _yanco(shared_data, "MOD11A1_LST_cloudrm_20160218.tif"),
              "OUTPUT": str(tmp_path / "x.tif")}
    with pytest.raises(QgsProcessingException, match="FINE_T3 and COARSE_T3"):
        processing.run("lst_fusion:fuse", params, feedback=QgsProcessingFeedback())
    params.update(FINE_T3=_yanco(shared_data, "Landsat_LST_cloudrm_20160205.tif"),
                  COARSE_T3=_yanco(shared_data, "MOD11A1_LST_cloudrm_20160205.tif"))
    with pytest.raises(QgsProcessingException, match="must lie between the two reference dates"):
        processing.run("lst_fusion:fuse", params, feedback=QgsProcessingFeedback())
    assert not (tmp_path / "x.tif").exists()


@pytest.mark.slow
def test_fuse_through_qgis_process(shared_data, tmp_path):
    env = dict(os.environ, QGIS_CUSTOM_CONFIG_PATH=str(tmp_path / "cfg"), QT_QPA_PLATFORM="offscreen")
    env.pop("QGIS_PLUGINPATH", None)
    out = tmp_path / "fused.tif"
    run = subprocess.run([str(REPO / "scripts" / "qgis_process"), "run", "lst_fusion:fuse", "--json", "--",
                          "METHOD=0", "UNIT=1", "WINDOW=21",
                          f"FINE_T1={_yanco(shared_data, 'Landsat_LST_cloudrm_20160205.tif')}",
                          f"COARSE_T1={_yanco(shared_data, 'MOD11A1_LST_cloudrm_20160205.tif')}",
                          f"COARSE_T2={_yanco(shared_data, 'MOD11A1_LST_cloudrm_20160218.tif')}",
                          f"OUTPUT={out}"], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    results = json.loads(run.stdout[run.stdout.index("{"):])["results"]
    assert results["OUTPUT"] == str(out) and results["DATE"] == "2016-02-18"
    assert np.isfinite(read_lst(out).data).mean() > 0.99
