"""LST-specific fusion options, with and without: RMSE, bias and unbiased RMSE, difficult dates apart.

Generates a seeded sample season with difficult dates (heat waves, cold spells, fields
switching state, MODIS disagreeing with Landsat), gap-fills and resamples it, fuses every
Landsat date from the others (leave-one-out) with STARFM, ESTARFM and the shipped STTFN,
each with and without the coarse-consistency correction, and scores everything against the
generator's truth with the evaluation stage (baselines included). Prints the table; the
per-date numbers are in the evaluation's metrics.json under the work folder.

    .venv/bin/python bench/bench_lst_options.py [--size 300] [--dates 14] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend.evaluation.evaluate import evaluate  # noqa: E402
from backend.fusion.onnx_model import OnnxParams, shipped_models  # noqa: E402
from backend.fusion.params import EstarfmParams, StarfmParams  # noqa: E402
from backend.fusion.series import fuse_series  # noqa: E402
from backend.preprocess.gapfill import gap_fill_series  # noqa: E402
from backend.preprocess.resample import reference_grid, resample_series  # noqa: E402
from backend.preprocess.sample_data import SampleSpec, generate_sample_dataset  # noqa: E402
from backend.progress import Progress  # noqa: E402

QUIET = Progress(on_warning=lambda message: None)
METHODS = {
    "STARFM": ("starfm", StarfmParams),
    "ESTARFM": ("estarfm", EstarfmParams),
    "STTFN (shipped)": ("onnx", lambda **k: OnnxParams(shipped=shipped_models()[0], **k)),
}


def prepare(root: Path, size: int, dates: int, seed: int) -> None:
    spec = SampleSpec(width=size, height=size, n_dates=dates, start=dt.date(2019, 3, 1), end=dt.date(2020, 10, 30),
                      cloudiness=0.3, seed=seed, difficult_fraction=0.4)
    generate_sample_dataset(root / "sample", spec)
    gap_fill_series([root / "sample"], root / "landsat", sensor="landsat", fill_never_observed=True, progress=QUIET)
    gap_fill_series([root / "sample"], root / "modis", sensor="modis", fill_never_observed=True, progress=QUIET)
    resample_series([root / "modis"], root / "modis30", reference_grid(root / "landsat"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--dates", type=int, default=14)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_options_") as tmp:
        root = args.keep or Path(tmp)
        start = time.perf_counter()
        prepare(root, args.size, args.dates, args.seed)
        print(f"sample season {args.size}² px, {args.dates} dates, gap-filled and resampled in "
              f"{time.perf_counter() - start:.0f} s")
        folders, labels = [], []
        for label, (method, make) in METHODS.items():
            for on in (False, True):
                name = f"{label}{' + consistency' if on else ''}"
                out = root / name.replace(" ", "_").replace("(", "").replace(")", "").replace("+", "and")
                t = time.perf_counter()
                fuse_series(method, [root / "landsat"], [root / "modis30"], out, make(coarse_consistency=on),
                            include_paired=True, progress=QUIET)
                print(f"  {name:34s} fused in {time.perf_counter() - t:5.1f} s")
                folders.append(out)
                labels.append(name)
        result = evaluate(folders, [root / "sample" / "truth"], root / "evaluation", coarse=[root / "modis30"],
                          fine_series=[root / "landsat"], labels=labels, progress=QUIET)
        summary = result.summary
        kinds = {d["date"]: d["why"].split(":")[0].split("; ")[-1] for d in result.dates if d["difficult"]}
        print(f"\nMeans over the {summary['common_dates']} dates every entry has "
              f"({sum(1 for d in result.dates if d['difficult'])} difficult):")
        print(f"{'':34s} {'RMSE':>6s} {'bias':>6s} {'ubRMSE':>7s} | {'difficult RMSE':>14s} | {'other RMSE':>10s}")
        for label, row in summary["all"].items():
            hard = summary["difficult"].get(label, {}).get("rmse", float("nan"))
            other = summary["other"].get(label, {}).get("rmse", float("nan"))
            print(f"{label:34s} {row['rmse']:6.2f} {row['bias']:+6.2f} {row['ubrmse']:7.2f} | {hard:14.2f} | "
                  f"{other:10.2f}")
        print("\nRMSE by declared event (dates the sample generator made difficult):")
        events = sorted({k for k in kinds.values() if not k.startswith("change")})
        print(f"{'':34s} " + " ".join(f"{e[:12]:>12s}" for e in events))
        for label in summary["all"]:
            cells = []
            for event in events:
                values = [r["rmse"] for r in result_rows(result) if r["label"] == label and
                          kinds.get(r["date"], "").startswith(event)]
                cells.append(f"{sum(values) / len(values):12.2f}" if values else f"{'–':>12s}")
            print(f"{label:34s} " + " ".join(cells))
        print(f"\nreport: {result.html if args.keep else '(kept with --keep DIR)'}")
    return 0


def result_rows(result) -> list[dict]:
    import json

    return json.loads(result.json.read_text())["results"]


if __name__ == "__main__":
    sys.exit(main())
