"""Adapting the shipped network to a season: RMSE of the adapted and the unadapted model on later dates.

For each seeded sample season (the climates of bench/bench_lst_options.py), the shipped STTFN
is adapted on the pairs of the first part of the season (the later dates left out, as a user
adapts before predicting), then both models fuse every later Landsat date from its nearest other pair
(as Fuse time series with INCLUDE_PAIRED and DATES = the later dates; default options) and are scored
against the generator's truth. Prints, per season, the adaptation's time and device, both
validation errors from the card, and the mean RMSE on the held-out dates of the unadapted model,
the adapted one and resampled MODIS, with the per-date table.

    .venv/bin/python bench/bench_adapt.py [--size 300] [--minutes 10] [--seasons temperate:5:16 ...]
        [--device auto] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_lst_options import QUIET, SEASONS, prepare  # noqa: E402

from backend.fusion.fuse import fuse  # noqa: E402
from backend.fusion.onnx_model import OnnxParams, shipped_models  # noqa: E402
from backend.fusion.series import plan_series  # noqa: E402
from backend.io.pairs import pair_by_date  # noqa: E402
from backend.io.readers import read_lst  # noqa: E402
from backend.io.series import load_series  # noqa: E402
from backend.training.adapt import AdaptParams, adapt_model  # noqa: E402

HELD_OUT = 0.3  # the latest share of the Landsat dates, predicted and never adapted on


def rmse(path, truth) -> float:
    import numpy as np

    d = read_lst(path).data - read_lst(truth).data
    return float(np.sqrt(np.nanmean(d * d)))


def season(root: Path, size: int, dates: int, seed: int, climate: str, adapt: AdaptParams) -> dict:
    if not (root / "modis30").is_dir():  # a kept season is reused
        prepare(root, size, dates, seed, climate)
    manifest = json.loads((root / "sample" / "manifest.json").read_text())
    truth = {r["date"]: root / "sample" / r["truth"] for r in manifest["dates"]}
    days = sorted(truth)
    held = days[-max(1, round(HELD_OUT * len(days))):]
    shipped = OnnxParams(shipped=shipped_models()[0])
    start = time.perf_counter()
    left_out = [dt.date.fromisoformat(d) for d in held]
    adapted = adapt_model([root / "landsat"], [root / "modis30"], root / "adapted.onnx",
                          replace(adapt, shipped=shipped.shipped, exclude_dates=left_out), progress=QUIET)
    seconds = time.perf_counter() - start
    # Each held-out date from its nearest other pair, as Fuse time series chooses (fuse() per date: no VRT stack,
    # so the bench also runs where GDAL's Python bindings are missing).
    fine, coarse = load_series([root / "landsat"]), load_series([root / "modis30"])
    tasks, _ = plan_series(pair_by_date(fine, coarse, 0), coarse, 1, [dt.date.fromisoformat(d) for d in held],
                           include_paired=True)
    scores = {}
    for label, params in (("unadapted", shipped), ("adapted", OnnxParams(model=str(adapted.model)))):
        scores[label] = {}
        for task in tasks:
            out = fuse("onnx", [(p.fine.path, p.coarse.path) for p in task.pairs], task.target.path,
                       root / label / f"{task.target.date}.tif", params, progress=QUIET)
            scores[label][str(task.target.date)] = rmse(out.path, truth[str(task.target.date)])
    scores["MODIS (resampled)"] = {d: rmse(next((root / "modis30").glob(f"*_{d.replace('-', '')}_*.tif")), truth[d])
                                   for d in held}
    result = json.loads(json.dumps(adapted.__dict__, default=str))
    return {"season": f"{climate} seed {seed}", "seconds": seconds, "held": held, "scores": scores, "result": result}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seasons", nargs="+", default=list(SEASONS))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--learning-rate", type=float, default=AdaptParams().learning_rate)
    parser.add_argument("--level-shift", type=float, default=AdaptParams().level_shift_k)
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    import torch

    hardware = torch.cuda.get_device_name(0) if torch.cuda.is_available() and args.device != "cpu" else \
        f"CPU ({torch.get_num_threads()} threads)"
    print(f"Adaptation of the shipped {shipped_models()[0]} with a {args.minutes:g}-minute budget on {hardware} "
          f"(learning rate {args.learning_rate:g}, level shift ±{args.level_shift:g} K), "
          f"{args.size}² px seasons; the latest {HELD_OUT:.0%} of each season's Landsat dates held out")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_adapt_") as tmp:
        for text in args.seasons:
            climate, seed, dates = text.split(":")
            root = (args.keep or Path(tmp)) / f"{climate}_{seed}"
            adapt = AdaptParams(minutes=args.minutes, device=args.device, learning_rate=args.learning_rate,
                                level_shift_k=args.level_shift)
            row = season(root, args.size, int(dates), int(seed), climate, adapt)
            rows.append(row)
            mean = {k: sum(v.values()) / len(v) for k, v in row["scores"].items()}
            r = row["result"]
            print(f"\n{row['season']}: adapted in {row['seconds'] / 60:.1f} min ({r['epochs']} epoch(s)); validation "
                  f"RMSE {r['base_rmse_k']:.2f} → {r['rmse_k']:.2f} K; held-out dates, mean RMSE: unadapted "
                  f"{mean['unadapted']:.2f} K, adapted {mean['adapted']:.2f} K, resampled MODIS "
                  f"{mean['MODIS (resampled)']:.2f} K -> adapted "
                  f"{'better' if mean['adapted'] < mean['unadapted'] else 'NOT better'}")
            for day in row["held"]:
                print(f"  {day}  " + "  ".join(f"{k} {v[day]:.2f}" for k, v in row["scores"].items()))
    if args.json:
        args.json.write_text(json.dumps({"hardware": hardware, "arguments": {k: str(v) for k, v in vars(args).items()},
                                         "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
