"""The model registry: a new model is one module (network, contract, training recipe) plus one entry here,
or one call to :func:`register` from outside the package.

Entries name their module and load it (and torch) only when a model is built or trained, so the
plugin can list the models without importing torch when QGIS starts.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from .contract import Contract
    from .recipe import Recipe


@dataclass(frozen=True)
class ModelSpec:
    """A registered network. Its ``module`` defines ``build(references)`` (the network),
    ``contract(references)`` (its input roles) and ``RECIPE`` (how it is trained, models/recipe.py)."""

    name: str
    title: str
    paper: str
    module: str
    citation: str = ""  # short, for choices: "Tan et al., 2019"
    summary: str = ""  # one sentence for Train's help
    version: str = "1.0"
    # Its output depends on whole-image statistics, exported as scene moments (a model exported without
    # them still runs, but tiles differ from the whole scene).
    scene_statistics: bool = False

    def _code(self) -> ModuleType:
        return importlib.import_module(self.module)

    def build(self, references: int) -> nn.Module:
        return self._code().build(references)

    def contract(self, references: int) -> Contract:
        return self._code().contract(references)

    @property
    def recipe(self) -> Recipe:
        return self._code().RECIPE

    @property
    def label(self) -> str:
        """How users choose it: 'EDCSTFN (Tan et al., 2019)'."""
        return f"{self.title} ({self.citation})" if self.citation else self.title


MODELS: dict[str, ModelSpec] = {
    "edcstfn": ModelSpec("edcstfn", "EDCSTFN", "Tan et al. (2019), Remote Sensing 11(24), 2898", "models.edcstfn",
                         "Tan et al., 2019", "compound loss (MSE + feature + MS-SSIM)."),
    "sttfn": ModelSpec("sttfn", "STTFN", "Yin et al. (2020), IEEE TGRS 59(2)", "models.sttfn", "Yin et al., 2020",
                       "multi-scale CNN for LST, MSE."),
    "mlffgan": ModelSpec("mlffgan", "MLFF-GAN", "Song et al. (2022), IEEE TGRS 60", "models.mlffgan",
                         "Song et al., 2022", "generator with AdaIN and attention + PatchGAN discriminator.",
                         scene_statistics=True),
}


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def register(spec: ModelSpec) -> ModelSpec:
    """Add a model from outside the package (a plugin of the plugin, a test); its name must be new."""
    if _key(spec.name) in MODELS:
        raise ValueError(f"A model named {spec.name!r} is already registered.")
    MODELS[_key(spec.name)] = spec
    return spec


def choices() -> tuple[tuple[str, str], ...]:
    """(name, label) of every model, in registration order: the indices saved models and scripts use."""
    return tuple((name, spec.label) for name, spec in MODELS.items())


def get(name: str) -> ModelSpec:
    key = _key(name)
    if key not in MODELS:
        raise ValueError(f"Unknown model {name!r}: choose one of {', '.join(MODELS)}.")
    return MODELS[key]


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
