"""The sample generator: reproducible, on the right grids, physically sensible, atomic."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import rasterio
from rasterio.warp import Resampling, reproject

from backend.errors import Cancelled, InputError, OutputError
from backend.io.grid import MODIS_PIXEL_M
from backend.io.readers import read_lst
from backend.preprocess.sample_data import (
    FOREST,
    MODIS_ORIGIN,
    URBAN,
    WATER,
    SampleSpec,
    generate_sample_dataset,
    sample_dates,
)
from backend.progress import Progress


def _arrays(folder, manifest):
    out = []
    for rec in manifest["dates"]:
        for key in ("landsat_st_b10", "landsat_qa_pixel", "modis_lst", "modis_qc"):
            with rasterio.open(folder / rec[key]) as src:
                out.append(src.read(1))
    return out


def test_survey_sized_dates():
    dates = sample_dates(SampleSpec(), np.random.default_rng(0))
    assert len(dates) == 51
    assert dates[0] == dt.date(2013, 3, 18)
    assert dt.date(2024, 9, 29) <= dates[-1] <= dt.date(2024, 10, 15)
    assert all((d - dates[0]).days % 16 == 0 for d in dates)  # Landsat's repeat cycle
    assert dates == sorted(set(dates))


def test_reproducible_from_seed(tmp_path):
    spec = SampleSpec(width=40, height=40, n_dates=2, seed=11)
    a = generate_sample_dataset(tmp_path / "a", spec).manifest
    b = generate_sample_dataset(tmp_path / "b", spec).manifest
    c = generate_sample_dataset(tmp_path / "c", SampleSpec(width=40, height=40, n_dates=2, seed=12)).manifest
    import json

    ma, mb, mc = (json.loads(p.read_text()) for p in (a, b, c))
    for x, y in zip(_arrays(a.parent, ma), _arrays(b.parent, mb)):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(_arrays(a.parent, ma), _arrays(c.parent, mc)))


def test_grids(sample_dataset):
    folder, manifest = sample_dataset
    rec = manifest["dates"][0]
    landsat = read_lst(folder / rec["landsat_st_b10"])
    modis = read_lst(folder / rec["modis_lst"])
    assert landsat.crs.to_epsg() == 32631 and landsat.resolution == (30.0, 30.0)
    assert landsat.shape == (100, 120)
    left, bottom, right, top = landsat.bounds
    assert left < 418_700 < right and bottom < 5_306_000 < top  # around Orléans, UTM 31N
    assert modis.crs.to_dict()["proj"] == "sinu"
    assert modis.resolution[0] == pytest.approx(MODIS_PIXEL_M)
    # MODIS pixels sit on the global MODIS grid.
    for origin, value in ((MODIS_ORIGIN[0], modis.transform.c), (MODIS_ORIGIN[1], modis.transform.f)):
        k = (value - origin) / MODIS_PIXEL_M
        assert abs(k - round(k)) < 1e-6
    assert manifest["modis_grid"]["tile"] == "h18v04"


@pytest.fixture(scope="module")
def summer_winter(tmp_path_factory):
    spec = SampleSpec(width=300, height=300, n_dates=2, start=dt.date(2020, 1, 15),
                      end=dt.date(2020, 7, 23), cloudiness=0.0, seed=5)
    # 2020-01-15 + 12 * 16 days = 2020-07-22: one winter and one summer date.
    manifest = generate_sample_dataset(tmp_path_factory.mktemp("sw") / "s", spec).manifest
    import json

    return manifest.parent, json.loads(manifest.read_text())


def test_thermal_behaviour_of_land_cover(summer_winter):
    folder, manifest = summer_winter
    with rasterio.open(folder / "truth" / "landcover.tif") as src:
        lc = src.read(1)
    winter, summer = (read_lst(folder / r["truth"]).data for r in manifest["dates"])
    assert np.nanmean(summer) - np.nanmean(winter) > 8
    assert summer[lc == URBAN].mean() > summer[lc == FOREST].mean() + 3
    assert summer[lc == URBAN].mean() > summer[lc == WATER].mean() + 3
    # Urban heat contrast is weaker in winter than in summer.
    urban_excess = [t[lc == URBAN].mean() - t[lc == FOREST].mean() for t in (winter, summer)]
    assert urban_excess[1] > urban_excess[0]


def test_modis_is_coarse_biased_truth(summer_winter):
    folder, manifest = summer_winter
    for rec in manifest["dates"]:
        truth = read_lst(folder / rec["truth"])
        modis = read_lst(folder / rec["modis_lst"])
        coarse = np.full(modis.shape, np.nan, np.float32)
        reproject(truth.data, coarse, src_transform=truth.transform, src_crs=truth.crs,
                  dst_transform=modis.transform, dst_crs=modis.crs, resampling=Resampling.average,
                  src_nodata=np.nan, dst_nodata=np.nan)
        both = np.isfinite(coarse) & modis.valid
        # Interior pixels only: edge pixels see part of the simulated margin.
        inner = np.zeros_like(both)
        inner[1:-1, 1:-1] = True
        diff = (modis.data - coarse)[both & inner]
        assert diff.size >= 25
        assert diff.mean() == pytest.approx(rec["modis_bias_k"], abs=0.6)
        assert np.std(diff) < 1.5
        assert np.corrcoef(modis.data[both & inner], coarse[both & inner])[0, 1] > 0.7


def test_refuses_foreign_folder_and_cancels_cleanly(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.docx").write_text("precious")
    with pytest.raises(OutputError, match="not empty"):
        generate_sample_dataset(foreign, SampleSpec(width=16, height=16, n_dates=1))
    assert (foreign / "thesis.docx").read_text() == "precious"

    calls = {"n": 0}

    def cancel_after_first():
        calls["n"] += 1
        return calls["n"] > 1

    with pytest.raises(Cancelled):
        generate_sample_dataset(tmp_path / "out", SampleSpec(width=16, height=16, n_dates=3),
                                Progress(is_cancelled=cancel_after_first))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_bad_spec():
    with pytest.raises(InputError, match="at least 16"):
        SampleSpec(width=4).validate()
    with pytest.raises(InputError, match="before start"):
        SampleSpec(start=dt.date(2020, 1, 1), end=dt.date(2019, 1, 1)).validate()
