"""Coarse-consistency correction: agreement with MODIS at its scale, exact tiling, every method, QGIS."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from qgis.core import QgsProcessingFeedback

from backend.fusion import consistency
from backend.fusion.fuse import fuse
from backend.fusion.onnx_model import OnnxParams, shipped_models
from backend.fusion.params import EstarfmParams, StarfmParams
from backend.io.readers import read_lst


def _scene(seed: int = 0, size: int = 160):
    rng = np.random.default_rng(seed)
    from scipy.ndimage import gaussian_filter

    texture = gaussian_filter(rng.normal(0, 4, (size, size)), 2) + rng.normal(0, 0.5, (size, size))
    return 295 + texture


def test_a_mis_scaled_heat_wave_is_brought_back_to_modis():
    """Truth warms by 8 K; a method that passes only half of it is corrected to MODIS's level, detail kept."""
    sigma = consistency.sigma_px(30.0)
    fine1 = _scene()
    truth2 = fine1 + 8.0
    offset = -1.5  # MODIS reads 1.5 K colder than Landsat on every date
    coarse1 = consistency.footprint(fine1, sigma) + offset
    coarse2 = consistency.footprint(truth2, sigma) + offset
    prediction = fine1 + 4.0
    corrected = consistency.correct(prediction, [fine1, coarse1, coarse2], sigma)
    inner = (slice(50, 110), slice(50, 110))
    assert np.abs(prediction - truth2)[inner].mean() == pytest.approx(4.0, abs=0.01)
    assert np.abs(corrected - truth2)[inner].max() < 0.05
    # The fine detail is the prediction's: the correction is smooth.
    assert np.std(np.diff(corrected - prediction, axis=1)[inner]) < 0.01
    # A prediction that already agrees is left alone.
    unchanged = consistency.correct(truth2, [fine1, coarse1, coarse2], sigma)
    assert np.abs(unchanged - truth2)[inner].max() < 1e-4  # float32 rounding


def test_two_references_average_their_offsets_and_nodata_stays_nodata():
    sigma = 5.0
    fine1, fine3 = _scene(1, 80), _scene(2, 80)
    coarse1 = consistency.footprint(fine1, sigma) - 1.0
    coarse3 = consistency.footprint(fine3, sigma) - 3.0
    truth2 = fine1 + 2.0
    coarse2 = consistency.footprint(truth2, sigma) - 2.0  # the mean of the two offsets
    prediction = truth2.copy()
    prediction[10:20, 10:20] = np.nan
    corrected = consistency.correct(prediction, [fine1, coarse1, fine3, coarse3, coarse2], sigma)
    assert np.isnan(corrected[10:20, 10:20]).all()
    assert np.nanmax(np.abs(corrected - truth2)[30:50, 30:50]) < 2e-3


@pytest.fixture(scope="module")
def chain(tiny_patches):
    root = tiny_patches.parent
    return (sorted(str(p) for p in (root / "landsat").glob("*_filled.tif")),
            sorted(str(p) for p in (root / "modis30").glob("*.tif")))


@pytest.mark.parametrize("method,params,refs", [
    ("starfm", StarfmParams(window=11, coarse_consistency=True), 1),
    ("estarfm", EstarfmParams(window=11, coarse_consistency=True), 2),
])
def test_window_methods_stay_exact_per_tile(chain, tmp_path, method, params, refs):
    fine, coarse = chain
    pairs = [(fine[1], coarse[1])] + ([(fine[3], coarse[3])] if refs == 2 else [])
    whole = fuse(method, pairs, coarse[2], tmp_path / "whole.tif", params)
    tiled = fuse(method, pairs, coarse[2], tmp_path / "tiled.tif", params, tile_rows=13, tile_cols=17)
    a, b = read_lst(whole.path).data, read_lst(tiled.path).data
    np.testing.assert_allclose(a, b, atol=1e-4)
    with rasterio.open(whole.path) as src:
        assert "sigma" in src.tags()["FUSION_COARSE_CONSISTENCY"]
    plain = read_lst(fuse(method, pairs, coarse[2], tmp_path / "plain.tif",
                          type(params)(window=11, coarse_consistency=False)).path).data
    assert not np.allclose(a, plain)  # it did something


def test_agreement_with_modis_improves_for_every_method(chain, tmp_path):
    fine, coarse = chain
    sigma = consistency.sigma_px(30.0)
    runs = [("starfm", StarfmParams, [(fine[1], coarse[1])]),
            ("estarfm", lambda **k: EstarfmParams(sensor_bias="none", **k),
             [(fine[1], coarse[1]), (fine[3], coarse[3])]),
            ("onnx", lambda **k: OnnxParams(shipped=shipped_models()[0], **k), [(fine[1], coarse[1])])]
    modis = consistency.footprint(read_lst(coarse[2]).data, sigma)  # compared where the correction acts
    for method, make, pairs in runs:
        offset = np.mean([read_lst(c).data - consistency.footprint(read_lst(f).data, sigma) for f, c in pairs],
                         axis=0)
        errors = []
        for on in (False, True):
            out = fuse(method, pairs, coarse[2], tmp_path / f"{method}_{on}.tif", make(coarse_consistency=on))
            seen = consistency.footprint(consistency.footprint(read_lst(out.path).data, sigma) + offset, sigma)
            errors.append(float(np.nanmean(np.abs(seen - modis))))
        assert errors[1] < 0.6 * errors[0], (method, errors)


def test_processing_offers_the_option(provider, chain, tmp_path):
    import processing

    fine, coarse = chain
    res = processing.run("lst_fusion:fuse", {"METHOD": 0, "WINDOW": 11, "COARSE_CONSISTENCY": 2,
                                             "FINE_T1": fine[1], "COARSE_T1": coarse[1], "COARSE_T2": coarse[2],
                                             "OUTPUT": str(tmp_path / "f.tif")}, feedback=QgsProcessingFeedback())
    with rasterio.open(res["OUTPUT"]) as src:
        assert "FUSION_COARSE_CONSISTENCY" in src.tags()
    algs = {a.name(): a for a in provider.algorithms()}
    for name in ("fuse", "fuse_series"):
        param = algs[name].parameterDefinition("UNCERTAINTY")
        assert param is not None and param.type() == "boolean" and param.defaultValue() is False


def _blocks(a: np.ndarray, n: int = 9) -> np.ndarray:
    """Means over n × n pixel blocks (~1 km at Yanco's 100 m): what MODIS resolves."""
    h, w = (a.shape[0] // n) * n, (a.shape[1] // n) * n
    return np.nanmean(a[:h, :w].reshape(h // n, n, w // n, n), axis=(1, 3))


@pytest.mark.parametrize("day", ["20160218", "20160308"])
def test_real_yanco_dates_agree_better_with_modis(shared_data, tmp_path, day):
    """Fused from the 2016-02-05 pair: with the options on (consistency and the Landsat-level sensor-bias
    correction) the result agrees with MODIS at 1 km better than without consistency, stays physical
    and keeps the fine reference's detail."""
    from scipy.ndimage import gaussian_filter

    from backend.progress import Progress

    y = shared_data / "yanco_ubestarfm"
    f1, c1, c2 = (y / "Landsat_LST_cloudrm_20160205.tif", y / "MOD11A1_LST_cloudrm_20160205.tif",
                  y / f"MOD11A1_LST_cloudrm_{day}.tif")
    quiet = Progress(on_warning=lambda message: None)  # one nodata pixel in the Yanco files
    runs = {(on, bias): read_lst(fuse("starfm", [(f1, c1)], c2, tmp_path / f"{on}_{bias}.tif",
                                      StarfmParams(coarse_consistency=on, sensor_bias=bias), unit="K",
                                      progress=quiet).path).data
            for on, bias in ((False, "none"), (True, "none"), (False, "landsat"), (True, "landsat"))}
    fine, m1, m2 = (read_lst(p, unit="K").data for p in (f1, c1, c2))
    # MODIS − Landsat on the reference date, as each run keeps it: local, or the scene's mean.
    offset = {"none": _blocks(m1 - fine), "landsat": float(np.nanmean(m1 - fine))}
    errors = {(on, bias): float(np.sqrt(np.nanmean((_blocks(p) + offset[bias] - _blocks(m2)) ** 2)))
              for (on, bias), p in runs.items()}
    assert errors[True, "none"] < 0.6 * errors[False, "none"], errors  # it agrees with MODIS at its resolution
    assert errors[True, "landsat"] < min(errors[False, "landsat"], errors[False, "none"]), errors

    def detail(a):
        return a - gaussian_filter(np.nan_to_num(a, nan=float(np.nanmean(a))), 5)

    for key in ((True, "none"), (True, "landsat")):
        corrected = runs[key]
        assert 270 < np.nanmin(corrected) and np.nanmax(corrected) < 345
        ok = np.isfinite(corrected) & np.isfinite(fine)
        assert np.corrcoef(detail(corrected)[ok], detail(fine)[ok])[0, 1] > 0.7, key  # the fine detail is kept


@pytest.mark.parametrize("method", ["starfm", "estarfm", "onnx"])
def test_uncertainty_band_covers_about_68_percent(tmp_path, method):
    """The 1σ raster, calibrated on other seeds' seasons, covers 55-80 % of the errors on this one."""
    import datetime as dt
    import json

    from backend.fusion.series import fuse_series
    from backend.preprocess.sample_data import SampleSpec
    from backend.preprocess.sample_season import prepare_sample_season
    from backend.progress import Progress

    quiet = Progress(on_warning=lambda message: None)
    spec = SampleSpec(width=240, height=240, n_dates=10, start=dt.date(2019, 3, 1), end=dt.date(2020, 10, 30),
                      cloudiness=0.3, seed=31)
    prepare_sample_season(tmp_path, spec, quiet)
    params = {"starfm": lambda: StarfmParams(uncertainty=True), "estarfm": lambda: EstarfmParams(uncertainty=True),
              "onnx": lambda: OnnxParams(shipped=shipped_models()[0], uncertainty=True)}[method]()
    result = fuse_series(method, [tmp_path / "landsat"], [tmp_path / "modis30"], tmp_path / "fused", params,
                         include_paired=True, progress=quiet)
    truth = {read_lst(p).date.isoformat(): p for p in (tmp_path / "sample" / "truth").glob("LST_truth_*.tif")}
    inside, total = 0, 0
    for r in result.outputs:
        with rasterio.open(r.uncertainty) as src:
            assert src.tags()["LST_FUSION_CONTENT"] == "fusion_uncertainty"
            sigma = src.read(1)
        error = read_lst(r.path).data - read_lst(truth[r.target_date]).data
        ok = np.isfinite(error) & np.isfinite(sigma)
        assert ok.mean() > 0.9 and (sigma[ok] > 0).all()
        inside += int((np.abs(error[ok]) <= sigma[ok]).sum())
        total += int(ok.sum())
    coverage = inside / total
    assert 0.55 <= coverage <= 0.80, coverage
    report = json.loads(result.report.read_text())
    assert all(d["uncertainty"].endswith("_uncertainty.tif") for d in report["dates"])
    # Evaluate finds the rasters beside the predictions and reports the same calibration.
    from backend.evaluation.evaluate import evaluate

    scored = evaluate([tmp_path / "fused"], [tmp_path / "sample" / "truth"], tmp_path / "eval")
    rows = json.loads(scored.json.read_text())["results"]
    assert all("within_1sigma" in r for r in rows if not r["baseline"])
    assert "Is the uncertainty right?" in scored.html.read_text(encoding="utf-8")


def test_physics_informed_loss_is_zero_when_the_prediction_follows_modis():
    import torch

    from models.losses import coarse_consistency

    torch.manual_seed(0)
    fine = torch.randn(2, 1, 64, 64)
    change = torch.full_like(fine, 3.0)
    assert float(coarse_consistency(fine + 3.0 + 0.3 * torch.randn_like(fine), fine, change, 15.0)) < 0.01
    assert float(coarse_consistency(fine + 1.5, fine, change, 15.0)) == pytest.approx(2.25, rel=1e-3)
