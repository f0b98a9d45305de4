#!/usr/bin/env python3
"""Benchmark: ESTARFM (two pairs, 51-px window) and STARFM on a 950 × 950 scene, against the
per-pixel oracle on a crop, and ESTARFM's peak memory on a 5,000 × 5,000 scene.

Targets (issue #4): the 950 × 950 ESTARFM in under 15 s, at least 50× faster than the
oracle per pixel; under 1 GB peak for 5,000 × 5,000. Run: .venv/bin/python bench/bench_fusion.py
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from scipy.ndimage import gaussian_filter, uniform_filter

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from fusion_oracle import estarfm_pixelwise  # noqa: E402

from backend.fusion.estarfm import EstarfmParams, estarfm  # noqa: E402
from backend.fusion.starfm import StarfmParams, starfm  # noqa: E402


def scene(n: int, seed: int = 0):
    """Fine LST with classes and texture at three dates; coarse = block-averaged, biased fine."""
    rng = np.random.default_rng(seed)
    classes = np.digitize(gaussian_filter(rng.standard_normal((n, n)), 8), [-0.1, 0.0, 0.1])
    texture = gaussian_filter(rng.standard_normal((n, n)), 1.5)
    fine = [(285 + 3 * classes * k + 2 * texture + 4 * k).astype(np.float32) for k in (1.0, 1.5, 2.0)]
    coarse = [(uniform_filter(f, 33) - 1.0).astype(np.float32) for f in fine]
    return fine, coarse


def peak_gb() -> float:
    """This process's own peak (VmHWM): ru_maxrss of a child also counts its parent's memory at fork."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 2**20
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def write_large(folder: Path, size: int) -> dict[str, Path]:
    """Five float LST GeoTIFFs of size × size px (two pairs and the prediction date)."""
    rng = np.random.default_rng(1)
    base = (290 + 3 * gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), 6)).astype(np.float32)
    paths = {}
    for name, offset, day in (("f1", 0, "20200601"), ("c1", -1, "20200601"), ("f3", 6, "20200703"),
                              ("c3", 5, "20200703"), ("c2", 2, "20200617")):
        paths[name] = folder / f"{name}_{day}.tif"
        with rasterio.open(paths[name], "w", driver="GTiff", width=size, height=size, count=1, dtype="float32",
                           crs="EPSG:32631", transform=Affine(30, 0, 400000, 0, -30, 5300000), tiled=True) as dst:
            dst.write(base + offset, 1)
            dst.update_tags(LST_UNIT="K")
    return paths


def large(folder: Path) -> None:
    """Child process: ESTARFM through the file driver; prints seconds and its own peak memory."""
    from backend.fusion.fuse import fuse

    paths = {p.name.split("_")[0]: p for p in folder.glob("*.tif")}
    start = time.perf_counter()
    fuse("estarfm", [(paths["f1"], paths["c1"]), (paths["f3"], paths["c3"])], paths["c2"], folder / "out.tif")
    print(f"{time.perf_counter() - start:.1f} {peak_gb():.3f}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=950)
    parser.add_argument("--window", type=int, default=51)
    parser.add_argument("--crop", type=int, default=12, help="oracle crop side (pixels)")
    parser.add_argument("--large", type=int, default=5000, help="side of the memory test scene (0 = skip)")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        large(args.child)
        return 0
    fine, coarse = scene(args.size)
    f1, _, f3 = fine
    c1, c2, c3 = coarse
    params = EstarfmParams(window=args.window)
    estarfm(f1[:64, :64], c1[:64, :64], f3[:64, :64], c3[:64, :64], c2[:64, :64], params)  # JIT warm-up
    starfm(f1[:64, :64], c1[:64, :64], c2[:64, :64], StarfmParams(window=args.window))
    start = time.perf_counter()
    fast = estarfm(f1, c1, f3, c3, c2, params)
    t_fast = time.perf_counter() - start
    start = time.perf_counter()
    starfm(f1, c1, c2, StarfmParams(window=args.window))
    t_starfm = time.perf_counter() - start
    mid = args.size // 2
    region = (mid, mid + args.crop, mid, mid + args.crop)
    start = time.perf_counter()
    slow = estarfm_pixelwise(f1, c1, f3, c3, c2, window=args.window, region=region)
    t_slow = time.perf_counter() - start
    crop = (slice(region[0], region[1]), slice(region[2], region[3]))
    agreement = float(np.nanmax(np.abs(fast[crop] - slow[crop])))
    per_fast = t_fast / fast.size
    per_slow = t_slow / (args.crop * args.crop)
    threads = os.environ.get("NUMBA_NUM_THREADS", str(os.cpu_count()))
    print(f"ESTARFM {args.size}x{args.size}, window {args.window}, {threads} threads")
    print(f"  time                 {t_fast:8.2f} s   (target < 15 s)")
    print(f"  per pixel            {per_fast * 1e6:8.2f} µs  vs oracle {per_slow * 1e6:.0f} µs on a "
          f"{args.crop}x{args.crop} crop: {per_slow / per_fast:.0f}x faster (target ≥ 50x); "
          f"max difference {agreement:.2e} K")
    print(f"STARFM  {args.size}x{args.size}, window {args.window}: {t_starfm:.2f} s")
    print(f"  peak memory          {peak_gb():8.2f} GB")
    ok = t_fast < 15 and per_slow / per_fast >= 50
    if args.large:
        with tempfile.TemporaryDirectory() as tmp:
            write_large(Path(tmp), args.large)
            run = subprocess.run([sys.executable, __file__, "--child", tmp], capture_output=True, text=True)
        if run.returncode != 0:
            print(run.stderr[-2000:])
            return 1
        seconds, peak = (float(v) for v in run.stdout.split()[-2:])
        print(f"ESTARFM {args.large}x{args.large} (file driver, row blocks, own process): {seconds:.0f} s, "
              f"peak memory {peak:.2f} GB (target < 1 GB)")
        ok &= peak < 1.0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
