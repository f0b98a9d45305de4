"""Calibrate the per-pixel uncertainty of each fusion method on the sample data's truth, and check it.

Fits σ² = a² + (b·|ΔC|)² + (c·h)² (backend/fusion/uncertainty.py) to the squared errors of
leave-one-out predictions of two seeded seasons, one dense (16 dates) and one sparse (8 dates)
(non-negative least squares), scales it so that |error| ≤ σ holds for 68 % of their pixels,
then reports the coverage on a season of another seed and density (12 dates).
Prints each method's coefficients, to keep as ``uncertainty=`` on its entry in backend/fusion/methods.py.

    .venv/bin/python bench/bench_uncertainty.py [--size 300] [--dates 16]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend.fusion.fuse import input_readers  # noqa: E402
from backend.fusion.inputs import load_fusion_inputs  # noqa: E402
from backend.fusion.onnx_model import OnnxParams, shipped_models  # noqa: E402
from backend.fusion.params import EstarfmParams, StarfmParams  # noqa: E402
from backend.fusion.series import fuse_series  # noqa: E402
from backend.fusion.uncertainty import features  # noqa: E402
from backend.io.readers import read_lst  # noqa: E402
from backend.preprocess.sample_data import SampleSpec  # noqa: E402
from backend.preprocess.sample_season import prepare_sample_season  # noqa: E402
from backend.progress import Progress  # noqa: E402

QUIET = Progress(on_warning=lambda message: None)
METHODS = {"starfm": StarfmParams(), "estarfm": EstarfmParams(),
           "onnx": OnnxParams(shipped=shipped_models()[0]) if shipped_models() else None}


def season(root: Path, size: int, dates: int, seed: int) -> None:
    spec = SampleSpec(width=size, height=size, n_dates=dates, start=dt.date(2019, 3, 1), end=dt.date(2020, 10, 30),
                      cloudiness=0.3, seed=seed)
    prepare_sample_season(root, spec, QUIET)


def samples(root: Path, method: str, params, rng, per_date: int = 20_000) -> tuple[np.ndarray, ...]:
    """(errors, |ΔC|, h) of leave-one-out predictions against the truth, subsampled per date."""
    out = root / f"fused_{method}"
    fuse_series(method, [root / "landsat"], [root / "modis30"], out, params, include_paired=True, progress=QUIET)
    report = json.loads((out / "fuse_series.json").read_text())
    fine = {read_lst(p).date: p for p in (root / "landsat").glob("*_filled.tif")}
    coarse = {read_lst(p).date: p for p in (root / "modis30").glob("*.tif")}
    truth = {read_lst(p).date: p for p in (root / "sample" / "truth").glob("LST_truth_*.tif")}
    errors, deltas, spreads = [], [], []
    for d in report["dates"]:
        day = dt.date.fromisoformat(d["target_date"])
        refs = [dt.date.fromisoformat(r) for r in d["reference_dates"]]
        inputs = load_fusion_inputs([(fine[r], coarse[r]) for r in refs], coarse[day], len(refs),
                                    bracket=len(refs) == 2)
        arrays = [read(None) for read in input_readers(inputs)]
        delta, spread = features(arrays)
        error = read_lst(out / d["path"]).data - read_lst(truth[day]).data
        ok = np.flatnonzero(np.isfinite(error) & np.isfinite(delta) & np.isfinite(spread))
        pick = rng.choice(ok, min(per_date, ok.size), replace=False)
        errors.append(error.ravel()[pick])
        deltas.append(delta.ravel()[pick])
        spreads.append(spread.ravel()[pick])
    return np.concatenate(errors), np.concatenate(deltas), np.concatenate(spreads)


def sigma(coefficients, delta, spread) -> np.ndarray:
    a, b, c = coefficients
    return np.sqrt(a * a + (b * delta) ** 2 + (c * spread) ** 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--dates", type=int, default=16)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    found = {}
    with tempfile.TemporaryDirectory(prefix="bench_uncertainty_") as tmp:
        fits = [(Path(tmp) / "fit_dense", args.dates, 21), (Path(tmp) / "fit_sparse", args.dates // 2, 23)]
        for root, dates, seed in fits:
            season(root, args.size, dates, seed)
        check_root = Path(tmp) / "check"
        season(check_root, args.size, (3 * args.dates) // 4, seed=22)
        for method, params in METHODS.items():
            if params is None:
                continue
            e, delta, spread = (np.concatenate(x) for x in zip(*(samples(root, method, params, rng)
                                                                   for root, _, _ in fits)))
            weights, _ = nnls(np.stack([np.ones_like(delta), delta ** 2, spread ** 2], axis=1), e ** 2)
            base = np.sqrt(weights)
            ratio = np.abs(e) / sigma(base, delta, spread)
            scale = float(np.quantile(ratio, 0.68))  # |e| ≤ σ for 68 % of the fitting pixels
            coefficients = tuple(round(float(x * scale), 3) for x in base)
            e2, delta2, spread2 = samples(check_root, method, params, rng)
            coverage = float(np.mean(np.abs(e2) <= sigma(coefficients, delta2, spread2)))
            two = float(np.mean(np.abs(e2) <= 2 * sigma(coefficients, delta2, spread2)))
            found[method] = coefficients
            print(f"{method:8s} a, b, c = {coefficients}: on another season |error| ≤ σ for {coverage:.1%} "
                  f"(target 68 %), ≤ 2σ for {two:.1%} (95 %); RMSE {np.sqrt(np.mean(e2 ** 2)):.2f} K")
    print("\nFor backend/fusion/methods.py:")
    for method, coefficients in found.items():
        print(f'    "{method}": uncertainty={coefficients},')
    return 0


if __name__ == "__main__":
    sys.exit(main())
