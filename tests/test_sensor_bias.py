"""Sensor-bias correction of the references: what it removes, what it keeps, exact tiling, QGIS."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from qgis.core import QgsProcessingFeedback

from backend.errors import InputError
from backend.fusion import consistency, sensor_bias
from backend.fusion.fuse import fuse
from backend.fusion.onnx_model import OnnxParams, shipped_models
from backend.fusion.params import EstarfmParams, StarfmParams
from backend.io.readers import read_lst


def _scene(seed: int = 0, size: int = 200):
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    return 300 + gaussian_filter(rng.normal(0, 4, (size, size)), 2) + rng.normal(0, 0.5, (size, size))


def _local_bump(size: int = 200, amplitude: float = 3.0) -> np.ndarray:
    """A local departure a few MODIS pixels wide (a badly gap-filled area, a local sensor difference).

    Departures narrower than MODIS's footprint are only partly seen, and so only partly removed.
    """
    yy, xx = np.mgrid[:size, :size]
    return amplitude * np.exp(-((yy - 100) ** 2 + (xx - 100) ** 2) / (2 * 60.0 ** 2))


def test_local_departures_are_removed_and_the_detail_kept():
    sigma = consistency.sigma_px(30.0)
    truth = _scene()
    fine = truth + _local_bump()  # the reference is locally 3 K too warm
    offset = -1.2  # MODIS reads 1.2 K colder than Landsat everywhere
    coarse = consistency.footprint(truth, sigma) + offset
    inner = (slice(60, 140), slice(60, 140))
    landsat = sensor_bias.debias(fine, coarse, sigma, float(np.mean(coarse - fine)))
    modis = sensor_bias.debias(fine, coarse, sigma, None)
    assert np.abs(fine - truth)[inner].max() > 2.5
    # Landsat level: the local departure is gone; the scene's level stays Landsat's (the bump's mean aside).
    assert np.abs(landsat - truth - np.mean(landsat - truth))[inner].max() < 0.35
    # MODIS level: the reference takes MODIS's calibration.
    assert np.abs(modis - (truth + offset))[inner].max() < 0.35
    for out in (landsat, modis):  # the correction is smooth: the fine detail is the reference's
        assert np.std(np.diff(out - fine, axis=1)[inner]) < 0.02


def test_nodata_stays_nodata():
    sigma = 5.0
    fine = _scene(1, 60)
    fine[10:20, 10:20] = np.nan
    coarse = consistency.footprint(np.nan_to_num(fine, nan=300.0), sigma)
    coarse[40:, 40:] = np.nan  # no MODIS there: the reference is left as it is
    out = sensor_bias.debias(fine, coarse, sigma, None)
    assert np.isnan(out[10:20, 10:20]).all()
    assert np.isfinite(out[30:, 30:]).all()


@pytest.fixture(scope="module")
def chain(tiny_patches):
    root = tiny_patches.parent
    return (sorted(str(p) for p in (root / "landsat").glob("*_filled.tif")),
            sorted(str(p) for p in (root / "modis30").glob("*.tif")))


@pytest.mark.parametrize("method,make,refs", [
    ("starfm", lambda **k: StarfmParams(window=11, **k), 1),
    ("estarfm", lambda **k: EstarfmParams(window=11, **k), 2),
])
@pytest.mark.parametrize("options", [{"sensor_bias": "landsat"}, {"sensor_bias": "modis", "coarse_consistency": True}])
def test_window_methods_stay_exact_per_tile(chain, tmp_path, method, make, refs, options):
    fine, coarse = chain
    pairs = [(fine[1], coarse[1])] + ([(fine[3], coarse[3])] if refs == 2 else [])
    whole = fuse(method, pairs, coarse[2], tmp_path / "whole.tif", make(**options))
    tiled = fuse(method, pairs, coarse[2], tmp_path / "tiled.tif", make(**options), tile_rows=13, tile_cols=17)
    a = read_lst(whole.path).data
    np.testing.assert_allclose(a, read_lst(tiled.path).data, atol=1e-4)
    with rasterio.open(whole.path) as src:
        assert src.tags()["FUSION_SENSOR_BIAS"].startswith(options["sensor_bias"])
    plain = read_lst(fuse(method, pairs, coarse[2], tmp_path / "plain.tif",
                          make(sensor_bias="none", coarse_consistency=False)).path).data
    assert not np.allclose(a, plain)


def test_modis_level_follows_modis_for_a_network(chain, tmp_path):
    """With the MODIS-level correction, the scene-wide MODIS − Landsat offset of the reference is not passed on."""
    fine, coarse = chain
    pairs = [(fine[1], coarse[1])]
    runs = {mode: read_lst(fuse("onnx", pairs, coarse[2], tmp_path / f"{mode}.tif",
                                OnnxParams(shipped=shipped_models()[0], sensor_bias=mode)).path).data
            for mode in ("none", "modis")}
    f1, c1, c2 = (read_lst(p).data for p in (fine[1], coarse[1], coarse[2]))
    level = {mode: float(np.nanmean(out - c2)) for mode, out in runs.items()}
    reference_offset = float(np.nanmean(c1 - f1))
    assert abs(level["modis"]) < abs(level["none"]) or abs(reference_offset) < 0.1, (level, reference_offset)
    assert abs(level["none"] - level["modis"] + reference_offset) < 0.5


def test_an_unknown_mode_is_refused():
    with pytest.raises(InputError, match="SENSOR_BIAS"):
        StarfmParams(sensor_bias="both").validate()


def test_processing_offers_the_modes_and_each_methods_default(provider, chain, tmp_path):
    """SENSOR_BIAS and COARSE_CONSISTENCY: 'the method's default' first (the dataclasses' own), then every mode."""
    import processing

    fine, coarse = chain
    algs = {a.name(): a for a in provider.algorithms()}
    for name in ("fuse", "fuse_series"):
        param = algs[name].parameterDefinition("SENSOR_BIAS")
        labels = param.metadata()["lst_fusion_labels"]  # offered by name: 'default', then each mode
        assert param.usesStaticStrings() and param.options() == ["default", *sensor_bias.MODES]
        assert labels[1:] == list(sensor_bias.MODE_LABELS) and param.defaultValue() == "default"
        assert "ESTARFM: local, landsat level" in labels[0]
        consistency_param = algs[name].parameterDefinition("COARSE_CONSISTENCY")
        assert consistency_param.options()[1:] == ["Off", "On"] and "ESTARFM: on" in consistency_param.options()[0]

    def run(extra, name):
        params = {"WINDOW": 11, "FINE_T1": fine[1], "COARSE_T1": coarse[1], "COARSE_T2": coarse[2],
                  "OUTPUT": str(tmp_path / name), **extra}
        res = processing.run("lst_fusion:fuse", params, feedback=QgsProcessingFeedback())
        with rasterio.open(res["OUTPUT"]) as src:
            return src.tags()

    assert "FUSION_SENSOR_BIAS" not in run({"METHOD": 0}, "starfm_default.tif")  # STARFM's default: none
    assert run({"METHOD": 0, "SENSOR_BIAS": 2}, "starfm_landsat.tif")["FUSION_SENSOR_BIAS"].startswith("landsat")
    two = {"METHOD": 1, "FINE_T3": fine[3], "COARSE_T3": coarse[3]}
    tags = run(two, "estarfm_default.tif")  # ESTARFM's defaults: both on
    assert tags["FUSION_SENSOR_BIAS"].startswith("landsat") and "FUSION_COARSE_CONSISTENCY" in tags
    tags = run({**two, "SENSOR_BIAS": 1, "COARSE_CONSISTENCY": 1}, "estarfm_off.tif")
    assert "FUSION_SENSOR_BIAS" not in tags and "FUSION_COARSE_CONSISTENCY" not in tags
