"""Diagnosis of region adaptation: which fine-tuning variant helps on a season, epoch by epoch.

bench/bench_adapt.py scores what 'Adapt a model to a season' ships; this bench asks why it
does or does not help. On one seeded sample season (the latest 30 % of its Landsat dates held
out, as in bench_adapt.py) it fine-tunes the shipped STTFN with one variant and prints after
every epoch:

- ``val``: the validation RMSE adaptation selects on (observed pixels of the validation patches);
- ``val corrected``: the same validation triplets on whole images with the coarse-consistency
  correction that Fuse applies by default, against their observed Landsat pixels;
- ``held``: the held-out dates fused from their nearest other pair with the correction (what
  Fuse time series produces with default options), against the generator's truth.

Variants (a JSON object): ``triplets`` "consecutive" (what adaptation builds) or "both" (every
pair within ``window`` days, before or after the target); ``lr``; ``shift`` (level-shift
augmentation, K); ``freeze`` "all_but_out" (only the output convolution learns); ``detail``
true (the loss sees only what the correction leaves to the network: the error minus its
MODIS-footprint average); ``l2sp`` (pull towards the base weights); ``per_epoch`` (patches).

    .venv/bin/python bench/bench_adapt_variants.py [--season semi_arid:7:16] [--size 300] [--epochs 4]
        [--variant '{"triplets": "both", "window": 100}'] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_lst_options import QUIET, prepare  # noqa: E402

from backend.fusion.consistency import residual, sigma_px  # noqa: E402
from backend.fusion.onnx_model import SHIPPED, shipped_models  # noqa: E402
from backend.fusion.series import plan_series  # noqa: E402
from backend.io.fill_flags import OBSERVED, flags_path_for  # noqa: E402
from backend.io.pairs import pair_by_date  # noqa: E402
from backend.io.readers import read_lst  # noqa: E402
from backend.io.series import load_series  # noqa: E402
from backend.preprocess import patches  # noqa: E402
from backend.training.adapt import onnx_weights  # noqa: E402
from backend.training.onnx_export import read_model_card  # noqa: E402
from backend.training.train import TrainConfig, _Batches, _evaluate, _seed_everything, _Trainer  # noqa: E402

HELD_OUT = 0.3


class Season:
    """A kept sample season: its pairs, the dates adapted on, the held-out dates and the truth."""

    def __init__(self, root: Path):
        manifest = json.loads((root / "sample" / "manifest.json").read_text())
        self.truth = {dt.date.fromisoformat(r["date"]): root / "sample" / r["truth"] for r in manifest["dates"]}
        self._fine_items = load_series([root / "landsat"], progress=QUIET)
        self._coarse_items = load_series([root / "modis30"], progress=QUIET)
        self.fine = {i.date: i.path for i in self._fine_items}
        self.coarse = {i.date: i.path for i in self._coarse_items}
        self.days = sorted(set(self.fine) & set(self.coarse))
        self.held = self.days[-max(1, round(HELD_OUT * len(self.days))):]
        self.adapt_days = [d for d in self.days if d not in self.held]
        self._arrays: dict[Path, np.ndarray] = {}

    def array(self, path) -> np.ndarray:
        if path not in self._arrays:
            self._arrays[path] = read_lst(path).data.astype(np.float32)
        return self._arrays[path]

    def observed(self, day: dt.date) -> np.ndarray:
        import rasterio

        with rasterio.open(flags_path_for(self.fine[day])) as flags:
            return flags.read(1) == OBSERVED

    def nearest_tasks(self) -> list[tuple[dt.date, dt.date]]:
        """(held-out date, its reference) as Fuse time series chooses them (INCLUDE_PAIRED, one reference)."""
        tasks, _ = plan_series(pair_by_date(self._fine_items, self._coarse_items, 0), self._coarse_items, 1,
                               self.held, include_paired=True)
        return [(t.target.date, t.pairs[0].fine.date) for t in tasks]


def triplet_maker(days: list[dt.date], mode: str, window: int):
    def make(n: int, references: int) -> list[patches.Triplet]:
        if mode == "consecutive":
            return [patches.Triplet((i - 1,), i) for i in range(1, n)]
        return [patches.Triplet((r,), t) for t in range(n) for r in range(n)
                if r != t and abs((days[r] - days[t]).days) <= window]
    return make


def patch_dataset(season: Season, variant: dict, scratch: Path, stats: dict):
    """The training and validation patches of the variant's triplets, and the validation (target, reference)s."""
    original = patches.make_triplets
    patches.make_triplets = triplet_maker(season.adapt_days, variant.get("triplets", "consecutive"),
                                          variant.get("window", 64))
    try:
        patches.build_patch_dataset(
            [season.fine[d] for d in season.adapt_days], [season.coarse[d] for d in season.adapt_days], scratch,
            patches.PatchParams(patch_size=64, stride=32, references=1, test_fraction=0.0, val_fraction=0.25),
            progress=QUIET)
    finally:
        patches.make_triplets = original
    train_set = patches.PatchDataset(scratch, "train", stats=stats)
    val_set = patches.PatchDataset(scratch, "val", stats=stats)
    records = val_set.manifest["triplets"]
    val_tasks = sorted({(dt.date.fromisoformat(t["target"]), dt.date.fromisoformat(t["references"][0]))
                        for t in records if t["split"] == "val"})
    print(f"{len(train_set)} training patches from {sum(t['split'] == 'train' for t in records)} triplets; "
          f"validation triplets: " + ", ".join(f"{r}→{t}" for t, r in val_tasks), flush=True)
    return train_set, val_set, val_tasks


def detail_loss(prediction, y, m, sigma: float):
    """The error the coarse-consistency correction leaves to the network: minus its two-footprint average."""
    from models.losses import gaussian_blur

    error = (prediction - y) * m
    spread = sigma * 2 ** 0.5
    average = gaussian_blur(error, spread) / gaussian_blur(m, spread).clamp_min(1e-3)
    return (((error - average * m) ** 2).sum()) / m.sum().clamp_min(1)


def run(season: Season, variant: dict, epochs: int, scratch: Path) -> None:
    import torch

    from models import registry

    base = SHIPPED / f"{shipped_models()[0]}.onnx"
    card = read_model_card(base)
    stats = card.normalisation
    fine_std = stats["fine"]["std"]
    train_set, val_set, val_tasks = patch_dataset(season, variant, scratch, stats)
    spec = registry.get(card.model)
    _seed_everything(0)
    lr, shift = variant.get("lr", 1e-4), variant.get("shift", 5.0)
    trainer = _Trainer(spec, 1, TrainConfig(model=spec.name, batch_size=8, learning_rate=lr, device="cpu",
                                            cloud_aware=True, level_shift_k=shift), torch.device("cpu"))
    net = trainer.net.network
    net.load_state_dict(onnx_weights(base, net))
    start_weights = {k: v.clone() for k, v in net.state_dict().items()}
    if variant.get("freeze") == "all_but_out":
        for name, p in net.named_parameters():
            p.requires_grad_(name.startswith("direction.out"))
    trainer.optimizer = torch.optim.Adam([p for p in trainer.net.parameters() if p.requires_grad], lr=lr)
    batches = _Batches(train_set, trainer.contract.roles, True, shift)
    val_batches = _Batches(val_set, trainer.contract.roles, True)
    sigma = sigma_px(abs(read_lst(season.fine[season.days[0]]).resolution[0]))  # the footprint Fuse uses

    def fused(tasks, against_truth: bool) -> dict[str, float]:
        """RMSE per target of whole-image predictions, corrected as Fuse does by default."""
        net.eval()
        out = {}
        with torch.no_grad():
            for day, ref in tasks:
                fine_ref, coarse_ref = season.array(season.fine[ref]), season.array(season.coarse[ref])
                coarse_day = season.array(season.coarse[day])
                x = np.stack([(coarse_ref - stats["coarse"]["mean"]) / stats["coarse"]["std"],
                              (fine_ref - stats["fine"]["mean"]) / fine_std,
                              (coarse_day - stats["coarse"]["mean"]) / stats["coarse"]["std"]])
                y = trainer.net(torch.from_numpy(np.nan_to_num(x))[None]).numpy()[0, 0] * fine_std
                y = y + stats["fine"]["mean"]
                y = y + residual(y, [(fine_ref, coarse_ref)], coarse_day, sigma)
                if against_truth:
                    error = y - season.array(season.truth[day])
                else:
                    error = np.where(season.observed(day), y - season.array(season.fine[day]), np.nan)
                out[str(day)] = float(np.sqrt(np.nanmean(error * error)))
        return out

    held_tasks = season.nearest_tasks()

    def report(epoch: int, seconds: float) -> None:
        _, val = _evaluate(trainer, val_batches, 8, fine_std, None)
        corrected = np.mean(list(fused(val_tasks, False).values()))
        held = fused(held_tasks, True)
        print(f"epoch {epoch} ({seconds:.0f} s): val {val:.3f} K, val corrected {corrected:.3f} K, held "
              f"{np.mean(list(held.values())):.3f} K  (" + ", ".join(f"{d} {v:.2f}" for d, v in held.items())
              + ")", flush=True)

    report(0, 0.0)
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        rng = np.random.default_rng([0, epoch])
        order = rng.permutation(len(batches))[:variant.get("per_epoch")]
        for b in range(0, len(order), 8):
            x, y, m = batches.batch(order[b:b + 8], rng, torch.device("cpu"))
            trainer.net.train()
            trainer.optimizer.zero_grad()
            if variant.get("detail"):
                loss = detail_loss(trainer.net(x), y, m, sigma)
            else:
                loss, _ = trainer.loss(x, y, m)
            if variant.get("l2sp"):
                loss = loss + variant["l2sp"] * sum(((p - start_weights[n]) ** 2).sum()
                                                    for n, p in net.named_parameters() if p.requires_grad)
            loss.backward()
            trainer.optimizer.step()
        report(epoch, time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--season", default="semi_arid:7:16", help="climate:seed:dates")
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--variant", type=json.loads, default={}, help="JSON object, e.g. '{\"lr\": 3e-4}'")
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the season in this folder")
    args = parser.parse_args()
    climate, seed, dates = args.season.split(":")
    print(f"Adaptation variant {json.dumps(args.variant)} of the shipped {shipped_models()[0]} on {climate} seed "
          f"{seed}, {args.size}² px; the latest {HELD_OUT:.0%} of the Landsat dates held out")
    with tempfile.TemporaryDirectory(prefix="bench_adapt_variants_") as tmp:
        root = (args.keep or Path(tmp)) / f"{climate}_{seed}"
        if not (root / "modis30").is_dir():
            prepare(root, args.size, int(dates), int(seed), climate)
        run(Season(root), args.variant, args.epochs, Path(tmp) / "patches")
    return 0


if __name__ == "__main__":
    sys.exit(main())
