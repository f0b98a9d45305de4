#!/usr/bin/env python3
"""Benchmark: bytes and seconds per date to download a 20 × 20 km area from a STAC archive, against
downloading the whole assets, from a STAC API served on 127.0.0.1 (tests/stac_server.py).

The assets have the real products' sizes: a Landsat C2 L2 scene of 7,680 × 7,680 px at 30 m (ST_B10 and
QA_PIXEL, uint16, 256-px tiles, deflate with predictor 2 as USGS's COG format book LSDS-1388 describes;
values: the real scene 017036 upsampled, with 30-m texture) and the real MOD11A1 tile h11v05 (1,200 × 1,200,
LST_Day_1km and QC_Day; GDAL's default 512-px COG tiles). Target (issue #20): at most 5 % of
the bytes. Run: .venv/bin/python bench/bench_acquire.py
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.warp import transform_bounds

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import acquire_archive as archive  # noqa: E402
from stac_server import StacServer  # noqa: E402

from backend.acquire import stac  # noqa: E402
from backend.acquire.download import download_lst  # noqa: E402

SIZE = 7680
DAY = dt.date(2013, 5, 5)


def _cog(path: Path, data: np.ndarray, crs, transform, nodata=None, block: int = 512) -> None:
    with rasterio.open(path, "w", driver="COG", width=data.shape[1], height=data.shape[0], count=1,
                       dtype=data.dtype, crs=crs, transform=transform, nodata=nodata, BLOCKSIZE=block,
                       COMPRESS="DEFLATE", PREDICTOR=2, OVERVIEWS="NONE") as dst:
        dst.write(data, 1)


def build(folder: Path) -> dict:
    """Full-size assets and their grids."""
    with rasterio.open(f"{archive.LANDSAT_REAL}ST_B10.TIF") as src:
        crs, left, top = src.crs, src.transform.c, src.transform.f
        st = src.read(1, out_shape=(SIZE, SIZE), resampling=Resampling.bilinear)
    rng = np.random.default_rng(0)
    texture = rng.normal(0, 120, (SIZE, SIZE)).astype(np.int32)  # ~0.4 K of 30-m detail
    st = np.clip(st.astype(np.int32) + texture * (st > 0), 0, 65535).astype(np.uint16)
    transform = Affine(30.0, 0, left, 0, -30.0, top)
    _cog(folder / "big_ST_B10.tif", st, crs, transform, 0, 256)
    qa = np.full((SIZE, SIZE), archive.QA_CLEAR, np.uint16)
    qa[rng.random((SIZE, SIZE)) < 0.02] = archive.QA_CLOUD
    _cog(folder / "big_QA_PIXEL.tif", qa, crs, transform, None, 256)
    hdf = f'HDF4_EOS:EOS_GRID:"{archive.MODIS_REAL}":MODIS_Grid_Daily_1km_LST:'
    with rasterio.open(hdf + "LST_Day_1km") as src:
        lst, sinu, sinu_t = src.read(1), src.crs, src.transform
    with rasterio.open(hdf + "QC_Day") as src:
        qc = src.read(1)
    _cog(folder / "modis_LST_Day_1km.tif", lst, sinu, sinu_t, 0)
    _cog(folder / "modis_QC_Day.tif", qc, sinu, sinu_t)
    return {"landsat": (crs, transform, (SIZE, SIZE)), "modis": (sinu, sinu_t, lst.shape)}


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "assets"
        folder.mkdir()
        t0 = time.perf_counter()
        grids = build(folder)
        print(f"assets written in {time.perf_counter() - t0:.0f} s")
        with StacServer(folder) as server:
            server.add_item(archive.LANDSAT_COLLECTION, archive.landsat_item(
                server, "LC08_L2SP_017036_20130505_02_T1", DAY, "big", grids["landsat"], 36, 5.0))
            server.add_item(archive.MODIS_COLLECTION, archive.modis_item(server, "MOD11A1", DAY, 11, "modis",
                                                                         grids["modis"]))
            stac.register(stac.StacSource("bench_local", server.url, archive.LANDSAT_COLLECTION,
                                          {"MOD11A1": archive.MODIS_COLLECTION}))
            crs, transform, _ = grids["landsat"]
            cx, cy = transform * (SIZE / 2, SIZE / 2)
            bbox = transform_bounds(crs, "EPSG:4326", cx - 10_000, cy - 10_000, cx + 10_000, cy + 10_000)
            t0 = time.perf_counter()
            result = download_lst(Path(tmp) / "out", bbox, source="bench_local", start=str(DAY), end=str(DAY),
                                  min_modis_valid=0.0, min_landsat_valid=0.0)
            area_s = time.perf_counter() - t0
            area_bytes = sum(server.bytes_served.values())
            assert result.landsat and result.modis, "both sensors must be written"
            t0 = time.perf_counter()
            whole_bytes = 0
            for name in ("big_ST_B10.tif", "big_QA_PIXEL.tif", "modis_LST_Day_1km.tif", "modis_QC_Day.tif"):
                with urllib.request.urlopen(server.asset_url(name)) as answer:  # noqa: S310 - 127.0.0.1 only
                    whole_bytes += len(answer.read())
            whole_s = time.perf_counter() - t0
        with rasterio.open(result.landsat[0]) as src:
            shape = src.shape
    ratio = area_bytes / whole_bytes
    print(f"area 20 × 20 km: Landsat {shape[1]} × {shape[0]} px; one date of each sensor")
    print(f"area only : {area_bytes / 1e6:8.2f} MB in {area_s:6.2f} s (search, headers, tiles, writing), "
          f"{area_s / 2:.2f} s per product date")
    print(f"whole     : {whole_bytes / 1e6:8.2f} MB in {whole_s:6.2f} s (the four assets, no writing)")
    rate = 50e6 / 8  # a 50 Mbit/s connection, where the bytes are what takes the time
    print(f"at 50 Mbit/s: area only ~{area_bytes / rate:.1f} s, whole ~{whole_bytes / rate:.1f} s per date")
    print(f"bytes ratio {ratio:.2%} (target ≤ 5 %): {'OK' if ratio <= 0.05 else 'MISSED'}")
    return 0 if ratio <= 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
