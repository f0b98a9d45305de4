#!/usr/bin/env python3
"""Benchmark: deep-model fusion with ONNX Runtime against torch eager, at scale, and a series on Dask.

1. For each model (one reference pair) on a 950 × 950 scene: torch eager and ONNX Runtime on the
   whole image (same threads), and the product's tiled fusion (``fuse``, GeoTIFFs in and out, default
   tiles): seconds, megapixels per second, and GFLOP/s (the network's convolutions and matrix
   products, counted by torch) beside ONNX Runtime's float32 matrix-product peak measured in the
   same run. Targets: ORT never slower than torch, the fastest model at least 0.5 Mpx/s on 2 cores
   (issue #9); the tiled fusion at least 80 % of ORT's whole-image throughput (issue #21).
2. A 10,000 × 10,000 px ONNX fusion in a subprocess: peak memory (target under 1.5 GB).
3. A 20-date STARFM series on a Dask LocalCluster of 1 and of 2 single-threaded workers
   (target: 2 workers at least 1.7× faster).

The speed-up targets assume at least as many cores as workers; the machine's core count is
printed. Run: .venv/bin/python bench/bench_onnx_fusion.py [--skip-large] [--skip-series]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from scipy.ndimage import gaussian_filter

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

STATS = {"fine": {"mean": 295.0, "std": 6.0}, "coarse": {"mean": 294.0, "std": 4.0}}
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def export(name: str, folder: Path):
    import torch

    from backend.training.onnx_export import export_onnx
    from models import registry
    from models.card import ModelCard
    from models.contract import KelvinModel, Normalise, PaddedModel, exportable

    spec = registry.get(name)
    contract = spec.contract(1)
    torch.manual_seed(0)
    net = spec.build(1).eval()
    kelvin = exportable(net, Normalise(contract, STATS))  # as Train exports it (MLFF-GAN: scene statistics)
    card = ModelCard(model=name, title=spec.title, paper=spec.paper, model_version=spec.version,
                     package_version="bench", roles=contract.roles, size_multiple=contract.size_multiple, units="K",
                     normalisation=STATS, parameters=registry.parameter_count(net),
                     scene_moments=kelvin.scene_moments)
    path = export_onnx(kelvin, card, folder / f"{name}.onnx")
    return path, KelvinModel(PaddedModel(net, contract), Normalise(contract, STATS)).eval()


def write_inputs(folder: Path, size: int, seed: int = 0, block: int = 1024) -> list[Path]:
    """fine_t1, coarse_t1, coarse_t2 float LST GeoTIFFs, written in row blocks (any size)."""
    rng = np.random.default_rng(seed)
    paths = [folder / f"f1_{size}_20200601.tif", folder / f"c1_{size}_20200601.tif", folder / f"c2_{size}_20200617.tif"]
    profile = dict(driver="GTiff", width=size, height=size, count=1, dtype="float32", crs="EPSG:32631",
                   transform=Affine(30, 0, 400000, 0, -30, 5300000), tiled=True, compress="deflate", nodata=np.nan)
    dsts = [rasterio.open(p, "w", **profile) for p in paths]
    try:
        for top in range(0, size, block):
            h = min(block, size - top)
            base = 295 + 4 * gaussian_filter(rng.standard_normal((h, size)).astype(np.float32), 5)
            # Landsat's own detail (fields, roofs), which the fusion's input check looks for in the fine raster
            detail = 1.5 * gaussian_filter(rng.standard_normal((h, size)).astype(np.float32), 0.7)
            for k, dst in enumerate(dsts):
                dst.write((base + (detail, -1, 3)[k]).astype(np.float32), 1, window=((top, top + h), (0, size)))
        for dst in dsts:
            dst.update_tags(LST_UNIT="K", SENSOR="landsat" if dst is dsts[0] else "modis")
    finally:
        for dst in dsts:
            dst.close()
    return paths


def best(fn, repeat: int = 2) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def network_flops(model, size: int = 256) -> float:
    """Floating-point operations per output pixel of one pass of ``model`` (torch's count of its
    convolutions and matrix products, 2 per multiply-add), on a size × size input."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.full((1, int(model.normalise.mean.shape[1]), size, size), 295.0))
    return counter.get_total_flops() / size**2


def matmul_peak(repeat: int = 5, n: int = 2048) -> float:
    """ONNX Runtime's float32 matrix-product throughput (GFLOP/s) on this machine, same threads as fusion:
    MLAS's GEMM, which its convolutions also run on."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from backend.fusion.onnx_model import session_options

    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul",
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [n, n]) for x in "ab"],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), session_options(), providers=["CPUExecutionProvider"])
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    session.run(None, {"a": a, "b": a})
    return 2.0 * n**3 / best(partial(session.run, None, {"a": a, "b": a}), repeat) / 1e9


def whole_image_run(session, padded: np.ndarray, scene: bool):
    """ORT on the whole (padded) image; a network with scene statistics takes its moments pass first."""
    if not scene:
        return lambda: session.run(["lst"], {"inputs": padded})
    weight = np.ones((1, 1, *padded.shape[2:]), np.float32)
    unused = np.zeros(session.get_inputs()[2].shape, np.float32)

    def run():
        moments = session.run(["moments"], {"inputs": padded, "moment_weights": weight, "scene_moments": unused})[0]
        return session.run(["lst"], {"inputs": padded, "moment_weights": weight, "scene_moments": moments})
    return run


def models_table(folder: Path) -> None:
    import onnxruntime as ort
    import torch

    from backend.fusion.fuse import fuse
    from backend.fusion.onnx_model import OnnxParams, model_card, providers, session_options
    from backend.io.readers import read_lst

    torch.set_num_threads(CORES)
    size = 950
    paths = write_inputs(folder, size)
    x = np.stack([read_lst(p).data for p in (paths[1], paths[0], paths[2])])[None]  # coarse_t1, fine_t1, coarse_t2
    mpx = size * size / 1e6
    peak = matmul_peak()
    defaults = OnnxParams()
    print(f"\n950 × 950 px, one reference pair, {CORES} core(s), providers {providers()}; ONNX Runtime float32 "
          f"matrix product {peak:.0f} GFLOP/s; fusion in tiles of {defaults.tile} px, {defaults.overlap} px overlap")
    print(f"{'model':8} {'kFLOP/px':>9} {'torch s':>8} {'ORT whole s':>12} {'ORT/torch':>10} {'GFLOP/s':>8} "
          f"{'% peak':>7} {'fuse tiled s':>13} {'Mpx/s':>6} {'GFLOP/s':>8} {'% peak':>7} {'tiled/whole':>12} "
          f"{'+ consistency s':>16}")
    rates, ratios = {}, {}
    for name in ("sttfn", "edcstfn", "mlffgan"):
        onnx_path, torch_model = export(name, folder)
        scene = bool(model_card(onnx_path).scene_moments)
        m = torch_model.model.multiple
        ph, pw = (m - size % m) % m, (m - size % m) % m
        padded = np.ascontiguousarray(np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect"))
        per_pixel = network_flops(torch_model)  # one pass; a scene-statistics model runs two
        passes = 2 if scene else 1
        with torch.no_grad():
            t_torch = best(partial(torch_model, torch.from_numpy(x)))
        session = ort.InferenceSession(str(onnx_path), session_options(), providers=providers())
        run = whole_image_run(session, padded, scene)
        run()
        t_ort = best(run, 3)
        del session, run  # its memory arena
        t_fuse = best(partial(fuse, "onnx", [(paths[0], paths[1])], paths[2], folder / f"{name}_out.tif",
                              OnnxParams(str(onnx_path), coarse_consistency=False)), repeat=3)
        # The product's default adds the coarse-consistency correction, a second pass over the prediction.
        t_default = best(partial(fuse, "onnx", [(paths[0], paths[1])], paths[2], folder / f"{name}_default.tif",
                                 OnnxParams(str(onnx_path))), repeat=1)
        rates[name] = mpx / t_fuse
        ratios[name] = t_ort * padded.shape[2] * padded.shape[3] / (size * size) / t_fuse
        whole_gflops = passes * per_pixel * padded.shape[2] * padded.shape[3] / t_ort / 1e9
        tiled_gflops = passes * per_pixel * size * size / t_fuse / 1e9
        print(f"{name:8} {per_pixel / 1e3:9.0f} {t_torch:8.2f} {t_ort:12.2f} {t_ort / t_torch:10.2f} "
              f"{whole_gflops:8.1f} {whole_gflops / peak:7.0%} {t_fuse:13.2f} {rates[name]:6.2f} {tiled_gflops:8.1f} "
              f"{tiled_gflops / peak:7.0%} {ratios[name]:12.0%} {t_default:16.2f}")
    fastest = max(rates, key=rates.get)
    print(f"fastest: {fastest} at {rates[fastest]:.2f} Mpx/s (target ≥ 0.5 on 2 cores)")
    print("MLFF-GAN's ONNX runs include its scene-statistics pass (a first pass for the moments), torch's "
          "whole image takes its own statistics in one pass.")
    print(f"tiled fusion / ORT whole-image throughput: {', '.join(f'{n} {r:.0%}' for n, r in ratios.items())} "
          f"(target ≥ 80 %; the fusion reads and writes GeoTIFFs, the whole-image run does not)")


LARGE = """
import sys, time
sys.path.insert(0, {repo!r})
from backend.fusion.fuse import fuse
from backend.fusion.onnx_model import OnnxParams
start = time.perf_counter()
r = fuse("onnx", [({f1!r}, {c1!r})], {c2!r}, {out!r}, OnnxParams({model!r}))
# VmHWM: this process's own peak. ru_maxrss would also count the parent's memory at fork time,
# which Linux carries across exec into the child's maximum.
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(f"{{time.perf_counter() - start:.1f}} {{hwm / 2**20:.2f}} {{r.valid_fraction:.4f}}")
"""


def large(folder: Path, size: int) -> None:
    onnx_path, _ = export("sttfn", folder)
    start = time.perf_counter()
    f1, c1, c2 = write_inputs(folder, size, seed=1)
    print(f"\n{size:,} × {size:,} px inputs written in {time.perf_counter() - start:.0f} s")
    code = LARGE.format(repo=str(REPO), f1=str(f1), c1=str(c1), c2=str(c2), out=str(folder / "large_out.tif"),
                        model=str(onnx_path))
    # GDAL keeps written and read blocks in its cache, by default up to 5 % of the RAM (QGIS has its
    # own setting): the figure below is the fusion's own memory with that cache at 256 MB.
    env = {**os.environ, "GDAL_CACHEMAX": os.environ.get("GDAL_CACHEMAX", "256")}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if run.returncode:
        print(run.stderr[-2000:])
        raise SystemExit(1)
    seconds, peak, valid = run.stdout.split()[-3:]
    print(f"STTFN ONNX fusion of {size * size / 1e6:.0f} Mpx (GDAL_CACHEMAX={env['GDAL_CACHEMAX']} MB): "
          f"{float(seconds):.0f} s "
          f"({size * size / 1e6 / float(seconds):.2f} Mpx/s), peak memory {float(peak):.2f} GB (target < 1.5), "
          f"valid {float(valid):.2%}")


def series(folder: Path) -> None:
    from distributed import LocalCluster

    from backend.fusion.params import StarfmParams
    from backend.fusion.series import fuse_series

    size, dates = 400, 21
    fine, coarse = [], []
    rng = np.random.default_rng(3)
    base = 295 + 4 * gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), 5)
    profile = dict(driver="GTiff", width=size, height=size, count=1, dtype="float32", crs="EPSG:32631",
                   transform=Affine(30, 0, 400000, 0, -30, 5300000), tiled=True, nodata=np.nan)
    for k in range(dates):
        day = dt.date(2020, 5, 1) + dt.timedelta(days=4 * k)
        c = folder / "series" / "modis" / f"modis_{day:%Y%m%d}.tif"
        c.parent.mkdir(parents=True, exist_ok=True)
        with rasterio.open(c, "w", **profile) as dst:
            dst.write((base + 0.3 * k - 1).astype(np.float32), 1)
            dst.update_tags(LST_UNIT="K", SENSOR="modis")
        coarse.append(str(c))
        if k == 0:
            f = folder / "series" / f"landsat_{day:%Y%m%d}.tif"
            with rasterio.open(f, "w", **profile) as dst:
                dst.write((base + gaussian_filter(rng.standard_normal((size, size)), 1)).astype(np.float32), 1)
                dst.update_tags(LST_UNIT="K", SENSOR="landsat")
            fine.append(str(f))
    params = StarfmParams(window=31)
    env = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    os.environ.update(env)  # one thread per worker: the cluster, not numba, provides the parallelism
    timings = {}
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=40) as cluster:
            fuse_series("starfm", fine, coarse[:2], folder / f"warm{workers}", params,
                        scheduler=cluster.scheduler_address)  # compile and import on the workers first
            start = time.perf_counter()
            result = fuse_series("starfm", fine, coarse, folder / f"out{workers}", params,
                                 scheduler=cluster.scheduler_address)
            timings[workers] = time.perf_counter() - start
        print(f"{len(result.outputs)} dates of {size} × {size} px, STARFM, {workers} worker(s): "
              f"{timings[workers]:.1f} s")
    print(f"speed-up with 2 workers: {timings[1] / timings[2]:.2f}× (target ≥ 1.7× with ≥ 2 free cores; "
          f"this machine has {CORES})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-models", action="store_true")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--skip-series", action="store_true")
    parser.add_argument("--large-size", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_onnx_") as tmp:
        folder = Path(tmp)
        if not args.skip_models:
            models_table(folder)
        if not args.skip_series:
            series(folder)
        if not args.skip_large:
            large(folder, args.large_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
