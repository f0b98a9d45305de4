"""The preprocessing algorithms in QGIS: toolbox entries, processing.run, the graphical model."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from qgis.core import QgsProcessingException, QgsProcessingFeedback, QgsProcessingModelAlgorithm

from backend.io.grid import Grid
from backend.preprocess.sample_data import SampleSpec, generate_sample_dataset

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "examples" / "lst_preprocessing.model3"



@pytest.fixture(scope="module")
def season(tmp_path_factory):
    root = tmp_path_factory.mktemp("season")
    generate_sample_dataset(root / "sample", SampleSpec(width=128, height=112, n_dates=6, start=dt.date(2020, 5, 1),
                                                        end=dt.date(2020, 8, 5), cloudiness=0.3, seed=4))
    return root


def _run(alg, params, feedback=None):
    import processing

    return processing.run(f"lst_fusion:{alg}", params, feedback=feedback or QgsProcessingFeedback())


def test_toolbox_entries(provider):
    algs = {a.name(): a for a in provider.algorithms()}
    for name in ("gap_fill", "resample", "build_patches"):
        assert algs[name].group() == "2 · Preprocessing"
        assert len(algs[name].shortHelpString()) > 200


def test_chain_through_processing_run(provider, season, tmp_path):
    filled = _run("gap_fill", {"INPUT": str(season / "sample"), "SENSOR": 1, "OUTPUT_FOLDER": str(tmp_path / "l")})
    assert filled["DATE_COUNT"] == 6 and 0 < filled["FILLED_FRACTION"] < 1
    modis = _run("gap_fill", {"INPUT": str(season / "sample"), "SENSOR": 2, "OUTPUT_FOLDER": str(tmp_path / "m")})
    resampled = _run("resample", {"INPUT": modis["OUTPUT_FOLDER"], "REFERENCE_FOLDER": filled["OUTPUT_FOLDER"],
                                  "OUTPUT_FOLDER": str(tmp_path / "m30")})
    assert resampled["DATE_COUNT"] == 6
    outputs = sorted(Path(resampled["OUTPUT_FOLDER"]).glob("modis_*.tif"))
    reference = Grid.of(str(next(Path(filled["OUTPUT_FOLDER"]).glob("*_filled.tif"))))
    assert all(Grid.of(str(o)) == reference for o in outputs)
    patches = _run("build_patches", {"FINE": filled["OUTPUT_FOLDER"], "COARSE": resampled["OUTPUT_FOLDER"],
                                     "PATCH_SIZE": 32, "STRIDE": 16, "OUTPUT_FOLDER": str(tmp_path / "p")})
    per_image = ((112 - 32) // 16 + 1) * ((128 - 32) // 16 + 1)
    assert patches["TRIPLETS"] == 5
    assert patches["TRAIN_PATCHES"] + patches["VAL_PATCHES"] + patches["TEST_PATCHES"] == 5 * per_image
    assert json.loads(Path(patches["MANIFEST"]).read_text())["kind"] == "lst_fusion_patch_dataset"


def test_resample_with_explicit_grid(provider, season, tmp_path):
    res = _run("resample", {"INPUT": str(season / "sample" / "modis"), "TARGET_CRS": "EPSG:32631",
                            "RESOLUTION": 100.0, "EXTENT": "416000,419000,5305000,5308000 [EPSG:32631]",
                            "METHOD": 2, "OUTPUT_FOLDER": str(tmp_path / "r")})
    grid = Grid.of(str(next(Path(res["OUTPUT_FOLDER"]).glob("*.tif"))))
    assert (grid.width, grid.height, grid.transform.a) == (30, 30, 100.0)
    with pytest.raises(QgsProcessingException, match="REFERENCE raster or REFERENCE_FOLDER"):
        _run("resample", {"INPUT": str(season / "sample" / "modis"), "OUTPUT_FOLDER": str(tmp_path / "z")})


def test_bad_inputs_and_cancel(provider, season, tmp_path):
    with pytest.raises(QgsProcessingException, match="Mixed sensors"):
        _run("gap_fill", {"INPUT": str(season / "sample"), "OUTPUT_FOLDER": str(tmp_path / "x")})
    with pytest.raises(QgsProcessingException, match="Give the series"):
        _run("gap_fill", {"OUTPUT_FOLDER": str(tmp_path / "x")})
    with pytest.raises(QgsProcessingException, match="TEST_DATES"):
        _run("build_patches", {"FINE": str(season / "sample" / "landsat"), "COARSE": str(season / "sample"),
                               "TEST_DATES": "someday", "OUTPUT_FOLDER": str(tmp_path / "x")})
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        _run("gap_fill", {"INPUT": str(season / "sample"), "SENSOR": 1, "OUTPUT_FOLDER": str(tmp_path / "x")},
             feedback)
    assert not (tmp_path / "x").exists()
    assert list(tmp_path.iterdir()) == []


def test_loaded_outputs_are_styled(provider, layer_tree_view, season, tmp_path):
    import processing
    from qgis.core import QgsProject

    QgsProject.instance().removeAllMapLayers()
    processing.runAndLoadResults("lst_fusion:gap_fill", {
        "INPUT": str(season / "sample"), "SENSOR": 1, "LOAD_OUTPUTS": True, "OUTPUT_FOLDER": str(tmp_path / "l")},
        feedback=QgsProcessingFeedback())
    layers = [lyr for lyr in QgsProject.instance().mapLayers().values() if "gap-filled (K)" in lyr.name()]
    assert len(layers) == 6
    assert all(lyr.renderer().type() == "singlebandpseudocolor" for lyr in layers)
    assert len({(lyr.renderer().classificationMin(), lyr.renderer().classificationMax()) for lyr in layers}) == 1
    flags = [lyr for lyr in QgsProject.instance().mapLayers().values() if lyr.name().startswith("Fill flags")]
    assert len(flags) == 6 and all(lyr.renderer().type() == "paletted" for lyr in flags)
    assert all(lyr.temporalProperties().isActive() for lyr in layers + flags)
    QgsProject.instance().removeAllMapLayers()


def test_graphical_model_runs_the_chain(provider, tmp_path):
    import processing

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(MODEL))
    assert [c.algorithmId() for c in sorted(model.childAlgorithms().values(), key=lambda c: c.childId())] == [
        "lst_fusion:gap_fill", "lst_fusion:gap_fill", "lst_fusion:build_patches", "lst_fusion:resample",
        "lst_fusion:generate_sample_dataset"]
    out = tmp_path / "patches"
    res = processing.run(model, {"WIDTH": 96, "HEIGHT": 96, "N_DATES": 4, "START_DATE": "2020-06-01",
                                 "END_DATE": "2020-08-05", "PATCH_SIZE": 48, "STRIDE": 24,
                                 "patches:PATCHES": str(out)}, feedback=QgsProcessingFeedback())
    assert res["patches:PATCHES"] == str(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["pairs"]) == 4 and sum(c["triplets"] for c in manifest["counts"].values()) == 3
    sample_patch = np.load(out / "images.npy", mmap_mode="r")
    assert sample_patch.shape == (4, 2, 96, 96)
