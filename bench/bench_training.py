#!/usr/bin/env python3
"""Benchmark: training throughput (patches/s, 95 × 95 patches) of each model, and inference time of
torch eager vs ONNX Runtime on a 950 × 950 scene (ratio printed).

Runs on the CPU here; on a machine with CUDA it also measures training there.
Run: .venv/bin/python bench/bench_training.py [--steps N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.training.onnx_export import export_onnx  # noqa: E402
from backend.training.train import TrainConfig, _Trainer  # noqa: E402
from models import registry  # noqa: E402
from models.card import ModelCard  # noqa: E402
from models.contract import KelvinModel, Normalise, PaddedModel, padding  # noqa: E402

STATS = {"fine": {"mean": 295.0, "std": 6.0}, "coarse": {"mean": 294.0, "std": 4.0}}


def throughput(name: str, device: torch.device, steps: int, batch: int = 8) -> float:
    torch.manual_seed(0)
    trainer = _Trainer(registry.get(name), 1, TrainConfig(model=name), device)
    x = torch.randn(batch, trainer.contract.channels, 95, 95, device=device)
    y, m = x[:, 1:2].clone(), torch.ones(batch, 1, 95, 95, device=device)
    trainer.step(x, y, m)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step(x, y, m)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def inference(name: str, size: int, repeats: int) -> tuple[float, float]:
    import onnxruntime as ort

    spec = registry.get(name)
    contract = spec.contract(1)
    network = spec.build(1).eval()
    kelvin = KelvinModel(network, Normalise(contract, STATS)).eval()
    card = ModelCard(model=name, title=spec.title, paper=spec.paper, model_version=spec.version,
                     package_version="bench", roles=contract.roles, size_multiple=contract.size_multiple,
                     units="K", normalisation=STATS, parameters=registry.parameter_count(network))
    ph, pw = padding(size, size, contract.size_multiple)
    x = (295 + 5 * np.random.default_rng(0).standard_normal((1, contract.channels, size + ph, size + pw)))
    x = x.astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(kelvin, card, Path(tmp) / "m.onnx")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        session.run(None, {"inputs": x})
        start = time.perf_counter()
        for _ in range(repeats):
            session.run(None, {"inputs": x})
        t_ort = (time.perf_counter() - start) / repeats
    padded_model = KelvinModel(PaddedModel(network, contract), Normalise(contract, STATS)).eval()
    tx = torch.from_numpy(x)
    with torch.no_grad():
        padded_model(tx)
        start = time.perf_counter()
        for _ in range(repeats):
            padded_model(tx)
        t_torch = (time.perf_counter() - start) / repeats
    return t_torch, t_ort


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--size", type=int, default=950)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", CUDA: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no CUDA device"))
    for name in registry.MODELS:
        for device in devices:
            rate = throughput(name, device, args.steps if device.type == "cpu" else 10 * args.steps)
            print(f"{registry.get(name).title:9s} training on {device.type}: {rate:8.1f} patches/s (95x95, batch 8)")
        t_torch, t_ort = inference(name, args.size, args.repeats)
        print(f"{registry.get(name).title:9s} inference {args.size}x{args.size} on CPU: torch eager {t_torch:.2f} s, "
              f"ONNX Runtime {t_ort:.2f} s, ratio {t_torch / t_ort:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
