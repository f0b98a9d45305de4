"""The model registry: a new model is one module plus one line here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from . import edcstfn, mlffgan, sttfn
from .contract import Contract


@dataclass(frozen=True)
class ModelSpec:
    name: str
    title: str
    paper: str
    build: Callable[[int], nn.Module]  # references -> network
    contract: Callable[[int], Contract]
    adversarial: bool = False
    version: str = "1.0"


MODELS: dict[str, ModelSpec] = {
    "edcstfn": ModelSpec("edcstfn", "EDCSTFN", "Tan et al. (2019), Remote Sensing 11(24), 2898",
                         lambda refs: edcstfn.EDCSTFN(refs), edcstfn.contract),
    "sttfn": ModelSpec("sttfn", "STTFN", "Yin et al. (2020), IEEE TGRS 59(2)",
                       lambda refs: sttfn.STTFN(refs), sttfn.contract),
    "mlffgan": ModelSpec("mlffgan", "MLFF-GAN", "Song et al. (2022), IEEE TGRS 60",
                         lambda refs: mlffgan.Generator(), mlffgan.contract, adversarial=True),
}


def get(name: str) -> ModelSpec:
    key = name.lower().replace("-", "").replace("_", "")
    if key not in MODELS:
        raise ValueError(f"Unknown model {name!r}: choose one of {', '.join(MODELS)}.")
    return MODELS[key]


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
