"""STARFM and ESTARFM: equal to the per-pixel oracle, exact on linear scenes, useful on real data."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from fusion_oracle import estarfm_pixelwise, starfm_pixelwise
from scipy.ndimage import gaussian_filter, uniform_filter

from backend.errors import InputError
from backend.fusion.estarfm import EstarfmParams, estarfm
from backend.fusion.fuse import fuse
from backend.fusion.starfm import StarfmParams, starfm
from backend.io.readers import read_lst
from backend.preprocess.sample_data import SampleSpec
from backend.preprocess.sample_season import prepare_sample_season
from backend.progress import LSTWarning

YANCO = "yanco_ubestarfm"


def scene(seed=0, n=64, holes=True):
    """Fine LST at three dates with classes and texture, coarse = blurred, biased fine."""
    rng = np.random.default_rng(seed)
    classes = (gaussian_filter(rng.standard_normal((n, n)), 4) > 0).astype(float) + \
        (gaussian_filter(rng.standard_normal((n, n)), 3) > 0.3)
    texture = gaussian_filter(rng.standard_normal((n, n)), 1)
    fine = [290 + 4 * classes * k + 1.5 * texture + rng.normal(0, 0.3, (n, n)) + 3 * k for k in (1.0, 1.6, 2.2)]
    coarse = [uniform_filter(f, 8) - 1.0 + rng.normal(0, 0.2, (n, n)) for f in fine]
    if holes:
        fine[0][5:9, 40:47] = np.nan
        coarse[2][50:53, 10:12] = np.nan
    return fine, coarse


@pytest.mark.parametrize("seed", [0, 1])
def test_starfm_equals_oracle(seed):
    (f1, _, _), (c1, c0, _) = scene(seed)[0], scene(seed)[1]
    fast = starfm(f1, c1, c0, StarfmParams(window=15))
    slow = starfm_pixelwise(f1, c1, c0, window=15)
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(slow))
    assert np.nanmax(np.abs(fast - slow)) < 1e-3


@pytest.mark.parametrize(("seed", "valid_range"), [(0, (180.0, 360.0)), (1, (180.0, 360.0)), (2, (294.0, 300.0))])
def test_estarfm_equals_oracle(seed, valid_range):
    (f1, _, f3), (c1, c2, c3) = scene(seed)
    params = EstarfmParams(window=15, valid_range=valid_range)
    fast = estarfm(f1, c1, f3, c3, c2, params)
    slow = estarfm_pixelwise(f1, c1, f3, c3, c2, window=15, valid_range=valid_range)
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(slow))
    assert np.nanmax(np.abs(fast - slow)) < 1e-3


def test_linear_scenes_are_recovered():
    rng = np.random.default_rng(3)
    coarse1 = 285 + 6 * gaussian_filter(rng.standard_normal((80, 80)), 2)
    coarse3 = coarse1 + 9.0  # a uniform coarse change between the references
    coarse2 = coarse1 + 4.0
    # ESTARFM learns any linear relation fine = a + b * coarse from its two pairs.
    a, b = -30.0, 1.1
    pred = estarfm(a + b * coarse1, coarse1, a + b * coarse3, coarse3, coarse2, EstarfmParams(window=15))
    np.testing.assert_allclose(pred, a + b * coarse2, atol=1e-3)
    # STARFM's model is sensors that differ by an offset (fine = coarse + bias) over a landscape of
    # classes: its similar pixels then share the centre's value and it is exact.
    classes = np.digitize(gaussian_filter(rng.standard_normal((80, 80)), 3), [-0.3, 0.0, 0.3])
    coarse1 = 280.0 + 5.0 * classes
    pred = starfm(coarse1 + 1.7, coarse1, coarse1 + 4.0, StarfmParams(window=15))
    np.testing.assert_allclose(pred, coarse1 + 4.0 + 1.7, atol=1e-3)


def test_nodata_never_contributes():
    (f1, _, f3), (c1, c2, c3) = scene(4, holes=False)
    for name, run, inputs, spoil in (
        ("estarfm", lambda x: estarfm(*x, EstarfmParams(window=15)), [f1, c1, f3, c3, c2], 3),
        ("starfm", lambda x: starfm(*x, StarfmParams(window=15)), [f1, c1, c2], 2),
    ):
        base = run(inputs)
        spoiled = [a.copy() for a in inputs]
        spoiled[spoil][30:34, 30:34] = np.nan  # a cloud in one coarse input
        pred = run(spoiled)
        assert np.isnan(pred[30:34, 30:34]).all(), name  # no valid support at the centre: nodata
        assert np.isfinite(pred).sum() == pred.size - 16, name  # and nowhere else
        far = np.ones_like(pred, bool)
        far[30 - 7:34 + 7, 30 - 7:34 + 7] = False
        np.testing.assert_array_equal(pred[far], base[far])  # beyond the window's reach: unchanged


def _highpass(a):
    a = np.where(np.isfinite(a), a, np.nanmean(a))
    return a - gaussian_filter(a, 5)


@pytest.mark.parametrize("day", ["20160218", "20160308"])
def test_starfm_on_real_yanco_data(shared_data, tmp_path, day):
    y = shared_data / YANCO
    with pytest.warns(LSTWarning, match="had no valid input"):  # one nodata pixel in the Yanco files
        result = fuse("starfm", [(y / "Landsat_LST_cloudrm_20160205.tif", y / "MOD11A1_LST_cloudrm_20160205.tif")],
                      y / f"MOD11A1_LST_cloudrm_{day}.tif", tmp_path / "pred.tif", unit="K")
    pred = read_lst(result.path).data
    fine = read_lst(y / "Landsat_LST_cloudrm_20160205.tif", unit="K").data
    modis = read_lst(y / f"MOD11A1_LST_cloudrm_{day}.tif", unit="K").data
    inputs_valid = np.isfinite(fine) & np.isfinite(modis) & np.isfinite(
        read_lst(y / "MOD11A1_LST_cloudrm_20160205.tif", unit="K").data)
    assert np.isfinite(pred[inputs_valid]).all()
    assert 270 < np.nanmin(pred) and np.nanmax(pred) < 345
    assert result.target_date == f"{day[:4]}-{day[4:6]}-{day[6:]}"
    detail = np.corrcoef(_highpass(pred).ravel(), _highpass(fine).ravel())[0, 1]
    assert detail > 0.7, detail  # the fine reference's spatial detail is kept
    # ...and the prediction follows MODIS's change: its mean moves with the coarse mean.
    assert abs(np.nanmean(pred) - np.nanmean(fine) - (np.nanmean(modis) - np.nanmean(
        read_lst(y / "MOD11A1_LST_cloudrm_20160205.tif", unit="K").data))) < 1.0


@pytest.fixture(scope="module")
def season(tmp_path_factory):
    root = tmp_path_factory.mktemp("fusion")
    spec = SampleSpec(width=200, height=200, n_dates=3, start=dt.date(2020, 6, 4), end=dt.date(2020, 7, 6),
                      cloudiness=0.15, seed=8)
    manifest = json.loads(prepare_sample_season(root, spec).read_text())
    return root, manifest


def test_estarfm_beats_resampled_modis_on_sample_data(season, tmp_path, capsys):
    root, manifest = season
    fine = sorted((root / "landsat").glob("*_filled.tif"))
    coarse = sorted((root / "modis30").glob("modis_*.tif"))
    result = fuse("estarfm", [(fine[0], coarse[0]), (fine[2], coarse[2])], coarse[1], tmp_path / "pred.tif")
    truth = read_lst(root / "sample" / manifest["dates"][1]["truth"]).data
    pred = read_lst(result.path).data
    modis = read_lst(coarse[1]).data
    rmse = {name: float(np.sqrt(np.nanmean((a - truth) ** 2))) for name, a in (("estarfm", pred), ("modis", modis))}
    with capsys.disabled():
        print(f"\nRMSE vs truth on {manifest['dates'][1]['date']}: ESTARFM {rmse['estarfm']:.2f} K, "
              f"resampled MODIS {rmse['modis']:.2f} K")
    assert rmse["estarfm"] < rmse["modis"]
    starfm_result = fuse("starfm", [(fine[0], coarse[0])], coarse[1], tmp_path / "s.tif")
    assert float(np.sqrt(np.nanmean((read_lst(starfm_result.path).data - truth) ** 2))) < rmse["modis"]


@pytest.mark.parametrize("method", ["starfm", "estarfm"])
def test_tiles_equal_single_pass(method, season, tmp_path):
    """Row bands and 2-D tiles of the shared tiler give exactly the whole-scene result."""
    root, _ = season
    fine = sorted((root / "landsat").glob("*_filled.tif"))
    coarse = sorted((root / "modis30").glob("modis_*.tif"))
    params = EstarfmParams(window=21) if method == "estarfm" else StarfmParams(window=21)
    pairs = [(fine[0], coarse[0]), (fine[2], coarse[2])] if method == "estarfm" else [(fine[0], coarse[0])]
    whole = read_lst(fuse(method, pairs, coarse[1], tmp_path / "a.tif", params, tile_rows=10**6).path).data
    for k, (rows, cols) in enumerate(((23, None), (23, 31), (7, 100))):
        tiled = fuse(method, pairs, coarse[1], tmp_path / f"b{k}.tif", params, tile_rows=rows, tile_cols=cols)
        np.testing.assert_array_equal(read_lst(tiled.path).data, whole)


def test_bad_inputs(season, tmp_path, sample_dataset):
    root, _ = season
    fine = sorted((root / "landsat").glob("*_filled.tif"))
    coarse = sorted((root / "modis30").glob("modis_*.tif"))
    raw_modis = sorted((root / "sample" / "modis").glob("*LST_Day*.tif"))
    with pytest.raises(InputError, match="not on the fine grid.*Resample"):
        fuse("starfm", [(fine[0], raw_modis[0])], coarse[1], tmp_path / "x.tif")
    with pytest.raises(InputError, match="ESTARFM uses 2 reference pair"):
        fuse("estarfm", [(fine[0], coarse[0])], coarse[1], tmp_path / "x.tif")
    with pytest.raises(InputError, match="must lie between the two reference dates"):
        fuse("estarfm", [(fine[0], coarse[0]), (fine[1], coarse[1])], coarse[2], tmp_path / "x.tif")
    with pytest.raises(InputError, match="also a reference date"):
        fuse("starfm", [(fine[1], coarse[1])], coarse[1], tmp_path / "x.tif")
    with pytest.raises(InputError, match="Reference pair dates differ"):
        fuse("starfm", [(fine[0], coarse[2])], coarse[1], tmp_path / "x.tif")
    with pytest.raises(InputError, match="WINDOW must be an odd"):
        fuse("starfm", [(fine[0], coarse[0])], coarse[1], tmp_path / "x.tif", StarfmParams(window=20))
    with pytest.raises(InputError, match="Unknown fusion method"):
        fuse("fsdaf", [(fine[0], coarse[0])], coarse[1], tmp_path / "x.tif")
    assert not list(tmp_path.iterdir())
