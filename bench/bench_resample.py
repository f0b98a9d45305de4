#!/usr/bin/env python3
"""Benchmark: resample one 1 km MODIS date onto a 10,000 × 10,000 px 30 m UTM grid.

Prints wall time, throughput and peak memory (max RSS of this process) against the
1.5 GB target of issue #3. Run: .venv/bin/python bench/bench_resample.py [--size N]
"""

from __future__ import annotations

import argparse
import resource
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
from backend.preprocess.resample import resample_lst  # noqa: E402
from backend.preprocess.sample_data import MODIS_ORIGIN, MODIS_SINUSOIDAL  # noqa: E402

TARGET_GB = 1.5


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
        size_mb = out.stat().st_size / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    pixels = target.width * target.height
    print(f"resample {width}x{height} MODIS px -> {target.width}x{target.height} px at 30 m ({args.method})")
    print(f"  time            {seconds:8.1f} s   ({pixels / seconds / 1e6:.1f} Mpx/s)")
    print(f"  peak memory     {peak:8.2f} GB  (before the run {base_rss:.2f} GB; target < {TARGET_GB} GB, "
          f"ratio {peak / TARGET_GB:.2f})")
    print(f"  output          {size_mb:8.0f} MB  (uncompressed {pixels * 4 / 2**20:.0f} MB)")
    return 0 if peak < TARGET_GB else 1


if __name__ == "__main__":
    sys.exit(main())
