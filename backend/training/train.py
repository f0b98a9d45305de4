"""Training of the deep fusion models on a patch dataset, with resumable checkpoints and ONNX export.

* Data: the patch dataset of ``backend.preprocess.patches``, read lazily, normalised with its
  manifest's statistics; optional flips/rot90 augmentation drawn from the seed and epoch.
* Device: CUDA when present (bf16 autocast), else the CPU with all its cores.
* Reproducible: seeds, deterministic algorithms, and a shuffle that depends only on
  (seed, epoch), so a resumed run continues exactly where an uninterrupted one would be.
* Nothing lost: after every epoch a checkpoint (weights, optimiser, scheduler, epoch,
  RNG states, data cursor, history) is written atomically; checkpoints are read with
  ``weights_only=True``, so a checkpoint file can never execute code.
* Cloud-aware option: target pixels that were gap-filled, not observed, carry no loss
  and no gradient (``models.losses.keep_observed``).
* Validation every epoch on the validation dates; learning-rate reduction on plateau;
  early stopping; the best epoch is exported to ONNX with its model card.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import InputError, TrainingDiverged
from ..io.atomic import atomic_path, write_errors
from ..io.outputs import check_output_folder, claim_folder, digests
from ..io.record import write_record
from ..parameters import param
from ..preprocess.patches import PatchDataset
from ..progress import Progress, ensure

DEVICES = ("auto", "cpu", "cuda")


def _model_choices() -> tuple[tuple[str, str], ...]:
    from models import registry

    return registry.choices()


CHECKPOINT_FORMAT = "lst_fusion_checkpoint"


@dataclass
class TrainConfig:
    """What users set for a training run; the Processing algorithm builds its parameters from these fields."""

    model: str = param("edcstfn", "MODEL", "Model", choices=_model_choices, static=True)
    epochs: int = param(30, "EPOCHS", "Epochs", 1, 10000)
    batch_size: int = param(16, "BATCH_SIZE", "Batch size", 1, 4096)
    learning_rate: float | None = param(None, "LEARNING_RATE", "Learning rate (0 = the model's published default)",
                                        0.0, 1.0, none_as=0.0)
    device: str = param("auto", "DEVICE", "Device", options=DEVICES,
                        option_labels=("Automatic (CUDA when present)", "CPU", "CUDA GPU"))
    cloud_aware: bool = param(False, "CLOUD_AWARE", "Cloud-aware loss (ignore gap-filled target pixels)")
    augment: bool = param(True, "AUGMENT", "Augment with flips and rotations", advanced=True)
    seed: int = param(0, "SEED", "Random seed", 0, advanced=True)
    patience: int = param(6, "PATIENCE", "Early stopping patience (epochs)", 1, advanced=True)
    pretrain_epochs: int = 2  # EDCSTFN's feature autoencoder
    # per epoch; for smoke runs and benchmarks
    max_batches: int | None = param(None, "MAX_BATCHES", "Batches per epoch (0 = all)", 0, advanced=True,
                                    none_as=0)
    # Adds one random offset of up to ± this many K to every input and the target of a sample, so
    # the network learns the change from its references, not the absolute level of the training
    # region and season (a model trained on one region and applied elsewhere is otherwise biased).
    level_shift_k: float = param(0.0, "LEVEL_SHIFT", "Level-shift augmentation (± K; > 0 makes the model "
                                 "transferable to other regions and seasons)", 0.0, 100.0, advanced=True)
    # Weight of a physics-informed loss term (models.losses.coarse_consistency): the prediction seen at
    # MODIS's scale must change from the fine reference as MODIS changed. 0 = the published loss only.
    consistency_weight: float = param(0.0, "CONSISTENCY_WEIGHT", "Weight of the physics-informed loss (the "
                                      "prediction at MODIS's scale changes as MODIS did; 0 = published loss "
                                      "only)", 0.0, 100.0, advanced=True)
    notes: str = ""  # written into the model card (e.g. what data it was trained on)

    def validate(self) -> None:
        from models import registry

        try:
            registry.get(self.model)
        except ValueError as exc:
            raise InputError(str(exc)) from exc
        if self.epochs < 1 or self.batch_size < 1:
            raise InputError(f"EPOCHS ({self.epochs}) and BATCH_SIZE ({self.batch_size}) must be at least 1.")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise InputError(f"LEARNING_RATE must be greater than 0, got {self.learning_rate:g}.")
        if self.device not in DEVICES:
            raise InputError("DEVICE must be auto, cpu or cuda.")
        if not 0 <= self.level_shift_k <= 100:
            raise InputError(f"LEVEL_SHIFT must lie between 0 and 100 K, got {self.level_shift_k:g}.")
        if not 0 <= self.consistency_weight <= 100:
            raise InputError(f"CONSISTENCY_WEIGHT must lie between 0 and 100, got {self.consistency_weight:g}.")


@dataclass
class TrainResult:
    onnx: Path
    checkpoints: Path
    report: Path
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_val_rmse: float | None = None


def _device(name: str):
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("DEVICE is cuda but no CUDA GPU is available here; use auto or cpu.")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


DIVERGED_FACTOR = 1e3  # a loss this many times the run's first is an explosion, not learning


def _check_loss(loss: float, first: float | None, epoch: int, batch: int, last: Path) -> None:
    """Stop clearly when training diverges (a non-finite loss, or one exploding against the first loss of
    the run): nothing is exported and the last checkpoint keeps the last good epoch."""
    if math.isfinite(loss) and (first is None or loss <= DIVERGED_FACTOR * max(first, 1e-6)):
        return
    what = "not a number" if not math.isfinite(loss) else f"{loss:.3g}, {loss / first:.0f}× the first"
    kept = f"{last} keeps the last good epoch" if last.exists() else "no checkpoint was written"
    raise TrainingDiverged(f"Training diverged in epoch {epoch + 1}, batch {batch + 1}: the loss is {what}. "
                           f"Nothing was exported; {kept}. Lower LEARNING_RATE, or check the patches for "
                           "extreme values, and train again in a new folder.")


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


class _Batches:
    """Tensors for the model's contract from a PatchDataset split."""

    def __init__(self, dataset: PatchDataset, roles: tuple[str, ...], cloud_aware: bool, level_shift_k: float = 0.0):
        self.dataset, self.roles, self.cloud_aware = dataset, roles, cloud_aware
        self.level_shift_k = level_shift_k
        stats = dataset.manifest["normalisation"]
        # A shift of 1 K in each channel's normalised units.
        self.per_kelvin = np.array([1.0 / stats["fine" if r.startswith("fine") else "coarse"]["std"]
                                    for r in roles], np.float32)[:, None, None]
        self.target_per_kelvin = np.float32(1.0 / stats["fine"]["std"])

    def __len__(self) -> int:
        return len(self.dataset)

    def batch(self, indices, rng: np.random.Generator | None, device):
        import torch

        xs, ys, ms = [], [], []
        for i in indices:
            item = self.dataset[int(i)]
            x = np.stack([item[r] for r in self.roles])
            y = item["fine_t2"][None]
            if rng is not None and self.level_shift_k:
                shift = np.float32(rng.uniform(-self.level_shift_k, self.level_shift_k))
                x, y = x + shift * self.per_kelvin, y + shift * self.target_per_kelvin
            m = np.isfinite(y) & ((item["observed_t2"][None] > 0.5) if self.cloud_aware else True)
            xs.append(np.nan_to_num(x, nan=0.0))
            ys.append(np.nan_to_num(y, nan=0.0))
            ms.append(m.astype(np.float32))
        x, y, m = (torch.from_numpy(np.stack(a)) for a in (xs, ys, ms))
        if rng is not None:
            k, flip = int(rng.integers(4)), bool(rng.integers(2))
            x, y, m = (torch.rot90(t, k, (2, 3)) for t in (x, y, m))
            if flip:
                x, y, m = (torch.flip(t, (3,)) for t in (x, y, m))
        return x.to(device), y.to(device), m.to(device)


class _Trainer:
    """Model, losses and optimisers of one registered model; one ``step`` per batch."""

    def __init__(self, spec, references: int, config: TrainConfig, device, manifest: dict | None = None):
        import torch

        from models.contract import PaddedModel

        self.spec, self.config, self.device = spec, config, device
        self.consistency = None
        if config.consistency_weight and manifest is not None:
            from affine import Affine
            from rasterio.crs import CRS

            from ..fusion.consistency import sigma_px
            from ..io.grid import MODIS_PIXEL_M, Grid

            g = manifest["grid"]
            grid = Grid(CRS.from_user_input(g["crs"]), Affine(*g["transform"]), g["width"], g["height"])
            stats = manifest["normalisation"]
            roles = spec.contract(references).roles
            self.consistency = {
                "sigma": sigma_px(grid.pixel_size_m(), MODIS_PIXEL_M),  # metres, also on a geographic grid
                "ratio": stats["coarse"]["std"] / stats["fine"]["std"],  # coarse units → fine units
                "index": {r: roles.index(r) for r in ("fine_t1", "coarse_t1", "coarse_t2")},
            }
        self.contract = spec.contract(references)
        self.net = PaddedModel(spec.build(references), self.contract).to(device)
        recipe = self.recipe = spec.recipe
        lr = config.learning_rate or recipe.learning_rate
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr, betas=recipe.betas)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, factor=0.5, patience=2)
        self.extra: dict[str, torch.nn.Module] = {}
        self.extra_optim: dict[str, torch.optim.Optimizer] = {}
        for name, extra in recipe.extras:
            self.extra[name] = extra.build(self.contract).to(device)
            self.extra_optim[name] = torch.optim.Adam(self.extra[name].parameters(), lr=extra.learning_rate or lr,
                                                      betas=extra.betas or recipe.betas)

    def autocast(self):
        import contextlib

        import torch

        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def pretrain_step(self, x) -> float:
        """One step of the recipe's pretraining (EDCSTFN's feature autoencoder), on a batch of inputs."""
        return self.recipe.pretrain(self.extra, self.extra_optim, x, self.contract, self.autocast)

    def loss(self, x, y, m):
        """The model's published loss (restricted by the mask), plus the consistency term if asked for."""
        loss, pred, raw = self.recipe.loss(self.net, self.extra, x, y, m)
        if self.consistency is not None:
            from models.losses import coarse_consistency

            i = self.consistency["index"]
            change = (x[:, i["coarse_t2"]:i["coarse_t2"] + 1] - x[:, i["coarse_t1"]:i["coarse_t1"] + 1])
            loss = loss + self.config.consistency_weight * coarse_consistency(
                raw, x[:, i["fine_t1"]:i["fine_t1"] + 1], change * self.consistency["ratio"],
                self.consistency["sigma"])
        return loss, pred

    def step(self, x, y, m) -> float:
        self.net.train()
        for name, extra in self.recipe.extras:
            self.extra[name].train()
            if extra.frozen:  # a loss network: fixed while the model trains
                self.extra[name].eval()
                for p in self.extra[name].parameters():
                    p.requires_grad_(False)
        self.optimizer.zero_grad()
        with self.autocast():
            loss, pred = self.loss(x, y, m)
        loss.backward()
        self.optimizer.step()
        if self.recipe.after_step is not None:
            self.recipe.after_step(self.extra, self.extra_optim, x, y, m, pred, self.autocast)
        return loss.item()

    def state(self) -> dict:
        out = {"model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
               "scheduler": self.scheduler.state_dict()}
        for name, module in self.extra.items():
            out[name] = module.state_dict()
            out[f"{name}_optimizer"] = self.extra_optim[name].state_dict()
        return out

    def load(self, state: dict) -> None:
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        for name, module in self.extra.items():
            module.load_state_dict(state[name])
            self.extra_optim[name].load_state_dict(state[f"{name}_optimizer"])


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint safely (no code runs) and check it is one of ours."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: checkpoint not found.")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle, zip and torch errors alike
        raise InputError(f"{p.name}: not a valid LST Fusion checkpoint ({type(exc).__name__}); it was not "
                         "loaded, and nothing in it was run.") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{p.name}: not an LST Fusion checkpoint.")
    return state


def _save_checkpoint(path: Path, state: dict) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _rng_state() -> dict:
    import torch

    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "numpy": [keys.tolist(), int(pos), int(has_gauss), float(gauss)],
             "python": list(random.getstate()[1])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state(("MT19937", np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    random.setstate((3, tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _evaluate(trainer: _Trainer, batches: _Batches, batch_size: int, fine_std: float, limit: int | None):
    """Mean loss and RMSE (K) on a split, over pixels the loss may see."""
    import torch

    trainer.net.eval()
    sq, count, losses = 0.0, 0.0, []
    n = len(batches) if limit is None else min(len(batches), limit * batch_size)
    with torch.no_grad():
        for start in range(0, n, batch_size):
            x, y, m = batches.batch(range(start, min(n, start + batch_size)), None, trainer.device)
            with trainer.autocast():
                pred = trainer.net(x).float()
            sq += float((((pred - y) * m) ** 2).sum())
            count += float(m.sum())
            losses.append(float(torch.nn.functional.mse_loss(pred * m, y * m)))
    if count == 0:
        return None, None
    return float(np.mean(losses)), float(np.sqrt(sq / count)) * fine_std


@dataclass
class _RunState:
    """Where a run stands: the epochs done, the best one, epochs without improvement."""

    history: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"epoch": 0, "rmse": None})
    stale: int = 0
    start_epoch: int = 0


def _open_datasets(dataset_dir, spec, progress: Progress):
    """The training and validation splits, with the dataset's manifest and reference count, checked."""
    train_set = PatchDataset(dataset_dir, "train")
    val_set = PatchDataset(dataset_dir, "val")
    references = int(train_set.manifest["references"])
    try:
        spec.contract(references)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    if len(train_set) == 0:
        raise InputError(f"{dataset_dir}: the training split holds no patch.")
    if len(val_set) == 0:
        progress.warn(f"{dataset_dir}: no validation patches, so the best epoch is chosen by the training loss "
                      "and no validation RMSE is reported (VAL_RMSE is NaN). Build the patches with "
                      "VAL_FRACTION > 0 to measure the model on dates it did not learn from.")
    return train_set, val_set, references


def _claim_run_folder(out_dir, dataset_dir, files: list[str], resume: bool) -> Path:
    """The output folder, claimed for the files a run writes in place; refused when RESUME and the
    folder disagree."""
    out = check_output_folder(out_dir, "train", [dataset_dir])
    last = out / "checkpoints" / "last.pt"
    if resume and not last.exists():
        raise InputError(f"Nothing to resume in {out}: no checkpoints/last.pt. Start without RESUME.")
    if not resume and last.exists():
        raise InputError(f"{out} already holds a training run; set RESUME to continue it or choose a new folder.")
    claim_folder(out, "train", files, [dataset_dir])
    with write_errors(last.parent):
        last.parent.mkdir(parents=True, exist_ok=True)
    return out


def _resumed(trainer, last: Path, spec, dataset_dir, progress: Progress) -> _RunState:
    """The state of the run saved in ``last``, loaded into ``trainer`` (RNG included, so the result is exact)."""
    state = load_checkpoint(last)
    if state["model_name"] != spec.name or state["dataset"] != str(Path(dataset_dir).resolve()):
        raise InputError(f"{last} was trained with {state['model_name']} on {state['dataset']}; "
                         "resume it with the same model and dataset, or start a new folder.")
    trainer.load(state["trainer"])
    _set_rng_state(state["rng"])
    progress.info(f"Resuming {spec.title} after epoch {state['cursor']['epoch']}")
    return _RunState(state["history"], state["best"], state["stale_epochs"], state["cursor"]["epoch"])


def _pretrain(trainer, batches, config: TrainConfig, per_epoch: int, device, progress: Progress) -> None:
    """The recipe's pretraining (EDCSTFN's feature autoencoder), before the first epoch of a new run."""
    rng = np.random.default_rng([config.seed, 10_000])
    for _ in range(config.pretrain_epochs):
        order = rng.permutation(len(batches))
        for b in range(per_epoch):
            x, _, _ = batches.batch(order[b * config.batch_size:(b + 1) * config.batch_size], None, device)
            trainer.pretrain_step(x)
            progress.check()
    progress.info(f"{trainer.spec.title}: pretraining done ({config.pretrain_epochs} epoch(s))")


def _train_epoch(trainer, batches, config: TrainConfig, epoch: int, per_epoch: int, device, first_loss,
                 last: Path, progress: Progress) -> list[float]:
    """One epoch's batches (order and augmentation drawn from the seed and the epoch)."""
    total = config.epochs * per_epoch
    rng = np.random.default_rng([config.seed, epoch])
    order = rng.permutation(len(batches))
    losses = []
    for b in range(per_epoch):
        progress.check()  # between batches: the last checkpoint stays intact
        x, y, m = batches.batch(order[b * config.batch_size:(b + 1) * config.batch_size],
                                rng if config.augment else None, device)
        loss = trainer.step(x, y, m)
        _check_loss(loss, first_loss if first_loss is not None else (losses[0] if losses else None), epoch, b, last)
        losses.append(loss)
        progress.update((epoch * per_epoch + b + 1) / total)
    return losses


def _export(trainer, spec, manifest: dict, config: TrainConfig, run: _RunState, device, dataset_dir,
            out: Path) -> tuple[Path, Path]:
    """The best epoch exported to ONNX with its model card, and the HTML report."""
    from models import registry
    from models.card import ModelCard
    from models.contract import Normalise, exportable

    from .onnx_export import export_onnx
    from .report import write_report

    contract = trainer.contract
    stats = manifest["normalisation"]
    kelvin = exportable(trainer.net.network, Normalise(contract, stats)).cpu().eval()
    train_dates = sorted({t["target"] for t in manifest["triplets"] if t["split"] == "train"})
    val_dates = sorted({t["target"] for t in manifest["triplets"] if t["split"] == "val"})
    card = ModelCard(
        model=spec.name, title=spec.title, paper=spec.paper, model_version=spec.version,
        package_version=__version__, roles=contract.roles, size_multiple=contract.size_multiple, units="K",
        normalisation={k: {"mean": v["mean"], "std": v["std"]} for k, v in stats.items() if k in ("fine", "coarse")},
        parameters=registry.parameter_count(trainer.net),
        training={"dataset": Path(dataset_dir).name, "train_dates": train_dates, "validation_dates": val_dates,
                  "grid": manifest["grid"], "epochs": len(run.history), "best_epoch": run.best["epoch"],
                  "cloud_aware": config.cloud_aware, "seed": config.seed, "batch_size": config.batch_size,
                  "level_shift_k": config.level_shift_k, "notes": config.notes,
                  "device": device.type, "trained": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")},
        validation={"rmse_k": run.best["rmse"] if val_dates else None, "history": run.history},
        scene_moments=kelvin.scene_moments,
    )
    onnx_path = export_onnx(kelvin, card, out / f"{spec.name}.onnx")
    return onnx_path, write_report(out / "report.html", card, run.history, config)


def train(
    dataset_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: TrainConfig | None = None,
    resume: bool = False,
    progress: Progress | None = None,
) -> TrainResult:
    """Train ``config.model`` on a patch dataset; write checkpoints, the ONNX model and a report."""
    import torch

    from models import registry

    config = config or TrainConfig()
    config.validate()
    progress = ensure(progress)
    spec = registry.get(config.model)
    train_set, val_set, references = _open_datasets(dataset_dir, spec, progress)
    manifest = train_set.manifest
    files = ["checkpoints/last.pt", "checkpoints/best.pt", "history.json", f"{spec.name}.onnx", "report.html"]
    out = _claim_run_folder(out_dir, dataset_dir, files, resume)
    ckpt_dir = out / "checkpoints"
    last = ckpt_dir / "last.pt"
    device = _device(config.device)
    if device.type == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    _seed_everything(config.seed)
    trainer = _Trainer(spec, references, config, device, manifest)
    batches = _Batches(train_set, trainer.contract.roles, config.cloud_aware, config.level_shift_k)
    val_batches = _Batches(val_set, trainer.contract.roles, config.cloud_aware)
    fine_std = float(manifest["normalisation"]["fine"]["std"])
    run = _resumed(trainer, last, spec, dataset_dir, progress) if resume else _RunState()
    per_epoch = -(-len(batches) // config.batch_size)
    if config.max_batches:
        per_epoch = min(per_epoch, config.max_batches)
    if spec.recipe.pretrain is not None and run.start_epoch == 0 and not resume:
        _pretrain(trainer, batches, config, per_epoch, device, progress)
    for epoch in range(run.start_epoch, config.epochs):
        first_loss = run.history[0]["train_loss"] if run.history else None
        losses = _train_epoch(trainer, batches, config, epoch, per_epoch, device, first_loss, last, progress)
        val_loss, val_rmse = _evaluate(trainer, val_batches, config.batch_size, fine_std, config.max_batches)
        trainer.scheduler.step(val_loss if val_loss is not None else float(np.mean(losses)))
        record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_loss": val_loss,
                  "val_rmse_k": val_rmse, "lr": trainer.optimizer.param_groups[0]["lr"]}
        run.history.append(record)
        score = val_rmse if val_rmse is not None else record["train_loss"]
        improved = run.best["rmse"] is None or score < run.best["rmse"]
        run.best, run.stale = ({"epoch": epoch + 1, "rmse": score}, 0) if improved else (run.best, run.stale + 1)
        state = {"format": CHECKPOINT_FORMAT, "version": __version__, "model_name": spec.name,
                 "references": references, "dataset": str(Path(dataset_dir).resolve()),
                 "config": asdict(config), "trainer": trainer.state(), "rng": _rng_state(),
                 "history": run.history, "best": run.best, "stale_epochs": run.stale,
                 "cursor": {"epoch": epoch + 1, "batch": 0}}
        _save_checkpoint(last, state)
        if improved:
            _save_checkpoint(ckpt_dir / "best.pt", state)
        progress.info(f"epoch {epoch + 1}/{config.epochs}: train loss {record['train_loss']:.4f}"
                      + (f", validation RMSE {val_rmse:.2f} K" if val_rmse is not None else ""))
        if run.stale >= config.patience:
            progress.info(f"Early stop: no improvement for {run.stale} epochs")
            break
    with atomic_path(out / "history.json") as tmp:
        tmp.write_text(json.dumps(run.history, indent=2))
    trainer.load(load_checkpoint(ckpt_dir / "best.pt")["trainer"])
    onnx_path, report = _export(trainer, spec, manifest, config, run, device, dataset_dir, out)
    with write_errors(out):
        write_record(out, "train", digests(out, files))
    best_rmse = run.best["rmse"] if any(t["split"] == "val" for t in manifest["triplets"]) else None
    return TrainResult(onnx_path, ckpt_dir, report, run.history, run.best["epoch"], best_rmse)
