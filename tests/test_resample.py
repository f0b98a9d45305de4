"""Resampling MODIS (sinusoidal) onto UTM grids: accuracy, exact grids, no halos, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform as warp_transform

from backend.errors import InputError
from backend.io.grid import MODIS_PIXEL_M, Grid
from backend.io.lst_raster import LSTRaster
from backend.io.readers import read_lst
from backend.preprocess.resample import METHODS, reference_grid, resample_lst, resample_series
from backend.preprocess.sample_data import MODIS_ORIGIN, MODIS_SINUSOIDAL


def field(lon, lat):
    """A smooth LST field (K): waves of ~37 km and ~44 km, well resolved by 1 km pixels."""
    return 295.0 + 8.0 * np.sin(2 * np.pi * np.asarray(lon) / 0.5) * np.cos(2 * np.pi * np.asarray(lat) / 0.4)


def _centres(grid: Grid):
    rows, cols = np.mgrid[0:grid.height, 0:grid.width]
    xs, ys = grid.transform * (cols + 0.5, rows + 0.5)
    lon, lat = warp_transform(grid.crs, "EPSG:4326", xs.ravel(), ys.ravel())
    return np.reshape(lon, xs.shape), np.reshape(lat, xs.shape)


@pytest.fixture(scope="module")
def modis_field():
    """The field sampled on a patch of the real MODIS sinusoidal grid over Orléans."""
    col0, row0 = 21600 + 150, 4800 + 50  # h18v04, pixels (150, 50) — Orléans
    transform = Affine(MODIS_PIXEL_M, 0, MODIS_ORIGIN[0] + col0 * MODIS_PIXEL_M,
                       0, -MODIS_PIXEL_M, MODIS_ORIGIN[1] - row0 * MODIS_PIXEL_M)
    grid = Grid(MODIS_SINUSOIDAL, transform, 60, 60)
    lon, lat = _centres(grid)
    return LSTRaster(field(lon, lat).astype(np.float32), grid.crs, transform, product="MOD11A1", sensor="modis",
                     source="synthetic_MOD11A1.tif")


@pytest.fixture(scope="module")
def utm_grid(modis_field):
    left, bottom, right, top = Grid(modis_field.crs, modis_field.transform, 60, 60).bounds_in("EPSG:32631")
    cx, cy = (left + right) / 2, (bottom + top) / 2
    return Grid.from_bounds("EPSG:32631", 30.0, (cx - 12000, cy - 12000, cx + 12000, cy + 12000))


@pytest.mark.parametrize(("method", "max_error", "rmse"),
                         [("bicubic", 0.03, 0.01), ("cubic_spline", 0.1, 0.05), ("bilinear", 0.08, 0.03)])
def test_analytic_field_sinusoidal_to_utm(modis_field, utm_grid, tmp_path, method, max_error, rmse, capsys):
    out = resample_lst(modis_field, utm_grid, tmp_path / f"{method}.tif", method)
    result = read_lst(out)
    assert Grid.of(str(out)) == utm_grid  # exactly the requested grid
    lon, lat = _centres(utm_grid)
    error = result.data - field(lon, lat)
    assert np.isfinite(result.data).all()
    with capsys.disabled():
        print(f"\n{method}: max |error| {np.abs(error).max():.4f} K, RMSE {np.sqrt(np.mean(error**2)):.4f} K "
              f"(field amplitude 8 K)")
    assert np.abs(error).max() < max_error
    assert np.sqrt(np.mean(error**2)) < rmse


def test_output_grid_equals_reference_raster(sample_dataset, tmp_path):
    folder, manifest = sample_dataset
    rec = manifest["dates"][1]
    reference = Grid.of(str(folder / rec["landsat_st_b10"]))
    assert reference_grid(folder / "landsat") == reference
    outputs = resample_series([folder / "modis"], tmp_path / "out", reference)
    assert len(outputs) == len(manifest["dates"])
    for out in outputs:
        grid = Grid.of(str(out))
        assert grid.crs == reference.crs and grid.transform == reference.transform and grid.shape == reference.shape
    coarse = read_lst(outputs[1]).data
    truth = read_lst(folder / rec["truth"]).data
    both = np.isfinite(coarse)
    assert np.corrcoef(coarse[both], truth[both])[0, 1] > 0.5


@pytest.mark.parametrize("method", list(METHODS))
def test_no_halo_around_nodata(method, tmp_path):
    data = np.full((20, 20), 300.0, np.float32)
    data[6:12, 6:12] = np.nan  # a cloud
    data[:, :2] = np.nan  # a swath edge
    src = LSTRaster(data, CRS.from_epsg(32631), Affine(1000, 0, 400000, 0, -1000, 5300000))
    out = resample_lst(src, Grid.from_bounds("EPSG:32631", 30, (400000, 5280000, 420000, 5300000)),
                       tmp_path / "o.tif", method)
    result = read_lst(out).data
    assert np.nanmax(np.abs(result - 300.0)) < 1e-3  # a 0 K fill value would drag edges far below
    assert np.isnan(result).mean() > 0.1


def test_blocks_match_single_pass(modis_field, utm_grid, tmp_path):
    a = read_lst(resample_lst(modis_field, utm_grid, tmp_path / "a.tif")).data
    b = read_lst(resample_lst(modis_field, utm_grid, tmp_path / "b.tif", block_rows=97)).data
    np.testing.assert_array_equal(a, b)


def test_non_overlapping_inputs_name_both_extents(modis_field, shared_data, tmp_path):
    us_tile = read_lst(shared_data / "modis_mod11a1_hdf" / "MOD11A1.A2021227.h11v05.061.2021228105320.hdf")
    grid = Grid.from_bounds("EPSG:32631", 30.0, (420000, 5300000, 423000, 5303000))
    with pytest.raises(InputError, match=r"does not overlap.*Input extent: lon -9\d\.\d+.*target extent: lon 1\.\d+"):
        resample_lst(us_tile, grid, tmp_path / "x.tif")
    assert not (tmp_path / "x.tif").exists()
    with pytest.raises(InputError, match="Unknown resampling method"):
        resample_lst(modis_field, grid, tmp_path / "x.tif", "lanczos5")


def test_explicit_grid_from_crs_resolution_extent():
    grid = Grid.from_bounds("EPSG:32631", 30.0, (400010, 5300005, 401000, 5301000))
    assert grid.transform.c == 399990 and grid.transform.f == 5301000
    assert (grid.width, grid.height) == (34, 34)
    with pytest.raises(InputError, match="Empty extent"):
        Grid.from_bounds("EPSG:32631", 30.0, (1, 1, 0, 2))
