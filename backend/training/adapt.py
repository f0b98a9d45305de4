"""Adapt a trained network to the user's season: fine-tune it on the season's own pairs, within a time budget.

The survey's networks are trained once, elsewhere (the shipped STTFN on synthetic Orléans
data), and never see the user's region: a roof in Riverina answers a heat wave differently
from one in Orléans. Adaptation starts from the model's own weights (read back from its
ONNX graph), builds the season's triplets (each pair predicted from the previous one, or
from the ones around it), keeps the chronologically last quarter apart for validation,
and fine-tunes with the training stage's losses made for this: the cloud-aware loss (only
observed target pixels count) and the level-shift augmentation (the network learns the
change from its reference, not the season's level). Dates to be predicted are left out.
It stops when the time budget is spent and exports the epoch that validated best, or the
unadapted weights if none did better, with a card recording the base model, the dates it
adapted on and both validation errors. The model is written atomically: a stopped or
killed adaptation leaves no model, and its scratch patches are removed (a killed run's by
the next run).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import InputError
from ..fusion.onnx_model import check_model_choice, model_file_param, model_path, shipped_model_param
from ..io.atomic import remove_path, remove_stale, temporary_name
from ..io.series import load_series
from ..parameters import param, with_overrides
from ..progress import Progress, ensure
from .train import DEVICES, TrainConfig, _Batches, _device, _evaluate, _seed_everything, _Trainer


@dataclass(frozen=True)
class AdaptParams:
    """What users set for an adaptation; the Processing algorithm builds its parameters from these fields."""

    model: str = model_file_param()
    shipped: str = shipped_model_param()
    # ≤ 10 minutes on 2 CPU cores for a 1,000² season (bench/bench_adapt.py); a GPU does more in the same time.
    minutes: float = param(10.0, "TIME_BUDGET", "Time budget (minutes)", 0.01, 1440.0)
    exclude_dates: list[dt.date] | None = param(None, "EXCLUDE_DATES", "Dates left out (the dates to predict; "
                                                "YYYY-MM-DD, comma-separated)", kind="dates")
    learning_rate: float = param(1e-4, "LEARNING_RATE", "Learning rate", 1e-7, 1.0, advanced=True)
    batch_size: int = param(8, "BATCH_SIZE", "Batch size", 1, 1024, advanced=True)
    patch_size: int = param(64, "PATCH_SIZE", "Patch size (px)", 16, 1024, advanced=True)
    stride: int = param(32, "STRIDE", "Stride between patches (px)", 1, 1024, advanced=True)
    val_fraction: float = param(0.25, "VAL_FRACTION", "Validation fraction (the latest triplets)", 0.05, 0.9,
                                advanced=True)
    level_shift_k: float = param(5.0, "LEVEL_SHIFT", "Level-shift augmentation (± K)", 0.0, 100.0, advanced=True)
    device: str = param("auto", "DEVICE", "Device", options=DEVICES,
                        option_labels=("Automatic (CUDA when present)", "CPU", "CUDA GPU"))
    seed: int = param(0, "SEED", "Random seed", 0, advanced=True)

    @property
    def path(self) -> str:
        """The model to adapt: MODEL when given, else the shipped model named by SHIPPED_MODEL."""
        return model_path(self.model, self.shipped)

    def validate(self) -> None:
        check_model_choice(self.path, self.shipped)
        if not self.minutes > 0:
            raise InputError(f"TIME_BUDGET must be greater than 0 minutes, got {self.minutes:g}.")
        if not 0 < self.val_fraction < 1:
            raise InputError(f"VAL_FRACTION must lie between 0 and 1, got {self.val_fraction:g}.")
        if self.device not in DEVICES:
            raise InputError(f"DEVICE must be one of {', '.join(DEVICES)}, got {self.device!r}.")


@dataclass(frozen=True)
class AdaptResult:
    model: Path
    base_rmse_k: float | None  # validation RMSE of the model before adaptation
    rmse_k: float | None  # after (the exported weights)
    dates: tuple[str, ...]  # the pairs it adapted on
    validation_dates: tuple[str, ...]
    epochs: int
    minutes: float
    improved: bool


def onnx_weights(path: str | os.PathLike, network) -> dict:
    """The network's state dict read back from an exported graph (its initialisers keep the torch names);
    InputError when a weight is missing or folded (a graph that cannot be fine-tuned)."""
    import onnx
    import torch
    from onnx import numpy_helper

    initialisers = {t.name: t for t in onnx.load(str(path)).graph.initializer}
    state, missing = {}, []
    for key, value in network.state_dict().items():
        tensor = initialisers.get(f"model.{key}")
        array = numpy_helper.to_array(tensor) if tensor is not None else None
        if array is None or tuple(array.shape) != tuple(value.shape):
            if not key.endswith("num_batches_tracked"):
                missing.append(key)
            continue
        state[key] = torch.from_numpy(array.copy()).to(value.dtype)
    if missing:
        raise InputError(f"MODEL: {Path(path).name} does not keep all its weights in the graph ({len(missing)} "
                         f"missing or folded at export, e.g. {missing[0]}), so it cannot be fine-tuned. Train a "
                         "model on the season with 'Train STF model' instead.")
    return state


def _season_pairs(fine_inputs, coarse_inputs, exclude: set[dt.date], references: int,
                  progress: Progress) -> tuple[list[str], list[str], list[dt.date]]:
    """The season's fine and coarse files of the dates adapted on (every pair but ``exclude``)."""
    fine = {i.date: i.path for i in load_series(fine_inputs, progress=progress)}
    coarse = {i.date: i.path for i in load_series(coarse_inputs, progress=progress)}
    dates = sorted(d for d in set(fine) & set(coarse) if d not in exclude)
    if len(dates) < references + 2:
        raise InputError(f"Adaptation needs at least {references + 2} Landsat + MODIS pairs besides the dates to "
                         f"predict (training and validation triplets); {len(dates)} left "
                         f"({', '.join(map(str, dates)) or 'none'}). Give a longer season or fewer EXCLUDE_DATES.")
    return [fine[d] for d in dates], [coarse[d] for d in dates], dates


def _check_output(out: Path) -> None:
    """Replace only a model this stage wrote (its card says what it was adapted from)."""
    if not out.exists():
        return
    from models.card import CardError, read_card

    try:
        ours = "adapted_from" in read_card(out).training
    except CardError:
        ours = False
    if not ours or not out.is_file():
        raise InputError(f"OUTPUT: {out} exists and is not a model written by 'Adapt a model to a season'; it was "
                         "left as it is. Choose a new file name.")


def adapt_model(
    fine_inputs: list[str | os.PathLike],
    coarse_inputs: list[str | os.PathLike],
    out_path: str | os.PathLike,
    params: AdaptParams | None = None,
    *,
    progress: Progress | None = None,
    **options,
) -> AdaptResult:
    """Fine-tune the model ``params`` name (MODEL or SHIPPED_MODEL) on the season's pairs; write it to ``out_path``."""
    from models import registry

    from ..preprocess.patches import PatchDataset, PatchParams, build_patch_dataset
    from .onnx_export import read_model_card

    p = with_overrides(AdaptParams, params, options)
    p.validate()
    progress = ensure(progress)
    base_model = p.path
    out = Path(out_path).expanduser()
    _check_output(out)
    card = read_model_card(base_model)
    try:
        spec = registry.get(card.model)
    except ValueError as exc:
        raise InputError(f"MODEL: {Path(base_model).name} is a {card.model} model, which is not registered here.") \
            from exc
    references = 2 if "fine_t3" in card.roles else 1
    fine, coarse, dates = _season_pairs(fine_inputs, coarse_inputs, set(p.exclude_dates or ()), references, progress)
    scratch_name = out.with_name(out.name + ".patches")
    remove_stale(scratch_name)
    scratch = temporary_name(scratch_name)
    try:
        build_patch_dataset(fine, coarse, scratch, PatchParams(
            patch_size=p.patch_size, stride=p.stride, references=references, test_fraction=0.0,
            val_fraction=p.val_fraction, seed=p.seed), progress=progress.sub(0.0, 0.05))
        stats = card.normalisation  # the weights expect the base model's normalisation
        train_set = PatchDataset(scratch, "train", stats=stats)
        val_set = PatchDataset(scratch, "val", stats=stats)
        if not len(train_set) or not len(val_set):
            raise InputError(f"The season's {len(dates)} pairs gave {len(train_set)} training and {len(val_set)} "
                             "validation patches: use a smaller PATCH_SIZE or a longer season.")
        return _fine_tune(spec, card, references, train_set, val_set, dates, p, base_model, out, progress)
    finally:
        remove_path(scratch)


def _fine_tune(spec, card, references: int, train_set, val_set, dates, p: AdaptParams, base_model, out: Path,
               progress: Progress) -> AdaptResult:
    import torch

    from models.contract import Normalise, exportable

    from .onnx_export import export_onnx

    device = _device(p.device)
    if device.type == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    _seed_everything(p.seed)
    config = TrainConfig(model=spec.name, batch_size=p.batch_size, learning_rate=p.learning_rate, device=p.device,
                         cloud_aware=True, level_shift_k=p.level_shift_k, seed=p.seed)
    trainer = _Trainer(spec, references, config, device)
    network = trainer.net.network
    network.load_state_dict(onnx_weights(base_model, network))
    batches = _Batches(train_set, trainer.contract.roles, True, p.level_shift_k)
    val_batches = _Batches(val_set, trainer.contract.roles, True)
    fine_std = float(card.normalisation["fine"]["std"])
    _, base_rmse = _evaluate(trainer, val_batches, p.batch_size, fine_std, None)
    best = {"rmse": base_rmse, "state": copy.deepcopy(network.state_dict()), "epoch": 0}
    progress.info(f"{card.title} before adaptation: validation RMSE {base_rmse:.2f} K on "
                  f"{len(val_set)} patch(es)")
    start, budget = time.monotonic(), 60.0 * p.minutes
    epoch = 0
    while time.monotonic() - start < budget:
        rng = np.random.default_rng([p.seed, epoch])
        order = rng.permutation(len(batches))
        for b in range(0, len(order), p.batch_size):
            progress.check()
            trainer.step(*batches.batch(order[b:b + p.batch_size], rng, device))
            elapsed = time.monotonic() - start
            progress.update(0.05 + 0.9 * min(1.0, elapsed / budget))
            if elapsed >= budget:
                break
        epoch += 1
        _, rmse = _evaluate(trainer, val_batches, p.batch_size, fine_std, None)
        progress.info(f"adaptation epoch {epoch}: validation RMSE {rmse:.2f} K")
        if rmse < best["rmse"]:
            best = {"rmse": rmse, "state": copy.deepcopy(network.state_dict()), "epoch": epoch}
    minutes = (time.monotonic() - start) / 60.0
    network.load_state_dict(best["state"])
    if not best["epoch"]:
        progress.warn(f"Adaptation did not improve the validation RMSE ({base_rmse:.2f} K) in {minutes:.1f} minutes: "
                      "the model written keeps the base weights.")
    validation_dates = sorted({t["target"] for t in val_set.manifest["triplets"] if t["split"] == "val"})
    kelvin = exportable(network.cpu().eval(), Normalise(trainer.contract, card.normalisation))
    adapted = dataclasses.replace(
        card, package_version=__version__, scene_moments=kelvin.scene_moments,
        training={"adapted_from": {"file": Path(base_model).name, "title": card.title, "training": card.training},
                  "adaptation": {"dates": [str(d) for d in dates], "excluded_dates": [str(d) for d in
                                                                                      sorted(p.exclude_dates or ())],
                                 "validation_dates": validation_dates, "epochs": epoch, "best_epoch": best["epoch"],
                                 "minutes": round(minutes, 2), "budget_minutes": p.minutes, "device": device.type,
                                 "learning_rate": p.learning_rate, "level_shift_k": p.level_shift_k,
                                 "cloud_aware": True, "seed": p.seed}},
        validation={"rmse_k": best["rmse"], "base_rmse_k": base_rmse, "validation_dates": validation_dates})
    export_onnx(kelvin, adapted, out)
    progress.info(f"Adapted {card.title}: validation RMSE {base_rmse:.2f} → {best['rmse']:.2f} K ({epoch} epoch(s), "
                  f"{minutes:.1f} min on {device.type}); written to {out.name}")
    return AdaptResult(out, base_rmse, best["rmse"], tuple(str(d) for d in dates), tuple(validation_dates), epoch,
                       minutes, best["epoch"] > 0)
