"""Readers on the real files in ../shared/data, checked against decoding done here by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from backend.errors import EmptyDataError, InputError, UnitError
from backend.io.readers import read_landsat, read_lst, read_modis

MOD = "modis_mod11a1_hdf/MOD11A1.A2021227.h11v05.061.2021228105320.hdf"
L8_2019 = "landsat_c2l2/LC08_L2SP_008059_20191201_20200825_02_T1_"
L8_2013 = "landsat_c2l2/LC08_L2SP_017036_20130419_20200913_02_T2_"
YANCO = "yanco_ubestarfm/"


def _sds(path, layer):
    return f'HDF4_EOS:EOS_GRID:"{path}":MODIS_Grid_Daily_1km_LST:{layer}'


def test_modis_hdf4_decoded_and_qc_applied(shared_data):
    path = shared_data / MOD
    with rasterio.open(_sds(path, "LST_Day_1km")) as src:
        dn = src.read(1).astype(np.int64)
    with rasterio.open(_sds(path, "QC_Day")) as src:
        qc = src.read(1).astype(np.int64)
    produced = (qc % 4) < 2  # bits 0-1: 10 and 11 mean 'not produced'
    expected = np.where(produced & (dn >= 7500), dn * 0.02, np.nan)

    r = read_lst(path)
    assert r.product == "MOD11A1" and r.sensor == "modis"
    assert r.date.isoformat() == "2021-08-15"
    np.testing.assert_allclose(r.data, expected, rtol=0, atol=1e-4, equal_nan=True)
    assert 0.03 < r.valid_fraction < 0.06  # the tile is ~95 % cloud / not produced
    assert r.crs.to_dict()["proj"] == "sinu" and r.crs.to_dict()["R"] == pytest.approx(6371007.181)
    assert r.resolution[0] == pytest.approx(926.625433, rel=1e-6)
    assert 270 < np.nanmin(r.data) and np.nanmax(r.data) < 330


def test_modis_subdataset_path_and_error_class(shared_data):
    path = shared_data / MOD
    whole = read_modis(path)
    via_sds = read_modis(_sds(path, "LST_Day_1km"))
    np.testing.assert_array_equal(whole.data, via_sds.data)
    strict = read_modis(path, max_lst_error=1)
    assert strict.valid.sum() < whole.valid.sum()
    assert not (strict.valid & ~whole.valid).any()


def test_modis_night_layer(shared_data):
    night = read_modis(shared_data / MOD, layer="LST_Night_1km")
    assert night.tags["layer"] == "LST_Night_1km"
    assert np.nanmean(night.data) < np.nanmean(read_modis(shared_data / MOD).data)


def test_landsat_c2l2_scale_from_mtl_and_qa_mask(shared_data):
    base = shared_data / L8_2019
    mtl = json.loads((shared_data / (L8_2019 + "MTL.json")).read_text())["LANDSAT_METADATA_FILE"]
    params = mtl["LEVEL2_SURFACE_TEMPERATURE_PARAMETERS"]
    mult, add = float(params["TEMPERATURE_MULT_BAND_ST_B10"]), float(params["TEMPERATURE_ADD_BAND_ST_B10"])
    with rasterio.open(f"{base}ST_B10.TIF") as src:
        dn = src.read(1).astype(np.int64)
    with rasterio.open(f"{base}QA_PIXEL.TIF") as src:
        qa = src.read(1).astype(np.int64)
    masked = (dn == 0) | np.any([(qa >> b) & 1 for b in (0, 1, 3, 4, 5)], axis=0).astype(bool)
    expected = np.where(masked, np.nan, dn * mult + add)

    r = read_lst(f"{base}ST_B10.TIF")
    assert r.product == "LC08_L2SP" and r.sensor == "landsat"
    assert r.date.isoformat() == "2019-12-01"
    assert r.crs.to_epsg() == 32618
    np.testing.assert_allclose(r.data, expected, rtol=0, atol=1e-3, equal_nan=True)
    assert 0.0 < r.valid_fraction < 0.5
    assert 250 < np.nanmin(r.data) and np.nanmax(r.data) < 340


def test_landsat_cloudy_pixels_decode_to_150k_without_qa(shared_data):
    """The 2013 scene is all cloud: ignoring QA_PIXEL gives the ~150 K values the README warns of,
    which the plausibility check refuses rather than passing on as temperatures."""
    with pytest.raises(UnitError, match=r"LC08_L2SP_017036_20130419.*not land surface temperature \(median 15\d\.\d K"):
        read_landsat(shared_data / (L8_2013 + "ST_B10.TIF"), mask_bits=())
    with pytest.raises(EmptyDataError, match="LC08_L2SP_017036_20130419.*no valid LST pixel"):
        read_lst(shared_data / (L8_2013 + "ST_B10.TIF"))


def test_yanco_float_kelvin_geographic(shared_data):
    path = shared_data / YANCO / "Landsat_LST_cloudrm_20160205.tif"
    with rasterio.open(path) as src:
        raw = src.read(1).astype(np.float64)
        nodata = src.nodata
    bad = ~np.isfinite(raw) | (np.abs(raw) > 1e30)
    if nodata is not None:
        bad |= raw == nodata
    r = read_lst(path, unit="K")
    np.testing.assert_allclose(r.data, np.where(bad, np.nan, raw), atol=1e-3, equal_nan=True)
    assert r.crs.to_epsg() == 4326
    assert r.date.isoformat() == "2016-02-05"
    assert 270 < np.nanmin(r.data) and np.nanmax(r.data) < 345


def test_yanco_modis_dates(shared_data):
    for day in ("20160205", "20160218", "20160308"):
        r = read_lst(shared_data / YANCO / f"MOD11A1_LST_cloudrm_{day}.tif", unit="kelvin")
        assert r.date.strftime("%Y%m%d") == day
        assert r.valid_fraction > 0.5


def test_yanco_wrong_unit_and_missing_unit(shared_data):
    path = shared_data / YANCO / "Landsat_LST_cloudrm_20160205.tif"
    with pytest.raises(UnitError, match="look like Kelvin: declare the unit Kelvin"):
        read_lst(path, unit="C")
    with pytest.raises(InputError, match="without a stored unit.*UNIT"):
        read_lst(path)
