"""MLFF-GAN — Song, Zhang, Ma, Li & Zhou (2022), "MLFF-GAN: A Multilevel Feature Fusion
With GAN for Spatiotemporal Remote Sensing Images", IEEE TGRS 60.

Generator: two five-level encoders (16, 32, 64, 128, 256 channels, residual blocks), one
for coarse images (applied to C1 and C2) and one for the fine reference F1. At each level
the fine features are given the statistics of the C2 features by adaptive instance
normalisation (AdaIN), and an attention map computed from the difference of the C2 and
C1 features (1×1 convolutions, batch norm, sigmoid) mixes the C2 features with the
AdaIN'd fine features. A decoder of transposed convolutions with skip connections
returns the fine image at t2. Discriminator: a PatchGAN (LSGAN objective).
Generator loss: 1e-2·GAN + L1 + (1 − MS-SSIM) + (1 − cosine similarity).

Departures, and why: one band (LST); inputs already on the fine grid (no internal
upsampling); the discriminator is conditioned on the three input channels (the fake or
real fine image is concatenated to them), as in conditional PatchGAN practice; sizes
must be multiples of 16 (four stride-2 levels), which ``PaddedModel`` provides.

Scene statistics: AdaIN's means and spreads are those of the whole image the network sees,
so a tile of a large scene would get its own and tiles would not agree (up to ~0.5 K). The
exported graph therefore takes them from outside (models/contract.py's SceneKelvinModel):
:meth:`Generator.moments` gives a tile's weighted sums, a first pass over the scene adds
them up, and :meth:`Generator.forward` with ``moments`` uses the scene's statistics. In
training, each patch keeps its own, as in the paper.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import ResBlock
from .contract import ROLES_ONE_REFERENCE, Contract
from .recipe import Extra, Recipe

CHANNELS = (16, 32, 64, 128, 256)


class _Encoder(nn.Module):
    def __init__(self, cin: int = 1):
        super().__init__()
        c = CHANNELS
        self.levels = nn.ModuleList([nn.Sequential(nn.Conv2d(cin, c[0], 7, 1, 3), ResBlock(c[0]))] + [
            nn.Sequential(nn.Conv2d(c[i - 1], c[i], 3, 2, 1), ResBlock(c[i])) for i in range(1, 5)])

    def forward(self, x):
        out = []
        for level in self.levels:
            x = level(x)
            out.append(x)
        return out


EPS = 1e-5


def adain(content: torch.Tensor, style: torch.Tensor, eps: float = EPS, stats=None) -> torch.Tensor:
    """Give ``content`` the per-channel mean and standard deviation of ``style`` (each its own, or the
    scene's: ``stats`` = (content mean, content std, style mean, style std), each (1, C, 1, 1))."""
    if stats is not None:
        c_mean, c_std, s_mean, s_std = stats
    else:
        c_mean = content.mean(dim=(2, 3), keepdim=True)
        c_std = (content.var(dim=(2, 3), keepdim=True) + eps).sqrt()
        s_mean = style.mean(dim=(2, 3), keepdim=True)
        s_std = (style.var(dim=(2, 3), keepdim=True) + eps).sqrt()
    return (content - c_mean) / c_std * s_std + s_mean


class _Attention(nn.Module):
    """Mixes coarse-t2 features with AdaIN'd fine features by a map learnt from the coarse change."""

    def __init__(self, channels: int):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels))
        self.b = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels))
        self.m = nn.Sequential(nn.Conv2d(channels, 1, 1), nn.BatchNorm2d(1), nn.Sigmoid())

    def forward(self, coarse_t2, coarse_t1, fine):
        mask = self.m(self.a(coarse_t2) - self.b(coarse_t1))
        return coarse_t2 * mask + fine * (1 - mask)


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.LeakyReLU(), ResBlock(cout))


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        c = CHANNELS
        self.coarse_net = _Encoder()
        self.fine_net = _Encoder()
        self.attention = nn.ModuleList(_Attention(ch) for ch in c)
        self.up = nn.ModuleList([_up(c[4] * 2, c[3]), _up(c[3] * 2, c[2]), _up(c[2] * 2, c[1]), _up(c[1] * 2, c[0])])
        self.head = nn.Sequential(ResBlock(c[0] * 2), nn.Conv2d(c[0] * 2, c[0], 1), ResBlock(c[0]),
                                  nn.Conv2d(c[0], 1, 1))

    # Length of the moments vector: per level, Σw and Σw·x, Σw·x² of the fine and the coarse-t2 features.
    MOMENTS = sum(1 + 4 * c for c in CHANNELS)

    def moments(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Weighted sums over (N, H, W) of each level's fine-reference and coarse-t2 features, flat
        (``MOMENTS``): added up over a scene's tiles (``weight`` 1 on the pixels a tile owns, 0 on its
        overlap and padding), they give the scene's AdaIN statistics."""
        import torch.nn.functional as F

        f1, c2 = self.fine_net(x[:, 1:2]), self.coarse_net(x[:, 2:3])
        parts = []
        for level, (f, c) in enumerate(zip(f1, c2)):
            w = F.avg_pool2d(weight, 2**level) * 4**level if level else weight
            parts += [w.sum().reshape(1)]
            parts += [(w * t).sum(dim=(0, 2, 3)) for t in (f, f * f, c, c * c)]
        return torch.cat(parts)

    @staticmethod
    def statistics(moments: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
        """Per level, AdaIN's (content mean, content std, style mean, style std) from summed :meth:`moments`."""
        stats, k = [], 0
        for c in CHANNELS:
            n = moments[k].clamp(min=1.0)
            sf, sff, sc, scc = (moments[k + 1 + j * c: k + 1 + (j + 1) * c] / n for j in range(4))
            shape = (1, c, 1, 1)
            stats.append((sf.reshape(shape), ((sff - sf * sf).clamp(min=0) + EPS).sqrt().reshape(shape),
                          sc.reshape(shape), ((scc - sc * sc).clamp(min=0) + EPS).sqrt().reshape(shape)))
            k += 1 + 4 * c
        return stats

    def forward(self, x: torch.Tensor, moments: torch.Tensor | None = None) -> torch.Tensor:
        coarse_t1, fine_t1, coarse_t2 = x[:, 0:1], x[:, 1:2], x[:, 2:3]
        c2 = self.coarse_net(coarse_t2)
        c1 = self.coarse_net(coarse_t1)
        f1 = self.fine_net(fine_t1)
        scene = self.statistics(moments) if moments is not None else [None] * len(CHANNELS)
        fused = [att(a, b, adain(f, a, stats=st)) for att, a, b, f, st in zip(self.attention, c2, c1, f1, scene)]
        y = self.up[0](torch.cat((fused[4], c2[4]), 1))
        for level, up in zip((3, 2, 1), self.up[1:]):
            y = up(torch.cat((fused[level], y), 1))
        return self.head(torch.cat((fused[0], y), 1))


class Discriminator(nn.Module):
    """PatchGAN: real/fake scores for overlapping patches of (inputs, fine image)."""

    def __init__(self, cin: int = 4, features: int = 64, layers: int = 3):
        super().__init__()
        seq = [nn.Conv2d(cin, features, 4, 2, 2), nn.LeakyReLU(0.2, True)]
        nf = features
        for _ in range(1, layers):
            seq += [nn.Conv2d(nf, min(nf * 2, 512), 4, 2, 2), nn.BatchNorm2d(min(nf * 2, 512)),
                    nn.LeakyReLU(0.2, True)]
            nf = min(nf * 2, 512)
        seq += [nn.Conv2d(nf, min(nf * 2, 512), 4, 1, 2), nn.BatchNorm2d(min(nf * 2, 512)), nn.LeakyReLU(0.2, True),
                nn.Conv2d(min(nf * 2, 512), 1, 4, 1, 2)]
        self.model = nn.Sequential(*seq)

    def forward(self, inputs: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
        return self.model(torch.cat((inputs, fine), 1))


def build(references: int = 1) -> nn.Module:
    """The network for ``references`` reference pairs (the registry's entry point)."""
    return Generator()


def contract(references: int = 1) -> Contract:
    if references != 1:
        raise ValueError("MLFF-GAN uses one reference pair; build the patches with REFERENCES = one.")
    return Contract(ROLES_ONE_REFERENCE, size_multiple=16)


# ------------------------------------------------------------------ training recipe

def _loss(net, modules, x, y, m):
    """1e-2·GAN + L1 + (1 − MS-SSIM) + (1 − cosine similarity), on observed pixels."""
    import torch.nn.functional as F

    from .losses import cosine_similarity, keep_observed, lsgan, ms_ssim

    raw = net(x)
    pred = keep_observed(raw, y, m)
    adversarial = lsgan(modules["discriminator"](x, pred), True)
    loss = 1e-2 * adversarial + F.l1_loss(pred, y) + (1 - ms_ssim(pred, y)) + (1 - cosine_similarity(pred, y))
    return loss, pred, raw


def _discriminator_step(modules, optimisers, x, y, m, pred, autocast) -> None:
    """The PatchGAN's LSGAN update after each generator step."""
    from .losses import keep_observed, lsgan

    disc, opt = modules["discriminator"], optimisers["discriminator"]
    opt.zero_grad()
    with autocast():
        real = lsgan(disc(x, keep_observed(y, y, m)), True)
        fake = lsgan(disc(x, pred.detach()), False)
        d_loss = 0.5 * (real + fake)
    d_loss.backward()
    opt.step()


RECIPE = Recipe(_loss, learning_rate=2e-4, betas=(0.5, 0.999),
                extras=(("discriminator", Extra(lambda contract: Discriminator(contract.channels + 1))),),
                after_step=_discriminator_step)
