"""STTFN — Yin, Wu, Gao, Yang, Liu & Jiang (2020), "Spatiotemporal Fusion of Land Surface
Temperature Based on a Convolutional Neural Network", IEEE TGRS 59(2).

Built for LST. A multi-scale CNN learns the fine temperature *change* from a reference
date to the prediction date: three parallel branches (3×3, 5×5 and 7×7 kernels) read the
fine reference, the coarse reference and the coarse change; their features are merged
and refined by residual convolutions, and the fine prediction is F_ref + ΔF. With two
references (t1 before, t3 after), the forward (t1 → t2) and backward (t3 → t2)
predictions are blended by the paper's spatio-temporal consistency weight: each
direction weighs by the inverse of the coarse change it has to bridge, smoothed over
a 3×3 neighbourhood.

No official code exists: layer widths (64 features per branch, 4 refinement blocks)
follow the paper's description; the loss is the MSE of the prediction, as published,
applied to each direction when two references are trained.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .contract import ROLES_ONE_REFERENCE, ROLES_TWO_REFERENCES, Contract
from .recipe import Recipe


class _Refine(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, padding_mode="replicate"),
                                  nn.ReLU(True),
                                  nn.Conv2d(channels, channels, 3, padding=1, padding_mode="replicate"))

    def forward(self, x):
        return torch.relu(x + self.body(x))


class _Direction(nn.Module):
    """Predicts ΔF from (fine_ref, coarse_ref, coarse_target − coarse_ref)."""

    def __init__(self, features: int = 64, blocks: int = 4):
        super().__init__()
        self.scales = nn.ModuleList(
            nn.Sequential(nn.Conv2d(3, features, k, padding=k // 2, padding_mode="replicate"), nn.ReLU(True))
            for k in (3, 5, 7))
        self.merge = nn.Sequential(nn.Conv2d(3 * features, features, 1), nn.ReLU(True))
        self.refine = nn.Sequential(*[_Refine(features) for _ in range(blocks)])
        self.out = nn.Conv2d(features, 1, 3, padding=1, padding_mode="replicate")

    def forward(self, fine_ref, coarse_ref, coarse_target):
        x = torch.cat((fine_ref, coarse_ref, coarse_target - coarse_ref), 1)
        features = self.merge(torch.cat([s(x) for s in self.scales], 1))
        return fine_ref + self.out(self.refine(features))


class STTFN(nn.Module):
    def __init__(self, references: int = 1, features: int = 64, blocks: int = 4):
        super().__init__()
        self.references = references
        self.direction = _Direction(features, blocks)

    def predictions(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The per-direction predictions (what the loss sees when training two references)."""
        if self.references == 1:
            return [self.direction(x[:, 1:2], x[:, 0:1], x[:, 2:3])]
        target = x[:, 4:5]
        return [self.direction(x[:, 1:2], x[:, 0:1], target), self.direction(x[:, 3:4], x[:, 2:3], target)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        preds = self.predictions(x)
        if len(preds) == 1:
            return preds[0]
        change_prev = F.avg_pool2d((x[:, 4:5] - x[:, 0:1]).abs(), 3, 1, 1, count_include_pad=False)
        change_next = F.avg_pool2d((x[:, 4:5] - x[:, 2:3]).abs(), 3, 1, 1, count_include_pad=False)
        inv_prev, inv_next = 1.0 / (change_prev + 1e-6), 1.0 / (change_next + 1e-6)
        weight = inv_prev / (inv_prev + inv_next)
        return weight * preds[0] + (1 - weight) * preds[1]


def build(references: int = 1) -> nn.Module:
    """The network for ``references`` reference pairs (the registry's entry point)."""
    return STTFN(references)


def contract(references: int = 1) -> Contract:
    return Contract(ROLES_ONE_REFERENCE if references == 1 else ROLES_TWO_REFERENCES, size_multiple=1)


def _loss(net, modules, x, y, m):
    """The MSE of the prediction, as published, averaged over the directions trained (one per reference)."""
    import torch.nn.functional as F

    from .losses import keep_observed

    raws = net.network.predictions(x)
    preds = [keep_observed(p, y, m) for p in raws]
    return sum(F.mse_loss(p, y) for p in preds) / len(preds), preds[0], raws[0]


RECIPE = Recipe(_loss, learning_rate=1e-3)
