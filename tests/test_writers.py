"""Writers: Cloud-Optimized float32 GeoTIFFs with LST metadata, written atomically."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

import backend.io.writers as writers
from backend.errors import Cancelled
from backend.io.lst_raster import LSTRaster
from backend.io.readers import read_lst
from backend.progress import Progress


def _raster(n=600):
    rng = np.random.default_rng(1)
    data = (290 + 5 * rng.standard_normal((n, n))).astype(np.float32)
    data[:10, :10] = np.nan
    import datetime as dt

    return LSTRaster(data, CRS.from_epsg(32631), Affine(30, 0, 400000, 0, -30, 5300000),
                     dt.date(2020, 7, 1), "LC08_L2SP", "landsat", "/x/LC08_scene_ST_B10.TIF")


def test_cog_layout_tags_and_units(tmp_path):
    r = _raster()
    out = writers.write_lst(r, tmp_path / "lst.tif", algorithm="import_lst")
    with rasterio.open(out) as src:
        assert src.dtypes[0] == "float32" and np.isnan(src.nodata)
        assert src.profile["tiled"] and src.compression.value == "DEFLATE"
        assert src.overviews(1), "COG should carry overviews"
        assert src.tags()["LST_UNIT"] == "K" and src.tags()["ACQUISITION_DATE"] == "2020-07-01"
        assert src.tags()["SOURCE_PRODUCT"] == "LC08_L2SP"
        assert src.units == ("K",) and src.descriptions == ("LST (K)",)
        assert src.crs.to_epsg() == 32631 and src.transform == r.transform
        data = src.read(1)
    np.testing.assert_array_equal(data, r.data)
    assert not [p for p in tmp_path.iterdir() if p.name != "lst.tif"], "no temporary left behind"


@pytest.mark.parametrize("cog", [True, False])
def test_outputs_carry_their_statistics_so_qgis_writes_no_sidecar(tmp_path, cog):
    """QGIS styling a loaded output asks GDAL for its statistics; found in the file, they are not computed
    and saved as an .aux.xml beside every output."""
    from qgis.core import QgsRasterBandStats, QgsRasterLayer

    r = _raster(300)
    out = writers.write_lst(r, tmp_path / "lst.tif", cog=cog, algorithm="import_lst")
    with rasterio.open(out) as src:
        tags = src.tags(1)
    valid = r.data[np.isfinite(r.data)].astype(np.float64)
    assert float(tags["STATISTICS_MEAN"]) == pytest.approx(valid.mean(), rel=1e-9)
    assert float(tags["STATISTICS_STDDEV"]) == pytest.approx(valid.std(), rel=1e-6)
    assert float(tags["STATISTICS_MINIMUM"]) == valid.min() and float(tags["STATISTICS_MAXIMUM"]) == valid.max()
    assert float(tags["STATISTICS_VALID_PERCENT"]) == pytest.approx(100 * valid.size / r.data.size)
    layer = QgsRasterLayer(str(out), "lst")
    stats = layer.dataProvider().bandStatistics(1, QgsRasterBandStats.All)
    assert stats.mean == pytest.approx(valid.mean(), rel=1e-6)
    del layer
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lst.tif"]



@pytest.mark.parametrize(("dtype", "nodata"), [("int16", -9999), ("float32", -9999.0), ("uint8", None)])
def test_statistics_leave_out_nodata_and_nan_in_every_band(tmp_path, dtype, nodata):
    """The read-back check's statistics count a band's valid pixels only (not its nodata value, not NaN), in
    rasters of several rows of blocks and more than one band."""
    rng = np.random.default_rng(2)
    data = rng.integers(1, 200, (2, 700, 530)).astype(dtype)
    if nodata is not None:
        data[0, :50] = nodata
    if dtype == "float32":
        data[1, 100:120] = np.nan
    path = tmp_path / "x.tif"
    with rasterio.open(path, "w", driver="GTiff", width=530, height=700, count=2, dtype=dtype, nodata=nodata,
                       tiled=True, blockxsize=256, blockysize=256, compress="deflate") as dst:
        dst.write(data)
    for band, tags in zip(data, writers.verify_raster(path)):
        valid = band[np.isfinite(band) & ((band != nodata) if nodata is not None else True)].astype(np.float64)
        assert float(tags["STATISTICS_MEAN"]) == pytest.approx(valid.mean(), rel=1e-12)
        assert float(tags["STATISTICS_STDDEV"]) == pytest.approx(valid.std(), rel=1e-9)
        assert float(tags["STATISTICS_MINIMUM"]) == valid.min() and float(tags["STATISTICS_MAXIMUM"]) == valid.max()
        assert float(tags["STATISTICS_VALID_PERCENT"]) == pytest.approx(100 * valid.size / band.size)

def test_celsius_output(tmp_path):
    r = _raster(50)
    out = writers.write_lst(r, tmp_path / "c.tif", unit="C", cog=False, algorithm="import_lst")
    with rasterio.open(out) as src:
        assert src.tags()["LST_UNIT"] == "C"
        np.testing.assert_allclose(src.read(1), r.data - 273.15, atol=1e-4)
    np.testing.assert_allclose(read_lst(out).data, r.data, atol=1e-4)


def test_failed_write_leaves_old_file_and_no_partial(tmp_path, monkeypatch):
    target = writers.write_lst(_raster(40), tmp_path / "lst.tif", algorithm="import_lst")
    previous = target.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(writers.rasterio.shutil, "copy", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        writers.write_lst(_raster(50), target, algorithm="import_lst")
    assert target.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lst.tif"]


def test_cancelled_write_leaves_nothing(tmp_path):
    with pytest.raises(Cancelled):
        writers.write_lst(_raster(50), tmp_path / "lst.tif", progress=Progress(is_cancelled=lambda: True),
                          algorithm="import_lst")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_signal_whose_raise_is_swallowed_still_stops_the_commit(tmp_path, kind):
    """The signal handler raises wherever the main thread is, a broad ``except`` included, so the commit and
    the next progress check must ask again (one way a gap_fill run signalled by SIGINT once ended with exit
    code 0 and its output renamed)."""
    import os
    import signal

    from backend.errors import Interrupted
    from backend.io.atomic import atomic_path, stop_on_signals
    from backend.io.outputs import output_folder

    if kind == "file":
        (tmp_path / "kept.tif").write_bytes(b"previous")

    def swallowed() -> None:
        try:
            os.kill(os.getpid(), signal.SIGINT)  # the handler raises as soon as this call returns
        except Exception:  # noqa: BLE001 - what some library code does with any error
            pass

    with stop_on_signals():
        with pytest.raises(Interrupted, match="Stopped by SIGINT"):
            if kind == "file":
                with atomic_path(tmp_path / "kept.tif") as tmp:
                    tmp.write_bytes(b"new")
                    swallowed()
            else:
                with output_folder(tmp_path / "series", "gap_fill", []) as stage:
                    (stage / "a.tif").write_bytes(b"new")
                    swallowed()
        with pytest.raises(Interrupted):
            Progress().check()
    Progress().check()  # a later run does not see this run's signal
    assert sorted(p.name for p in tmp_path.iterdir()) == (["kept.tif"] if kind == "file" else [])
    assert kind != "file" or (tmp_path / "kept.tif").read_bytes() == b"previous"
