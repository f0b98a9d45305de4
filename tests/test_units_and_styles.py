"""°C outputs on every algorithm that writes or shows LST, and the styles the layers load with."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from qgis.core import QgsLayerTreeLayer, QgsLayerTreeModel, QgsProcessingFeedback, QgsProject, QgsRasterLayer

from backend.io.display_range import display_range
from backend.io.lst_raster import KELVIN_OFFSET
from backend.io.readers import read_lst


def _run(alg, params, load=False):
    import processing

    run = processing.runAndLoadResults if load else processing.run
    return run(f"lst_fusion:{alg}", params, feedback=QgsProcessingFeedback())


def _raw(path) -> tuple[np.ndarray, dict, str]:
    """Band 1 as stored (no unit conversion), the tags, and the band description."""
    with rasterio.open(path) as src:
        return src.read(1), src.tags(), src.descriptions[0]


def _assert_celsius_pair(kelvin_path, celsius_path) -> None:
    k, k_tags, k_desc = _raw(kelvin_path)
    c, c_tags, c_desc = _raw(celsius_path)
    np.testing.assert_allclose(c, k - np.float32(KELVIN_OFFSET), atol=2e-4, equal_nan=True)
    assert (k_tags["LST_UNIT"], c_tags["LST_UNIT"]) == ("K", "C")
    assert (k_desc, c_desc) == ("LST (K)", "LST (°C)")
    # Read back by the stages that come next, a °C file is the same LST.
    np.testing.assert_allclose(read_lst(celsius_path).data, read_lst(kelvin_path).data, atol=2e-4)


@pytest.fixture(scope="module")
def chain(tiny_patches):
    root = tiny_patches.parent
    return root, sorted((root / "landsat").glob("*_filled.tif")), sorted((root / "modis30").glob("*.tif"))


def test_gap_fill_and_resample_write_celsius(provider, chain, tmp_path):
    root, _, _ = chain
    runs = {}
    for unit in (0, 1):
        runs[unit, "gap"] = _run("gap_fill", {"INPUT": str(root / "sample"), "SENSOR": 2, "FILL_NEVER_OBSERVED": True,
                                              "OUTPUT_UNIT": unit, "OUTPUT_FOLDER": str(tmp_path / f"gap{unit}")})
        runs[unit, "res"] = _run("resample", {"INPUT": str(tmp_path / f"gap{unit}"),
                                              "REFERENCE_FOLDER": str(root / "landsat"), "OUTPUT_UNIT": unit,
                                              "OUTPUT_FOLDER": str(tmp_path / f"res{unit}")})
    kelvin = sorted((tmp_path / "gap0").glob("*_filled.tif"))
    celsius = sorted((tmp_path / "gap1").glob("*_degC_filled.tif"))
    assert len(kelvin) == len(celsius) > 0
    for k, c in zip(kelvin, celsius):
        _assert_celsius_pair(k, c)
        assert c.with_name(c.name.replace("_filled.tif", "_fillflags.tif")).exists()
    assert json.loads((tmp_path / "gap1" / "gapfill_report.json").read_text())["unit"] == "C"
    kelvin = sorted((tmp_path / "res0").glob("modis_*_bicubic.tif"))
    celsius = sorted((tmp_path / "res1").glob("modis_*_bicubic_degC.tif"))
    assert len(kelvin) == len(celsius) > 0
    for k, c in zip(kelvin, celsius):
        _assert_celsius_pair(k, c)


def test_fuse_and_fuse_series_write_celsius(provider, chain, tmp_path):
    root, fine, coarse = chain
    one = {"METHOD": 0, "WINDOW": 11, "FINE_T1": str(fine[1]), "COARSE_T1": str(coarse[1]),
           "COARSE_T2": str(coarse[2])}
    for unit in (0, 1):
        _run("fuse", {**one, "OUTPUT_UNIT": unit, "OUTPUT": str(tmp_path / f"fused{unit}.tif")})
        _run("fuse_series", {"FINE": str(root / "landsat"), "COARSE": str(root / "modis30"), "METHOD": 0,
                             "WINDOW": 11, "LOAD_OUTPUTS": False, "OUTPUT_UNIT": unit, "INCLUDE_PAIRED": True,
                             "OUTPUT_FOLDER": str(tmp_path / f"series{unit}")})
    _assert_celsius_pair(tmp_path / "fused0.tif", tmp_path / "fused1.tif")
    kelvin = sorted((tmp_path / "series0").glob("lst_*_starfm.tif"))
    celsius = sorted((tmp_path / "series1").glob("lst_*_starfm_degC.tif"))
    assert len(kelvin) == len(celsius) > 0
    for k, c in zip(kelvin, celsius):
        _assert_celsius_pair(k, c)
    with rasterio.open(tmp_path / "series1" / "lst_stack_starfm_degC.vrt") as src:
        assert src.tags()["LST_UNIT"] == "C"
    assert json.loads((tmp_path / "series1" / "fuse_series.json").read_text())["unit"] == "C"


def test_import_writes_celsius(provider, sample_dataset, tmp_path):
    folder, manifest = sample_dataset
    source = str(folder / manifest["dates"][0]["modis_lst"])
    for unit in (0, 1):
        _run("import_lst", {"INPUT": source, "OUTPUT_UNIT": unit, "OUTPUT": str(tmp_path / f"m{unit}.tif")})
    _assert_celsius_pair(tmp_path / "m0.tif", tmp_path / "m1.tif")


def test_evaluate_shows_celsius(provider, chain, tmp_path):
    root, fine, coarse = chain
    _run("fuse", {"METHOD": 0, "WINDOW": 11, "FINE_T1": str(fine[1]), "COARSE_T1": str(coarse[1]),
                  "COARSE_T2": str(coarse[2]), "OUTPUT": str(tmp_path / "fused.tif")})
    res = _run("evaluate", {"PREDICTIONS_FILES": [str(tmp_path / "fused.tif")], "REFERENCE": str(root / "sample" /
                                                                                                  "truth"),
                            "METRIC_UNIT": 1, "OUTPUT_FOLDER": str(tmp_path / "ev")})
    record = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert record["settings"]["unit"] == "C"
    assert "°C" in (tmp_path / "ev" / "report.html").read_text() and res["OUTPUT_FOLDER"]


def test_every_lst_writing_algorithm_offers_the_output_unit(provider):
    algs = {a.name(): a for a in provider.algorithms()}
    for name in ("import_lst", "gap_fill", "resample", "fuse", "fuse_series"):
        param = algs[name].parameterDefinition("OUTPUT_UNIT")
        assert param is not None and param.usesStaticStrings(), name
        assert param.options() == ["K", "C"] and param.defaultValue() == "K", name
        assert param.metadata()["lst_fusion_labels"] == ["Kelvin (K)", "Degrees Celsius (°C)"], name
        assert "C: Degrees Celsius (°C)" in param.help(), name
    assert "°C" in " ".join(algs["evaluate"].parameterDefinition("METRIC_UNIT").metadata()["lst_fusion_labels"])


def _legend_labels(layer) -> list[str]:
    project = QgsProject.instance()
    node = project.layerTreeRoot().findLayer(layer.id())
    assert isinstance(node, QgsLayerTreeLayer)
    model = QgsLayerTreeModel(project.layerTreeRoot())
    return [n.data(0) for n in model.layerLegendNodes(node)]


def test_a_loaded_series_shares_one_range_and_its_legend_says_celsius(provider, layer_tree_view, chain, tmp_path):
    root, _, _ = chain
    project = QgsProject.instance()
    project.removeAllMapLayers()
    _run("fuse_series", {"FINE": str(root / "landsat"), "COARSE": str(root / "modis30"), "METHOD": 0, "WINDOW": 11,
                         "OUTPUT_UNIT": 1, "LOAD_OUTPUTS": True, "INCLUDE_PAIRED": True,
                         "OUTPUT_FOLDER": str(tmp_path / "s")}, load=True)
    layers = [lyr for lyr in project.mapLayers().values() if lyr.name().startswith("LST ")]
    assert len(layers) >= 2 and all(lyr.name().endswith("(°C)") for lyr in layers)
    ranges = {(round(lyr.renderer().classificationMin(), 4), round(lyr.renderer().classificationMax(), 4))
              for lyr in layers}
    assert len(ranges) == 1  # one colour scale for the whole series
    lo, hi = ranges.pop()
    expected = display_range(sorted((tmp_path / "s").glob("lst_*_degC.tif")))
    assert (lo, hi) == pytest.approx(expected, abs=1e-3) and -30 < lo < hi < 60  # °C
    shader = layers[0].renderer().shader().rasterShaderFunction()
    assert shader.legendSettings().suffix() == " °C"
    labels = _legend_labels(layers[0])
    assert any("LST (°C)" in str(label) for label in labels), labels  # the legend's title is the band's
    assert all(lyr.temporalProperties().isActive() for lyr in layers)  # the Temporal Controller steps through
    project.removeAllMapLayers()


def test_error_layers_are_centred_on_zero_and_flags_are_labelled(provider, chain, tmp_path):
    from lst_fusion_plugin.styling import apply_error_style, apply_flag_style

    root, fine, _ = chain
    truth = read_lst(next((root / "sample" / "truth").glob("*.tif"))).data
    diff = tmp_path / "diff.tif"
    with rasterio.open(fine[0]) as src:
        profile = src.profile
    with rasterio.open(diff, "w", **profile) as dst:
        dst.write((read_lst(fine[0]).data - truth + 1.0).astype(np.float32), 1)  # skewed warm: still centred
    layer = QgsRasterLayer(str(diff), "error")
    assert apply_error_style(layer)
    renderer = layer.renderer()
    assert renderer.classificationMin() == pytest.approx(-renderer.classificationMax())
    flags = QgsRasterLayer(str(next(fine[0].parent.glob("*_fillflags.tif"))), "flags")
    assert apply_flag_style(flags)
    labels = {c.value: c.label for c in flags.renderer().classes()}
    assert labels[0] == "observed" and labels[1] == "filled in time" and labels[2] == "filled in space"
    assert labels[255] == "nodata"
