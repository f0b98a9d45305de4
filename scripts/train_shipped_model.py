"""Reproduce the pretrained model shipped in models/shipped/ (seeded; the same backend calls as the plugin).

    .venv/bin/python scripts/train_shipped_model.py            # the shipped model (about half an hour on 2 CPU cores)
    .venv/bin/python scripts/train_shipped_model.py --quick    # a small smoke run of the same recipe

Recipe: the sample generator's Orléans-like scene (synthetic: no real place's temperatures),
gap-filled Landsat and MODIS on the Landsat grid, 64 px patches, STTFN with one reference
pair, trained with a random level shift of up to ±15 K so that it learns the change from its
reference rather than the training region's absolute temperatures. It then measures, on the
held-out test dates against the generator's truth, the RMSE of the model, of resampled MODIS
and of the model with every input shifted by +8 K (a transfer check: a model that learned
absolute levels fails it), writes those into the embedded model card, and copies the ONNX file
to models/shipped/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NAME = "sttfn_synthetic_orleans"


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.sqrt(np.mean((a[ok] - b[ok]) ** 2)))


def evaluate(onnx_path: Path, root: Path, manifest: dict, test_dates: list[str]) -> dict:
    """RMSE on the test dates against the truth: the model, resampled MODIS, the model with +8 K inputs."""
    import onnxruntime as ort

    from backend.fusion.onnx_model import OnnxState, model_card, predict, providers, session_options
    from backend.io.readers import read_lst

    state = OnnxState(model_card(onnx_path), ort.InferenceSession(str(onnx_path), session_options(),
                                                                  providers=providers()), "", "")
    pairs = {p["date"]: p for p in manifest["pairs"]}
    dates = sorted(pairs)
    truth = {d["date"]: root / "sample" / d["truth"] for d in json.loads(
        (root / "sample" / "manifest.json").read_text())["dates"]}
    rows = []
    for date in test_dates:
        ref = max(d for d in dates if d < date)
        arrays = {"fine_t1": read_lst(pairs[ref]["fine"]).data, "coarse_t1": read_lst(pairs[ref]["coarse"]).data,
                  "coarse_t2": read_lst(pairs[date]["coarse"]).data}
        true = read_lst(truth[date]).data
        pred = predict(arrays, state)
        shifted = predict({k: v + 8.0 for k, v in arrays.items()}, state) - 8.0
        rows.append({"date": date, "reference": ref, "rmse_k": _rmse(pred, true),
                     "modis_rmse_k": _rmse(arrays["coarse_t2"], true), "shifted_8k_rmse_k": _rmse(shifted, true)})
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("rmse_k", "modis_rmse_k", "shifted_8k_rmse_k")}
    return {"test_dates": rows, "mean": mean}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=REPO / "build" / "shipped_model")
    parser.add_argument("--size", type=int, default=800)
    parser.add_argument("--dates", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--max-batches", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="a small smoke run (not the shipped model)")
    parser.add_argument("--install", action="store_true", help="copy the result to models/shipped/")
    args = parser.parse_args()
    if args.quick:
        args.size, args.dates, args.epochs, args.max_batches = 160, 6, 2, 5

    import onnx

    from backend.io.outputs import fresh_scratch_folder
    from backend.preprocess.patches import build_patch_dataset
    from backend.preprocess.sample_data import SampleSpec
    from backend.preprocess.sample_season import prepare_sample_season
    from backend.progress import Progress
    from backend.training.onnx_export import set_card
    from backend.training.train import TrainConfig, train
    from models.card import CARD_KEY, ModelCard

    root = fresh_scratch_folder(args.work)
    started = time.time()
    spec = SampleSpec(width=args.size, height=args.size, n_dates=args.dates, start=dt.date(2018, 3, 1),
                      end=dt.date(2020, 10, 31), cloudiness=0.25, seed=2024,
                      difficult_fraction=0.0)  # the shipped model was trained before difficult dates existed
    prepare_sample_season(root, spec)
    build_patch_dataset([root / "landsat"], [root / "modis30"], root / "patches", patch_size=64, stride=32,
                        test_fraction=0.15, val_fraction=0.15, seed=0)
    prepared = time.time()
    notes = (f"Trained on SYNTHETIC data from LST Fusion's sample generator (Orléans-like scene, "
             f"{args.size}×{args.size} px at 30 m, {args.dates} dates 2018-2020, seed 2024), not on real "
             "observations; level-shift augmentation ±15 K. Reproduce with scripts/train_shipped_model.py.")
    config = TrainConfig(model="sttfn", epochs=args.epochs, batch_size=16, cloud_aware=True, seed=0,
                         patience=4, max_batches=args.max_batches, level_shift_k=15.0, notes=notes)
    result = train(root / "patches", root / "training", config,
                   progress=Progress(on_message=lambda m: print(m, flush=True)))
    trained = time.time()
    manifest = json.loads((root / "patches" / "manifest.json").read_text())
    test_dates = sorted({t["target"] for t in manifest["triplets"] if t["split"] == "test"})
    metrics = evaluate(result.onnx, root, manifest, test_dates)
    proto = onnx.load(str(result.onnx))
    props = {e.key: e for e in proto.metadata_props}
    card = json.loads(props[CARD_KEY].value)
    card["validation"]["test"] = metrics
    card["training"]["hardware"] = "CPU (2 cores)" if not __import__("torch").cuda.is_available() else "CUDA GPU"
    card["training"]["minutes"] = {"data": round((prepared - started) / 60, 1),
                                   "training": round((trained - prepared) / 60, 1)}
    card_text = json.dumps(card, sort_keys=True)
    ModelCard.from_json(card_text)
    set_card(proto, card_text)  # the checksum covers the card: sealed again with the test metrics
    out = root / f"{NAME}.onnx"
    onnx.save(proto, str(out))
    print(json.dumps(metrics["mean"], indent=2))
    print(f"{out}: {out.stat().st_size / 2**20:.2f} MiB; data {card['training']['minutes']['data']} min, "
          f"training {card['training']['minutes']['training']} min")
    if args.install:
        target = REPO / "models" / "shipped" / out.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out, target)
        print(f"installed {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
