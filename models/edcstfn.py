"""EDCSTFN — Tan, Di, Yue, Yang & Li (2019), "An Enhanced Deep Convolutional Model for
Spatiotemporal Image Fusion", Remote Sensing 11(24), 2898.

A fine encoder reads the fine reference F1; a residual encoder reads the coarse change
context (C1, F1, C2); their 128-channel features are added and a decoder maps them to
the fine image at t2. Encoders 32/64/128 channels, 3×3 convolutions, as published.
Loss (see ``models.losses``): MSE + feature loss (MSE between the features of a frozen
autoencoder encoder, pre-trained on fine images) + 0.8·(1 − MS-SSIM).

Departures, and why: one band (LST) instead of multispectral; inputs arrive already on
the fine grid (MODIS resampled by the pipeline), so the network's internal ×16
upsampling is dropped; with two references the two predictions are blended by inverse
residual magnitude as in the authors' code, computed on the fused features.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import conv3x3
from .contract import ROLES_ONE_REFERENCE, ROLES_TWO_REFERENCES, Contract
from .recipe import Extra, Recipe


def _encoder(cin: int, last_relu: bool = True) -> nn.Sequential:
    layers = [conv3x3(cin, 32), nn.ReLU(True), conv3x3(32, 64), nn.ReLU(True), conv3x3(64, 128)]
    return nn.Sequential(*layers, nn.ReLU(True)) if last_relu else nn.Sequential(*layers)


class EDCSTFN(nn.Module):
    def __init__(self, references: int = 1):
        super().__init__()
        self.references = references
        self.fine_encoder = _encoder(1)
        self.residual_encoder = _encoder(3, last_relu=False)
        self.decoder = nn.Sequential(conv3x3(128, 64), nn.ReLU(True), conv3x3(64, 32), nn.ReLU(True),
                                     nn.Conv2d(32, 1, 1))

    def _branch(self, coarse_ref, fine_ref, coarse_target):
        residual = self.residual_encoder(torch.cat((coarse_ref, fine_ref, coarse_target), 1))
        return self.fine_encoder(fine_ref) + residual, residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.references == 1:
            features, _ = self._branch(x[:, 0:1], x[:, 1:2], x[:, 2:3])
            return self.decoder(features)
        prev, prev_res = self._branch(x[:, 0:1], x[:, 1:2], x[:, 4:5])
        nxt, next_res = self._branch(x[:, 2:3], x[:, 3:4], x[:, 4:5])
        inv_prev = 1.0 / (prev_res.abs() + 1e-8)
        inv_next = 1.0 / (next_res.abs() + 1e-8)
        weight = inv_prev / (inv_prev + inv_next)
        return self.decoder(weight * prev + (1 - weight) * nxt)


def build(references: int = 1) -> nn.Module:
    """The network for ``references`` reference pairs (the registry's entry point)."""
    return EDCSTFN(references)


def contract(references: int = 1) -> Contract:
    return Contract(ROLES_ONE_REFERENCE if references == 1 else ROLES_TWO_REFERENCES, size_multiple=1)


class FeatureAutoencoder(nn.Module):
    """The 'pretrained' network of EDCSTFN's feature loss: an autoencoder of fine images."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(conv3x3(1, 32), nn.ReLU(True), conv3x3(32, 64, 2), nn.ReLU(True),
                                     conv3x3(64, 128, 2), nn.ReLU(True))
        self.decoder = nn.Sequential(nn.Upsample(scale_factor=4, mode="bilinear", align_corners=False),
                                     conv3x3(128, 32), nn.ReLU(True), nn.Conv2d(32, 1, 1))

    def forward(self, x):
        h, w = x.shape[-2:]
        return self.decoder(self.encoder(x))[..., :h, :w]


# ------------------------------------------------------------------ training recipe

def _loss(net, modules, x, y, m):
    """MSE + feature loss (the frozen autoencoder's encoder) + 0.8·(1 − MS-SSIM), on observed pixels."""
    import torch.nn.functional as F

    from .losses import keep_observed, ms_ssim

    raw = net(x)
    pred = keep_observed(raw, y, m)
    encoder = modules["feature_ae"].encoder
    loss = F.mse_loss(pred, y) + F.mse_loss(encoder(pred), encoder(y)) + 0.8 * (1 - ms_ssim(pred, y))
    return loss, pred, raw


def _pretrain(modules, optimisers, x, contract: Contract, autocast) -> float:
    """One step of the feature autoencoder: reconstruct the fine reference patches."""
    import torch.nn.functional as F

    k = contract.roles.index("fine_t1")
    fine = x[:, k:k + 1]
    ae, opt = modules["feature_ae"], optimisers["feature_ae"]
    ae.train()
    opt.zero_grad()
    with autocast():
        loss = F.mse_loss(ae(fine), fine)
    loss.backward()
    opt.step()
    return loss.item()


RECIPE = Recipe(_loss, learning_rate=1e-3,
                extras=(("feature_ae", Extra(lambda contract: FeatureAutoencoder(), learning_rate=1e-3,
                                             betas=(0.9, 0.999), frozen=True)),),
                pretrain=_pretrain)
