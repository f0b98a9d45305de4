"""Readers on generated files in each real product format, and the bad inputs users hit."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import rasterio
from affine import Affine

from backend.errors import EmptyDataError, InputError, UnitError, UnknownProductError
from backend.io.lst_raster import LSTRaster
from backend.io.readers import read_lst
from backend.io.writers import write_lst
from backend.progress import LSTWarning


def _read(path):
    with rasterio.open(path) as src:
        return src.read(1)


def test_landsat_sample_decoded_by_mtl_and_qa(sample_dataset):
    folder, manifest = sample_dataset
    for rec in manifest["dates"]:
        st, qa = _read(folder / rec["landsat_st_b10"]), _read(folder / rec["landsat_qa_pixel"])
        params = json.loads((folder / rec["landsat_mtl"]).read_text())["LANDSAT_METADATA_FILE"][
            "LEVEL2_SURFACE_TEMPERATURE_PARAMETERS"]
        kelvin = st * float(params["TEMPERATURE_MULT_BAND_ST_B10"]) + float(params["TEMPERATURE_ADD_BAND_ST_B10"])
        flagged = (qa & 0b111011) != 0  # fill, dilated cloud, cloud, shadow, snow
        r = read_lst(folder / rec["landsat_st_b10"])
        np.testing.assert_allclose(r.data, np.where(flagged | (st == 0), np.nan, kelvin), atol=1e-3, equal_nan=True)
        assert r.date.isoformat() == rec["date"]
        truth = read_lst(folder / rec["truth"]).data
        clear = r.valid
        assert np.sqrt(np.mean((r.data[clear] - truth[clear]) ** 2)) < 0.5  # sensor noise only
        assert 1 - r.valid_fraction >= rec["landsat_cloud_fraction"] - 1e-6


def test_modis_appeears_export_with_qc_sibling(sample_dataset):
    folder, manifest = sample_dataset
    rec = max(manifest["dates"], key=lambda d: d["modis_not_produced_fraction"])
    assert rec["modis_not_produced_fraction"] > 0  # the fixture is cloudy enough to test QC
    dn, qc = _read(folder / rec["modis_lst"]).astype(float), _read(folder / rec["modis_qc"])
    expected = np.where(((qc & 3) >= 2) | (dn == 0), np.nan, dn * 0.02)
    r = read_lst(folder / rec["modis_lst"])
    np.testing.assert_allclose(r.data, expected, atol=1e-4, equal_nan=True)
    assert r.product == "MOD11A1" and r.date.isoformat() == rec["date"]
    assert r.resolution[0] == pytest.approx(926.625433, rel=1e-6)


def test_modis_without_qc_warns(sample_dataset, tmp_path):
    folder, manifest = sample_dataset
    lone = tmp_path / (folder / manifest["dates"][0]["modis_lst"]).name
    shutil.copy(folder / manifest["dates"][0]["modis_lst"], lone)
    with pytest.warns(LSTWarning, match="no QC layer"):
        read_lst(lone)


def test_landsat_without_qa_warns(sample_dataset, tmp_path):
    folder, manifest = sample_dataset
    lone = tmp_path / (folder / manifest["dates"][0]["landsat_st_b10"]).name
    shutil.copy(folder / manifest["dates"][0]["landsat_st_b10"], lone)
    with pytest.warns(LSTWarning, match="clouds are NOT masked"):
        read_lst(lone)


def _float_tif(path, data, tags=None, nodata=None, crs="EPSG:32631"):
    profile = {"driver": "GTiff", "dtype": str(data.dtype), "count": 1, "width": data.shape[1],
               "height": data.shape[0], "crs": crs, "transform": Affine(30, 0, 500000, 0, -30, 5300000),
               "nodata": nodata}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
        if tags:
            dst.update_tags(**tags)
    return path


def test_float_celsius_and_plausibility(sample_dataset, tmp_path):
    folder, manifest = sample_dataset
    truth = read_lst(folder / manifest["dates"][0]["truth"])
    path = _float_tif(tmp_path / "lst_celsius_20130318.tif", (truth.data - 273.15).astype(np.float32), nodata=-9999)
    r = read_lst(path, unit="°C")
    np.testing.assert_allclose(r.data, truth.data, atol=1e-4)
    assert r.date.isoformat() == "2013-03-18"
    with pytest.raises(UnitError, match="look like Celsius: declare the unit Celsius"):
        read_lst(path, unit="K")
    with pytest.raises(InputError, match="Unknown temperature unit"):
        read_lst(path, unit="F")


def test_implausible_pixels_warn(tmp_path):
    data = np.full((20, 20), 300.0, np.float32)
    data[:2] = 900.0  # 10 % impossible values: likely a wrong nodata value
    with pytest.warns(LSTWarning, match="outside"):
        read_lst(_float_tif(tmp_path / "hot.tif", data), unit="K")


def test_non_lst_rasters_rejected(tmp_path):
    rgb = _float_tif(tmp_path / "photo.tif", np.zeros((10, 10), np.uint8))
    with pytest.raises(UnknownProductError, match="photo.tif: not a recognised LST product"):
        read_lst(rgb)
    elevation = _float_tif(tmp_path / "dem.tif", np.full((10, 10), 1500.0, np.float32))
    with pytest.raises(UnitError, match="not a plausible land surface temperature.*LST raster at all"):
        read_lst(elevation, unit="K")


def test_unknown_product_and_wrong_reader(tmp_path, sample_dataset):
    folder, manifest = sample_dataset
    with pytest.raises(InputError, match="Unknown product 'sentinel3'"):
        read_lst(folder / manifest["dates"][0]["truth"], product="sentinel3")
    with pytest.raises(InputError, match="MODIS LST should be the scaled uint16 product"):
        read_lst(folder / manifest["dates"][0]["truth"], product="modis")
    with pytest.raises(InputError, match="ST_B10 band is uint16"):
        read_lst(folder / manifest["dates"][0]["truth"], product="landsat")


def test_corrupt_and_missing_files(tmp_path, sample_dataset):
    folder, manifest = sample_dataset
    src = (folder / manifest["dates"][0]["landsat_st_b10"]).read_bytes()
    broken = tmp_path / "LC08_L2SP_199027_20130318_20130401_02_T1_ST_B10.TIF"
    broken.write_bytes(src[: len(src) // 3])
    with pytest.raises(InputError, match="ST_B10.TIF.*(corrupt|cannot be read)"):
        read_lst(broken).data.sum()
    text = tmp_path / "notes.tif"
    text.write_text("not a raster")
    with pytest.raises(InputError, match="notes.tif: cannot be read as a raster"):
        read_lst(text)
    with pytest.raises(InputError, match="file not found"):
        read_lst(tmp_path / "nothing_here.tif")


def test_all_fill_rejected(tmp_path, sample_dataset):
    folder, manifest = sample_dataset
    name = (folder / manifest["dates"][0]["landsat_st_b10"]).name
    with rasterio.open(folder / manifest["dates"][0]["landsat_st_b10"]) as src:
        profile = src.profile
    with rasterio.open(tmp_path / name, "w", **profile) as dst:
        dst.write(np.zeros((profile["height"], profile["width"]), np.uint16), 1)
    with pytest.raises(EmptyDataError, match="no valid LST pixel"), pytest.warns(LSTWarning, match="QA_PIXEL"):
        read_lst(tmp_path / name)


def test_our_outputs_read_back_without_a_unit(tmp_path, sample_dataset):
    folder, manifest = sample_dataset
    r = read_lst(folder / manifest["dates"][1]["landsat_st_b10"])
    out = write_lst(r, tmp_path / "decoded.tif", unit="C", algorithm="import_lst")
    back = read_lst(out)
    np.testing.assert_allclose(back.data, r.data, atol=1e-4, equal_nan=True)
    assert back.date == r.date and back.product == r.product and back.sensor == "landsat"


def test_lst_raster_contract():
    r = LSTRaster(np.array([[300, np.nan]], np.float64), None, Affine(30, 0, 0, 0, -30, 60))
    assert r.data.dtype == np.float32 and r.valid_fraction == 0.5
    assert r.bounds == (0, 30, 60, 60)
    with pytest.raises(ValueError, match="2-D"):
        LSTRaster(np.zeros((2, 2, 2)), None, Affine.identity())


def test_mod21_export_uses_its_single_layer_and_qc(tmp_path, sample_dataset):
    folder, manifest = sample_dataset
    rec = max(manifest["dates"], key=lambda d: d["modis_not_produced_fraction"])
    doy = rec["modis_lst"].split("doy")[1][:7]
    lst = tmp_path / f"MOD21A1D.061_LST_1KM_doy{doy}_aid0001.tif"
    shutil.copy(folder / rec["modis_lst"], lst)
    shutil.copy(folder / rec["modis_qc"], tmp_path / f"MOD21A1D.061_QC_doy{doy}_aid0001.tif")
    r = read_lst(lst)
    assert r.product == "MOD21A1D" and r.date.isoformat() == rec["date"]
    assert r.tags["qc"].endswith(f"MOD21A1D.061_QC_doy{doy}_aid0001.tif")
    np.testing.assert_array_equal(r.data, read_lst(folder / rec["modis_lst"]).data)
