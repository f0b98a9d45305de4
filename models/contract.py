"""The input/output contract of a fusion network, read by training, export and inference alike.

Inputs are LST rasters on the fine grid (MODIS already resampled), stacked as channels in
the order ``roles`` names, in Kelvin. Fine channels are normalised with the fine
statistics of the training set and coarse channels with the coarse ones; the output is
the fine LST at t2. Networks whose encoders downsample need sizes divisible by
``size_multiple``: :func:`padding` says how much to reflect-pad, and :class:`PaddedModel`
does it around the network in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

ROLES_ONE_REFERENCE = ("coarse_t1", "fine_t1", "coarse_t2")
ROLES_TWO_REFERENCES = ("coarse_t1", "fine_t1", "coarse_t3", "fine_t3", "coarse_t2")


@dataclass(frozen=True)
class Contract:
    roles: tuple[str, ...]
    size_multiple: int = 1
    output: str = "fine_t2"

    @property
    def channels(self) -> int:
        return len(self.roles)

    @property
    def references(self) -> int:
        return 2 if "fine_t3" in self.roles else 1

    def is_fine(self, role: str) -> bool:
        return role.startswith("fine")


class Normalise(nn.Module):
    """Kelvin in, standardised channels out (fine and coarse statistics per channel)."""

    def __init__(self, contract: Contract, stats: dict[str, dict[str, float]]):
        super().__init__()
        mean = [stats["fine" if contract.is_fine(r) else "coarse"]["mean"] for r in contract.roles]
        std = [stats["fine" if contract.is_fine(r) else "coarse"]["std"] for r in contract.roles]
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("out_mean", torch.tensor(stats["fine"]["mean"], dtype=torch.float32))
        self.register_buffer("out_std", torch.tensor(stats["fine"]["std"], dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def denormalise(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.out_std + self.out_mean


def padding(height: int, width: int, multiple: int) -> tuple[int, int]:
    """Rows and columns to add (bottom, right) so both sizes are multiples of ``multiple``."""
    if multiple <= 1:
        return 0, 0
    return (multiple - height % multiple) % multiple, (multiple - width % multiple) % multiple


class PaddedModel(nn.Module):
    """Reflect-pads (N, C, H, W) up to the contract's multiple, runs the network, crops back.

    Used in training; inference with ONNX pads the same way outside the graph (the card
    carries ``size_multiple``), because a traced graph cannot compute its own padding.
    """

    def __init__(self, network: nn.Module, contract: Contract):
        super().__init__()
        self.network = network
        self.multiple = contract.size_multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = padding(h, w, self.multiple)
        if not (ph or pw):
            return self.network(x)
        return self.network(F.pad(x, (0, pw, 0, ph), mode="reflect"))[..., :h, :w]


class KelvinModel(nn.Module):
    """What is exported to ONNX: Kelvin channels in, Kelvin fine LST out (sizes multiples of the contract's)."""

    scene_moments = 0  # the graph takes no scene statistics

    def __init__(self, model: nn.Module, normalise: Normalise):
        super().__init__()
        self.model = model
        self.normalise = normalise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.normalise.denormalise(self.model(self.normalise(x)))


class SceneKelvinModel(KelvinModel):
    """The export of a network whose output depends on whole-image statistics (MLFF-GAN's AdaIN): it takes
    the scene's summed moments and returns, beside the LST, the moments of its own input weighted by
    ``weight`` (a first pass adds those up over the scene's tiles), so a tiled scene equals the whole."""

    def __init__(self, model: nn.Module, normalise: Normalise):
        super().__init__(model, normalise)
        self.scene_moments = int(model.MOMENTS)

    def forward(self, x: torch.Tensor, weight: torch.Tensor, moments: torch.Tensor):
        z = self.normalise(x)
        return self.normalise.denormalise(self.model(z, moments)), self.model.moments(z, weight)


def exportable(network: nn.Module, normalise: Normalise) -> KelvinModel:
    """The Kelvin model to export: with scene statistics when the network has :meth:`moments`."""
    return (SceneKelvinModel if hasattr(network, "moments") else KelvinModel)(network, normalise)
