"""Gap-filling: the interpolation rules, sharp edges, and accuracy against a known truth."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from backend.errors import Cancelled, InputError
from backend.io.readers import read_lst
from backend.preprocess.gapfill import (
    NODATA,
    OBSERVED,
    SPATIAL,
    TEMPORAL,
    gap_fill_series,
    spatial_fill,
    temporal_interpolation,
)
from backend.preprocess.sample_data import SampleSpec, generate_sample_dataset
from backend.progress import Progress


def test_temporal_interpolation_is_linear_in_time_and_bounded_by_max_gap():
    days = np.array([0.0, 10.0, 16.0, 40.0, 90.0])
    stack = np.full((5, 1, 2), np.nan, np.float32)
    stack[:, 0, 0] = [300, np.nan, 316, 320, 330]
    stack[:, 0, 1] = [np.nan, 290, np.nan, np.nan, 300]
    out = temporal_interpolation(stack, days, max_gap_days=32)
    assert out[1, 0, 0] == pytest.approx(310.0)  # 300 + 10/16 * 16
    assert np.isnan(out[2, 0, 0])  # observed at 16; its neighbours (0 and 40) are 40 days apart > 32
    assert np.isnan(out[3, 0, 0])  # its neighbours (16 and 90) are 74 days apart
    assert np.isnan(out[0, 0, 0]) and np.isnan(out[4, 0, 0])  # no extrapolation at the ends
    assert np.isnan(out[2, 0, 1])  # 290 at day 10 and 300 at day 90: 80 days apart > 32
    wide = temporal_interpolation(stack, days, max_gap_days=100)
    assert wide[2, 0, 0] == pytest.approx(300 + 16 / 40 * 20)  # observed pixels get one too
    assert wide[2, 0, 1] == pytest.approx(290 + 6 / 80 * 10)


def test_spatial_fill_keeps_valid_pixels_and_edges():
    image = np.full((40, 40), 300.0, np.float32)
    image[:, 20:] = 280.0  # a sharp edge, e.g. a river bank
    truth = image.copy()
    image[10:14, 5:9] = np.nan  # hole in the warm side
    image[25:29, 30:34] = np.nan  # hole in the cool side
    before = image.copy()
    filled = spatial_fill(image, ~np.isfinite(image), max_distance_px=20)
    np.testing.assert_array_equal(image[np.isfinite(before)], before[np.isfinite(before)])
    assert filled.sum() == 32
    np.testing.assert_allclose(image[10:14, 5:9], truth[10:14, 5:9], atol=1e-4)
    np.testing.assert_allclose(image[25:29, 30:34], truth[25:29, 30:34], atol=1e-4)


def test_spatial_fill_respects_max_distance():
    image = np.full((200, 200), np.nan, np.float32)
    image[:, :5] = 300.0
    spatial_fill(image, ~np.isfinite(image), max_distance_px=12)
    assert np.isfinite(image[:, :15]).all()
    assert np.isnan(image[:, 60:]).all()


@pytest.fixture(scope="module")
def cloudy_season(tmp_path_factory):
    """Twelve consecutive 16-day dates of a cloudy summer, truth known."""
    spec = SampleSpec(width=240, height=200, n_dates=12, start=dt.date(2020, 4, 1), end=dt.date(2020, 9, 30),
                      cloudiness=0.35, seed=2)
    root = tmp_path_factory.mktemp("season")
    manifest = generate_sample_dataset(root / "sample", spec).manifest
    return root, json.loads(manifest.read_text())


def _score(folder, report, sample, manifest):
    errors = {TEMPORAL: [], SPATIAL: []}
    mean_errors = []
    for rec, date in zip(manifest["dates"], report["dates"]):
        truth = read_lst(sample / rec["truth"]).data
        observed = read_lst(sample / rec["landsat_st_b10"]).data
        filled = read_lst(folder / date["output"]).data
        with rasterio.open(folder / date["flags"]) as src:
            flags = src.read(1)
        np.testing.assert_array_equal(filled[flags == OBSERVED], observed[flags == OBSERVED])
        assert np.isfinite(filled[flags != NODATA]).all() and np.isnan(filled[flags == NODATA]).all()
        for flag in (TEMPORAL, SPATIAL):
            errors[flag].append(filled[flags == flag] - truth[flags == flag])
        gap = (flags == TEMPORAL) | (flags == SPATIAL)
        mean_errors.append(np.nanmean(observed) - truth[gap])
    rmse = {k: float(np.sqrt(np.mean(np.concatenate(v) ** 2))) for k, v in errors.items()}
    rmse["mean_fill"] = float(np.sqrt(np.mean(np.concatenate(mean_errors) ** 2)))
    rmse["all_filled"] = float(np.sqrt(np.mean(np.concatenate(errors[TEMPORAL] + errors[SPATIAL]) ** 2)))
    return rmse


def test_filled_pixels_beat_the_image_mean(cloudy_season, tmp_path, record_property, capsys):
    root, manifest = cloudy_season
    report_path = gap_fill_series([root / "sample"], tmp_path / "filled", sensor="landsat")
    report = json.loads(report_path.report.read_text())
    assert len(report["dates"]) == 12
    for d in report["dates"]:
        total = d["observed_fraction"] + d["temporal_fraction"] + d["spatial_fraction"] + d["nodata_fraction"]
        assert total == pytest.approx(1.0, abs=1e-5)
    assert sum(d["temporal_fraction"] for d in report["dates"]) > 0.5
    assert sum(d["spatial_fraction"] for d in report["dates"]) > 0.5
    rmse = _score(tmp_path / "filled", report, root / "sample", manifest)
    for key, value in rmse.items():
        record_property(f"rmse_{key}_K", round(value, 3))
    with capsys.disabled():
        print(f"\ngap-fill RMSE vs truth (K): {', '.join(f'{k}={v:.2f}' for k, v in rmse.items())}")
    assert rmse["all_filled"] < 0.6 * rmse["mean_fill"]
    assert rmse[TEMPORAL] < rmse["mean_fill"] and rmse[SPATIAL] < rmse["mean_fill"]


def test_blocks_give_the_same_result_as_one_pass(cloudy_season, tmp_path):
    root, _ = cloudy_season
    a = gap_fill_series([root / "sample"], tmp_path / "a", sensor="landsat", max_distance_px=30)
    b = gap_fill_series([root / "sample"], tmp_path / "b", sensor="landsat", max_distance_px=30, block_rows=37)
    assert json.loads(a.report.read_text())["dates"] == json.loads(b.report.read_text())["dates"]
    for d in json.loads(a.report.read_text())["dates"]:
        np.testing.assert_allclose(read_lst(tmp_path / "a" / d["output"]).data,
                                   read_lst(tmp_path / "b" / d["output"]).data, atol=1e-4, equal_nan=True)


def test_never_observed_pixels_stay_nodata_unless_allowed(tmp_path):
    spec = SampleSpec(width=64, height=64, n_dates=3, start=dt.date(2020, 6, 1), end=dt.date(2020, 7, 3),
                      cloudiness=0.0, seed=1)
    generate_sample_dataset(tmp_path / "s", spec)
    for st in sorted((tmp_path / "s" / "landsat").glob("*_QA_PIXEL.TIF")):
        with rasterio.open(st, "r+") as dst:
            qa = dst.read(1)
            qa[:10, :10] = 22280  # cloud on every date: this corner is never observed
            dst.write(qa, 1)
    strict = json.loads(gap_fill_series([tmp_path / "s"], tmp_path / "strict", sensor="landsat").report.read_text())
    lenient = json.loads(gap_fill_series([tmp_path / "s"], tmp_path / "lenient", sensor="landsat",
                                         fill_never_observed=True).report.read_text())
    corner = 100 / 64**2
    assert all(d["nodata_fraction"] == pytest.approx(corner, abs=1e-6) for d in strict["dates"])
    assert all(d["nodata_fraction"] == 0 for d in lenient["dates"])


def test_refusals(cloudy_season, tmp_path):
    root, manifest = cloudy_season
    with pytest.raises(InputError, match="less valid data than MIN_VALID_FRACTION 50%: 2020-"):
        gap_fill_series([root / "sample"], tmp_path / "x", sensor="landsat", min_valid_fraction=0.5)
    with pytest.raises(InputError, match="Mixed sensors"):
        gap_fill_series([root / "sample" / "landsat", root / "sample" / "modis"], tmp_path / "x")
    one = root / "sample" / manifest["dates"][0]["landsat_st_b10"]
    with pytest.raises(InputError, match="Only 1 date.*at least 2"):
        gap_fill_series([one], tmp_path / "x")
    with pytest.raises(InputError, match="Unknown gap-fill method"):
        gap_fill_series([one], tmp_path / "x", method="kriging")
    assert not (tmp_path / "x").exists()
    spatial_only = json.loads(gap_fill_series([one], tmp_path / "one", method="spatial").report.read_text())
    assert spatial_only["dates"][0]["nodata_fraction"] == 0


def test_cancel_leaves_nothing(cloudy_season, tmp_path):
    root, _ = cloudy_season
    calls = {"n": 0}

    def cancel_later():
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(Cancelled):
        gap_fill_series([root / "sample"], tmp_path / "out", sensor="landsat",
                        progress=Progress(is_cancelled=cancel_later))
    assert list(tmp_path.iterdir()) == []


def test_unreadable_file_in_a_series_is_named(cloudy_season, tmp_path):
    root, manifest = cloudy_season
    folder = tmp_path / "series"
    folder.mkdir()
    for rec in manifest["dates"][:3]:
        for key in ("landsat_st_b10", "landsat_qa_pixel", "landsat_mtl"):
            (folder / Path(rec[key]).name).write_bytes((root / "sample" / rec[key]).read_bytes())
    broken = folder / "LC08_L2SP_199027_20200922_20201006_02_T1_ST_B10.TIF"
    broken.write_bytes(b"II*\x00 truncated download")
    with pytest.raises(InputError, match="LC08_L2SP_199027_20200922.*cannot be read as a raster"):
        gap_fill_series([folder], tmp_path / "out", sensor="landsat")
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def sparse_season(tmp_path_factory):
    """Eight dates over two years (Landsat 40-150 days apart, as in the survey's series), MODIS on the grid."""
    from backend.preprocess.resample import reference_grid, resample_series

    spec = SampleSpec(width=160, height=160, n_dates=8, start=dt.date(2019, 3, 1), end=dt.date(2020, 10, 30),
                      cloudiness=0.3, seed=6)
    root = tmp_path_factory.mktemp("sparse")
    manifest = json.loads(generate_sample_dataset(root / "sample", spec).manifest.read_text())
    quiet = Progress(on_warning=lambda message: None)
    gap_fill_series([root / "sample"], root / "modis", sensor="modis", fill_never_observed=True, progress=quiet)
    resample_series([root / "modis"], root / "modis30", reference_grid(root / "sample" / "truth"))
    return root, manifest


def _filled_rmse(folder: Path, sample: Path, manifest: dict, flags_kept) -> float:
    report = json.loads((folder / "gapfill_report.json").read_text())
    errors = []
    for rec, date in zip(manifest["dates"], report["dates"]):
        truth = read_lst(sample / rec["truth"]).data
        filled = read_lst(folder / date["output"]).data
        with rasterio.open(folder / date["flags"]) as src:
            flags = src.read(1)
        gap = np.isin(flags, flags_kept)
        errors.append(filled[gap] - truth[gap])
    return float(np.sqrt(np.mean(np.concatenate(errors) ** 2)))


def test_modis_guided_fill_beats_spatial_fill_on_a_sparse_season(sparse_season, tmp_path, capsys):
    from backend.preprocess.gapfill import GUIDED

    root, manifest = sparse_season
    sample = root / "sample"
    quiet = Progress(on_warning=lambda message: None)
    gap_fill_series([sample], tmp_path / "plain", sensor="landsat", fill_never_observed=True, progress=quiet)
    path = gap_fill_series([sample], tmp_path / "guided", sensor="landsat", method="modis_guided",
                           guide=[root / "modis30"], fill_never_observed=True, progress=quiet)
    report = json.loads(path.report.read_text())
    assert report["method"] == "modis_guided"
    for d in report["dates"]:
        total = sum(d[k] for k in ("observed_fraction", "temporal_fraction", "spatial_fraction", "guided_fraction",
                                   "nodata_fraction"))
        assert total == pytest.approx(1.0, abs=1e-5)
    assert sum(d["guided_fraction"] for d in report["dates"]) > 5 * sum(d["spatial_fraction"]
                                                                         for d in report["dates"])
    plain = _filled_rmse(tmp_path / "plain", sample, manifest, [TEMPORAL, SPATIAL])
    guided = _filled_rmse(tmp_path / "guided", sample, manifest, [GUIDED, SPATIAL])
    with capsys.disabled():
        print(f"\nfilled-pixel RMSE vs truth, sparse season: temporal+spatial {plain:.2f} K, MODIS-guided "
              f"{guided:.2f} K")
    assert guided < 0.8 * plain
    # Observed pixels are never changed.
    first = report["dates"][0]
    with rasterio.open(tmp_path / "guided" / first["flags"]) as src:
        flags = src.read(1)
    observed = read_lst(sample / manifest["dates"][0]["landsat_st_b10"]).data
    filled = read_lst(tmp_path / "guided" / first["output"]).data
    np.testing.assert_array_equal(filled[flags == OBSERVED], observed[flags == OBSERVED])


def test_modis_guided_fill_needs_its_guide(sparse_season, tmp_path):
    root, _ = sparse_season
    with pytest.raises(InputError, match="GUIDE: the MODIS-guided method needs the MODIS series"):
        gap_fill_series([root / "sample"], tmp_path / "g", sensor="landsat", method="modis_guided")
    with pytest.raises(InputError, match="GUIDE is used by the MODIS-guided method only"):
        gap_fill_series([root / "sample"], tmp_path / "g", sensor="landsat", guide=[root / "modis30"])
    with pytest.raises(InputError, match="swap them"):
        gap_fill_series([root / "modis30"], tmp_path / "g", method="modis_guided", guide=[root / "modis30"])
    assert not (tmp_path / "g").exists()
