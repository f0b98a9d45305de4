"""Every fusion method and LST option side by side, on seasons of two climates: RMSE, bias, ubRMSE.

Generates seeded sample seasons with difficult dates (heat waves, cold spells, fields
switching state, MODIS disagreeing with Landsat) — by default two humid temperate
(Orléans-like) and one semi-arid irrigated (Riverina-like, southern hemisphere) season of
16-20 dates — gap-fills and resamples each, fuses every Landsat date from the others
(leave-one-out) with STARFM, ESTARFM, the shipped STTFN and the season regression, each plain
and with each option (coarse consistency, sensor-bias correction at Landsat's or MODIS's
level, and consistency with the Landsat-level bias correction), and scores everything
against the generator's truth with the evaluation stage (baselines included). Prints the
tables and, per method, the combination the defaults rule picks: the lowest RMSE overall
among those whose error on every kind of difficult date is no worse than resampled MODIS's;
the recommended method is the best of those picks, checked against the targets (≤ 0.65 ×
resampled MODIS's RMSE, ≤ 0.85 × plain ESTARFM's) with its per-date table. The per-date
numbers of every entry are in each evaluation's metrics.json under the work folder.

    .venv/bin/python bench/bench_lst_options.py [--size 300] [--seasons temperate:5:16 ...] [--keep DIR]
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

from backend.evaluation.evaluate import MODIS_BASELINE, PERSISTENCE, evaluate  # noqa: E402
from backend.fusion.onnx_model import OnnxParams, shipped_models  # noqa: E402
from backend.fusion.params import EstarfmParams, SeasonParams, StarfmParams  # noqa: E402
from backend.fusion.series import fuse_series  # noqa: E402
from backend.preprocess.gapfill import gap_fill_series  # noqa: E402
from backend.preprocess.sample_data import SampleSpec  # noqa: E402
from backend.preprocess.sample_season import prepare_sample_season  # noqa: E402
from backend.progress import Progress  # noqa: E402

QUIET = Progress(on_warning=lambda message: None)
PLAIN = {"coarse_consistency": False, "sensor_bias": "none"}  # every option spelled out: defaults vary by method
OPTIONS = {
    "": PLAIN,
    " + consistency": {**PLAIN, "coarse_consistency": True},
    " + bias (Landsat level)": {**PLAIN, "sensor_bias": "landsat"},
    " + bias (MODIS level)": {**PLAIN, "sensor_bias": "modis"},
    " + consistency + bias (Landsat)": {"coarse_consistency": True, "sensor_bias": "landsat"},
}
METHODS = {
    "STARFM": ("starfm", StarfmParams),
    "ESTARFM": ("estarfm", EstarfmParams),
    "STTFN (shipped)": ("onnx", lambda **k: OnnxParams(shipped=shipped_models()[0], **k)),
    "Season regression": ("season", SeasonParams),
}
PLACES = {  # where each climate's seasons are generated: its hemisphere sets the calendar
    "temperate": {},
    "semi_arid": {"crs": "EPSG:32755", "center_lon": 146.1, "center_lat": -34.95, "wrs_path_row": "093084"},
}
SEASONS = ("temperate:5:16", "temperate:11:20", "semi_arid:7:16")


def prepare(root: Path, size: int, dates: int, seed: int, climate: str = "temperate") -> None:
    spec = SampleSpec(width=size, height=size, n_dates=dates, start=dt.date(2019, 3, 1), end=dt.date(2020, 10, 30),
                      cloudiness=0.3, seed=seed, difficult_fraction=0.4, climate=climate, **PLACES[climate])
    prepare_sample_season(root, spec, QUIET)


def gap_fill_methods(root: Path) -> dict[str, float]:
    """Filled-pixel RMSE (K) against the truth of each gap-fill method on the season's Landsat dates."""
    import json

    import numpy as np
    import rasterio

    from backend.io.fill_flags import NODATA, OBSERVED
    from backend.io.readers import read_lst
    from backend.preprocess.gapfill import METHODS as FILLS

    manifest = json.loads((root / "sample" / "manifest.json").read_text())
    truth = {rec["date"]: root / "sample" / rec["truth"] for rec in manifest["dates"]}
    scores = {}
    for method in FILLS:
        out = root / f"gapfill_{method}"
        guide = [root / "modis30"] if method == "modis_guided" else None
        report = json.loads(gap_fill_series([root / "sample"], out, method=method, sensor="landsat", guide=guide,
                                            fill_never_observed=True, progress=QUIET).report.read_text())
        errors = []
        for d in report["dates"]:
            with rasterio.open(out / d["flags"]) as src:
                filled = ~np.isin(src.read(1), (OBSERVED, NODATA))
            errors.append((read_lst(out / d["output"]).data - read_lst(truth[d["date"]]).data)[filled])
        values = np.concatenate(errors)
        values = values[np.isfinite(values)]
        scores[method] = float(np.sqrt(np.mean(values ** 2))) if values.size else float("nan")
    return scores


def season(root: Path, size: int, dates: int, seed: int, climate: str) -> tuple[dict, dict, list[str], list[dict]]:
    """One sample season fused with every method and option: (summary, RMSE by event, events, per-date rows);
    prints its tables."""
    start = time.perf_counter()
    prepare(root, size, dates, seed, climate)
    print(f"\n=== {climate} sample season {size}² px, {dates} dates, seed {seed}: gap-filled and resampled in "
          f"{time.perf_counter() - start:.0f} s")
    fills = gap_fill_methods(root)
    print("Gap-fill, filled-pixel RMSE against the truth (Landsat): "
          + ", ".join(f"{method} {rmse:.2f} K" if rmse == rmse else f"{method}: nothing filled"
                      for method, rmse in fills.items()))
    folders, labels = [], []
    for label, (method, make) in METHODS.items():
        for suffix, options in OPTIONS.items():
            name = f"{label}{suffix}"
            out = root / "".join(c if c.isalnum() else "_" for c in name)
            t = time.perf_counter()
            fuse_series(method, [root / "landsat"], [root / "modis30"], out, make(**options),
                        include_paired=True, progress=QUIET)
            print(f"  {name:46s} fused in {time.perf_counter() - t:5.1f} s")
            folders.append(out)
            labels.append(name)
    result = evaluate(folders, [root / "sample" / "truth"], root / "evaluation", coarse=[root / "modis30"],
                      fine_series=[root / "landsat"], labels=labels, progress=QUIET)
    summary = result.summary
    kinds = {d["date"]: d["why"].split(":")[0].split("; ")[-1] for d in result.dates if d["difficult"]}
    print(f"\nMeans over the {summary['common_dates']} dates every entry has "
          f"({sum(1 for d in result.dates if d['difficult'])} difficult):")
    print(f"{'':46s} {'RMSE':>6s} {'bias':>6s} {'ubRMSE':>7s} | {'difficult RMSE':>14s} | {'other RMSE':>10s}")
    for label, row in summary["all"].items():
        hard = summary["difficult"].get(label, {}).get("rmse", float("nan"))
        other = summary["other"].get(label, {}).get("rmse", float("nan"))
        print(f"{label:46s} {row['rmse']:6.2f} {row['bias']:+6.2f} {row['ubrmse']:7.2f} | {hard:14.2f} | "
              f"{other:10.2f}")
    print("\nRMSE by declared event (dates the sample generator made difficult):")
    events = sorted({k for k in kinds.values() if not k.startswith("change")})
    print(f"{'':46s} " + " ".join(f"{e[:12]:>12s}" for e in events))
    by_event = {}
    rows = result_rows(result)
    for label in summary["all"]:
        cells = []
        for event in events:
            values = [r["rmse"] for r in rows if r["label"] == label and kinds.get(r["date"], "").startswith(event)]
            by_event[label, event] = sum(values) / len(values) if values else float("nan")
            cells.append(f"{by_event[label, event]:12.2f}" if values else f"{'–':>12s}")
        print(f"{label:46s} " + " ".join(cells))
    return summary, by_event, events, [{**r, "season": f"{climate} seed {seed}", "why": kinds.get(r["date"], "")}
                                       for r in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--seasons", nargs="+", default=list(SEASONS), help="climate:seed:dates, one per season")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    seasons = []
    with tempfile.TemporaryDirectory(prefix="bench_options_") as tmp:
        for text in args.seasons:
            climate, seed, dates = text.split(":")
            root = (args.keep or Path(tmp)) / f"{climate}_{seed}"
            seasons.append(season(root, args.size, int(dates), int(seed), climate))
    events = sorted({e for _, _, evs, _ in seasons for e in evs})

    def pooled(label: str, event: str | None = None) -> float:
        """The mean over seasons of a label's RMSE (overall, or on one kind of difficult date)."""
        values = [summary["all"][label]["rmse"] if event is None else by_event.get((label, event), float("nan"))
                  for summary, by_event, _, _ in seasons]
        values = [v for v in values if v == v]
        return sum(values) / len(values) if values else float("nan")

    print(f"\nDefaults rule over the {len(seasons)} season(s): the lowest mean RMSE among the combinations whose "
          "mean RMSE on every kind of difficult date is no worse than MODIS (resampled):")
    picks = {}
    for method in METHODS:
        candidates = [(pooled(f"{method}{suffix}"), suffix) for suffix in OPTIONS]
        allowed = [(rmse, suffix) for rmse, suffix in candidates
                   if all(not pooled(f"{method}{suffix}", e) > pooled(MODIS_BASELINE, e) for e in events)]
        print(f"  {method:18s} " + ", ".join(f"{suffix.lstrip(' +') or 'plain'} {rmse:.2f}"
                                             for rmse, suffix in candidates))
        pick = min(allowed) if allowed else None
        if pick:
            picks[method] = pick
        print(f"  {'':18s} -> {(pick[1].lstrip(' +') or 'no option') if pick else 'none qualifies'}; the "
              f"product's default: {current_default(METHODS[method][1]).lstrip(' +') or 'no option'}")
    recommend(picks, pooled, events, seasons)
    return 0


def recommend(picks: dict, pooled, events: list[str], seasons: list) -> None:
    """The recommended method (the best pick), its ratios to the targets, and its per-date table."""
    if not picks:
        print("\nNo method qualifies under the defaults rule.")
        return
    method, (rmse, suffix) = min(picks.items(), key=lambda item: item[1][0])
    label = f"{method}{suffix}"
    modis, estarfm = pooled(MODIS_BASELINE), pooled("ESTARFM")
    print(f"\nRecommended: {label} — mean RMSE {rmse:.2f} K = {rmse / modis:.2f} × resampled MODIS "
          f"({modis:.2f} K; target ≤ 0.65) and {rmse / estarfm:.2f} × plain ESTARFM ({estarfm:.2f} K; target ≤ 0.85)")
    print("  on each kind of difficult date (mean RMSE, K): "
          + ", ".join(f"{e} {pooled(label, e):.2f} vs MODIS {pooled(MODIS_BASELINE, e):.2f}" for e in events))
    print(f"\nPer date (RMSE, K): {label} | plain ESTARFM | resampled MODIS | persistence (last Landsat)")
    for _, _, _, rows in seasons:
        by = {(r["date"], r["label"]): r for r in rows}
        for day in sorted({r["date"] for r in rows}):
            cells = [by.get((day, name), {}).get("rmse", float("nan"))
                     for name in (label, "ESTARFM", MODIS_BASELINE, PERSISTENCE)]
            why = next((r["why"] for r in rows if r["date"] == day and r["why"]), "")
            print(f"  {rows[0]['season']:22s} {day} " + " ".join(f"{c:6.2f}" for c in cells) + f"  {why}")


def current_default(make) -> str:
    """The OPTIONS entry the method's parameter dataclass defaults to."""
    defaults = make()
    for suffix, options in OPTIONS.items():
        if all(getattr(defaults, k) == v for k, v in options.items()):
            return suffix
    return " (another combination)"


def result_rows(result) -> list[dict]:
    import json

    return json.loads(result.json.read_text())["results"]


if __name__ == "__main__":
    sys.exit(main())
