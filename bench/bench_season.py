#!/usr/bin/env python3
"""Benchmark: the season regression on a 10,000 × 10,000 px season — time and peak memory.

Writes ``--pairs`` Landsat + MODIS reference pairs and MODIS at the prediction date as float
LST GeoTIFFs (smooth fields, deflate), then fuses with the season regression and its default
options (coarse consistency on) in a child process through the file driver (GDAL_CACHEMAX 256 MB,
as bench_onnx_fusion.py), and prints the time, the throughput and the child's own peak memory
against the 1.5 GB budget of a 10,000² season. Run: .venv/bin/python bench/bench_season.py [--size 10000] [--pairs 8]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from bench_fusion import peak_gb  # noqa: E402

TARGET_GB = 1.5


def write_season(folder: Path, size: int, pairs: int) -> None:
    """Fine and coarse rasters of ``pairs`` dates 16 days apart and MODIS at a date in the middle."""
    import rasterio
    from affine import Affine
    from scipy.ndimage import zoom

    rng = np.random.default_rng(1)
    pattern = zoom(rng.standard_normal((size // 100 + 1, size // 100 + 1)), 100, order=1)[:size, :size]
    pattern = pattern.astype(np.float32)
    texture = rng.standard_normal((size, size), dtype=np.float32)  # Landsat's own detail
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 1, "dtype": "float32",
               "crs": "EPSG:32631", "transform": Affine(30, 0, 400000, 0, -30, 5300000), "tiled": True,
               "compress": "deflate", "nodata": float("nan")}
    start = dt.date(2020, 4, 1)
    days = [start + dt.timedelta(days=16 * k) for k in range(pairs)]
    target = start + dt.timedelta(days=16 * (pairs // 2) - 8)
    for name, day, level, gain in [*((f"landsat_{d:%Y%m%d}", d, 290 + k, 3.0) for k, d in enumerate(days)),
                                   *((f"modis_{d:%Y%m%d}", d, 289 + k, 1.0) for k, d in enumerate(days)),
                                   (f"modis_{target:%Y%m%d}", target, 291 + pairs / 2, 1.0)]:
        with rasterio.open(folder / f"{name}.tif", "w", **profile) as dst:
            for top in range(0, size, 1024):
                rows = gain * pattern[top:top + 1024] + (texture[top:top + 1024] if gain > 1 else 0)
                dst.write((level + rows).astype(np.float32), 1,
                          window=rasterio.windows.Window(0, top, size, rows.shape[0]))
            dst.update_tags(LST_UNIT="K", ACQUISITION_DATE=day.isoformat())


def child(folder: Path) -> None:
    """Fuse in this (child) process; print seconds and peak memory."""
    from backend.fusion.fuse import fuse

    fine = sorted(folder.glob("landsat_*.tif"))
    coarse = {p.stem.split("_")[1]: p for p in folder.glob("modis_*.tif")}
    pairs = [(f, coarse[f.stem.split("_")[1]]) for f in fine]
    target = next(p for day, p in coarse.items() if not (folder / f"landsat_{day}.tif").exists())
    start = time.perf_counter()
    fuse("season", pairs, target, folder / "fused.tif")
    print(f"{time.perf_counter() - start:.1f} {peak_gb():.3f}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench_season_") as tmp:
        start = time.perf_counter()
        write_season(Path(tmp), args.size, args.pairs)
        written = time.perf_counter() - start
        # GDAL's block cache as in bench_onnx_fusion.py (its default, 5 % of RAM, would be counted as ours)
        env = {**os.environ, "GDAL_CACHEMAX": os.environ.get("GDAL_CACHEMAX", "256")}
        run = subprocess.run([sys.executable, __file__, "--child", tmp], capture_output=True, text=True, env=env)
    if run.returncode != 0:
        print(run.stdout[-2000:], run.stderr[-2000:])
        return 1
    seconds, peak = (float(v) for v in run.stdout.split()[-2:])
    pixels = args.size * args.size
    print(f"Season regression, {args.size}x{args.size} px, {args.pairs} reference pairs (inputs written in "
          f"{written:.0f} s), coarse consistency on, file driver, own process, "
          f"GDAL_CACHEMAX={env['GDAL_CACHEMAX']} MB:")
    print(f"  time         {seconds:8.1f} s   ({pixels / seconds / 1e6:.2f} Mpx/s)")
    print(f"  peak memory  {peak:8.2f} GB  (target < {TARGET_GB} GB, ratio {peak / TARGET_GB:.2f})")
    return 0 if peak < TARGET_GB else 1


if __name__ == "__main__":
    sys.exit(main())
