#!/usr/bin/env python3
"""Benchmark: resample one 1 km MODIS date onto a 10,000 × 10,000 px 30 m UTM grid, beside gdalwarp.

Prints wall time, throughput and peak memory (max RSS of this process) against the
1.5 GB target of issue #3, and the same warp by ``gdalwarp -multi -wo NUM_THREADS=ALL_CPUS``
(same kernel, nodata, creation options, every core) measured in the same run: the time ratio
(target ≤ 1.0), gdalwarp's peak memory, and the largest difference between the two outputs; and
how much of the time is the read-back check every output gets before its rename.
Run: .venv/bin/python bench/bench_resample.py [--size N]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from affine import Affine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.io.grid import (
    MODIS_PIXEL_M,
    Grid,  # noqa: E402
)
from backend.io.lst_raster import LSTRaster  # noqa: E402
from backend.io.writers import verify_raster  # noqa: E402
from backend.preprocess.resample import resample_lst  # noqa: E402
from backend.preprocess.sample_data import MODIS_ORIGIN, MODIS_SINUSOIDAL  # noqa: E402

TARGET_GB = 1.5
GDAL_KERNELS = {"bicubic": "cubic", "bilinear": "bilinear", "nearest": "near", "average": "average",
                "cubic_spline": "cubicspline"}


def gdalwarp(source: Path, target: Grid, out: Path, method: str) -> tuple[float, float]:
    """Seconds and peak memory (GB) of gdalwarp doing the same warp with every core."""
    from backend.io.writers import lst_profile

    profile = lst_profile(target.crs, target.transform, target.width, target.height)
    left, bottom, right, top = target.bounds
    options = [f"{key.upper()}={str(value).upper() if isinstance(value, bool) else value}" for key, value in
               profile.items() if key in ("tiled", "blockxsize", "blockysize", "compress", "predictor", "zlevel")]
    command = ["/usr/bin/time", "-f", "%M", "gdalwarp", "-q", "-multi", "-wo", "NUM_THREADS=ALL_CPUS",
               "-co", "NUM_THREADS=ALL_CPUS", "-t_srs", target.crs.to_string(), "-te", str(left), str(bottom),
               str(right), str(top), "-ts", str(target.width), str(target.height), "-r", GDAL_KERNELS[method],
               "-srcnodata", "nan", "-dstnodata", "nan", "-ot", "Float32", "-overwrite",
               *(x for option in options for x in ("-co", option)), str(source), str(out)]
    start = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    return seconds, int(done.stderr.strip().splitlines()[-1]) / 2**20


def write_source(source: LSTRaster, path: Path) -> None:
    import rasterio

    height, width = source.data.shape
    with rasterio.open(path, "w", driver="GTiff", dtype="float32", count=1, width=width, height=height,
                       crs=source.crs, transform=source.transform, nodata=float("nan")) as dst:
        dst.write(source.data, 1)


def differences(a: Path, b: Path) -> tuple[float, int]:
    """The largest difference where both rasters are valid, and the pixels valid in only one of them."""
    import rasterio

    worst, mismatched = 0.0, 0
    with rasterio.open(a) as x, rasterio.open(b) as y:
        for _, window in x.block_windows(1):
            u, v = x.read(1, window=window), y.read(1, window=window)
            both = np.isfinite(u) & np.isfinite(v)
            mismatched += int(np.count_nonzero(np.isfinite(u) != np.isfinite(v)))
            if both.any():
                worst = max(worst, float(np.abs(u - v)[both].max()))
    return worst, mismatched


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=10_000, help="target width = height (px)")
    parser.add_argument("--method", default="bicubic")
    args = parser.parse_args()
    target = Grid.from_bounds("EPSG:32631", 30.0, (300_000, 5_250_000, 300_000 + 30 * args.size,
                                                   5_250_000 + 30 * args.size))
    left, bottom, right, top = target.bounds_in(MODIS_SINUSOIDAL)
    c0 = int(np.floor((left - MODIS_ORIGIN[0]) / MODIS_PIXEL_M)) - 2
    r0 = int(np.floor((MODIS_ORIGIN[1] - top) / MODIS_PIXEL_M)) - 2
    width = int(np.ceil((right - left) / MODIS_PIXEL_M)) + 4
    height = int(np.ceil((top - bottom) / MODIS_PIXEL_M)) + 4
    rng = np.random.default_rng(0)
    data = (295 + 5 * rng.standard_normal((height, width))).astype(np.float32)
    data[rng.random((height, width)) < 0.2] = np.nan  # clouds
    source = LSTRaster(data, MODIS_SINUSOIDAL, Affine(MODIS_PIXEL_M, 0, MODIS_ORIGIN[0] + c0 * MODIS_PIXEL_M,
                                                      0, -MODIS_PIXEL_M, MODIS_ORIGIN[1] - r0 * MODIS_PIXEL_M))
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        out = resample_lst(source, target, Path(tmp) / "resampled.tif", args.method)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        size_mb = out.stat().st_size / 2**20
        start = time.perf_counter()
        verify_raster(out)  # the read-back every output gets before its rename, timed again on its own
        check_seconds = time.perf_counter() - start
        write_source(source, Path(tmp) / "modis.tif")
        gdal_seconds, gdal_peak = gdalwarp(Path(tmp) / "modis.tif", target, Path(tmp) / "gdalwarp.tif", args.method)
        difference, mismatched = differences(out, Path(tmp) / "gdalwarp.tif")
    pixels = target.width * target.height
    print(f"resample {width}x{height} MODIS px -> {target.width}x{target.height} px at 30 m ({args.method})")
    print(f"  time            {seconds:8.1f} s   ({pixels / seconds / 1e6:.1f} Mpx/s)")
    print(f"  peak memory     {peak:8.2f} GB  (before the run {base_rss:.2f} GB; target < {TARGET_GB} GB, "
          f"ratio {peak / TARGET_GB:.2f})")
    print(f"  output          {size_mb:8.0f} MB  (uncompressed {pixels * 4 / 2**20:.0f} MB)")
    print(f"  gdalwarp -multi {gdal_seconds:8.1f} s, peak memory {gdal_peak:.2f} GB: time ratio "
          f"{seconds / gdal_seconds:.2f} (target ≤ 1.0), memory ratio {peak / gdal_peak:.2f}; largest difference "
          f"{difference:.2g} K where both are valid, {mismatched} pixel(s) valid in only one")
    print(f"  of which the read-back check of the output (which gdalwarp does not do) {check_seconds:.1f} s: "
          f"warping and writing alone {(seconds - check_seconds) / gdal_seconds:.2f}× gdalwarp's time")
    return 0 if peak < TARGET_GB else 1


if __name__ == "__main__":
    sys.exit(main())
