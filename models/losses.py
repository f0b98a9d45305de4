"""Loss terms of the published models, and the mask that makes them cloud-aware.

Images here are standardised LST (the training set's fine mean/std), so SSIM's data
range is taken from the target batch rather than a fixed 1.0 or 255.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang, Simoncelli & Bovik (2003)


def _gaussian_window(size: int = 11, sigma: float = 1.5, device=None, dtype=None) -> torch.Tensor:
    coords = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).view(1, 1, size, size)


def _ssim_terms(x, y, window, data_range):
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = F.conv2d(x, window), F.conv2d(y, window)
    sxx = F.conv2d(x * x, window) - mu_x**2
    syy = F.conv2d(y * y, window) - mu_y**2
    sxy = F.conv2d(x * y, window) - mu_x * mu_y
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return (luminance * cs).mean(), cs.mean()


def ms_ssim(x: torch.Tensor, y: torch.Tensor, window_size: int = 11) -> torch.Tensor:
    """Multi-scale SSIM of single-band batches, with as many scales as the patch size allows.

    A 95 px patch holds three scales of an 11 px window (95, 47, 23); the published five
    weights are renormalised over the scales used.
    """
    data_range = (y.amax() - y.amin()).clamp_min(1e-3).detach()
    window = _gaussian_window(window_size, device=x.device, dtype=x.dtype)
    levels = 1
    while levels < len(MS_SSIM_WEIGHTS) and min(x.shape[-2:]) // 2 ** levels >= window_size:
        levels += 1
    weights = torch.tensor(MS_SSIM_WEIGHTS[:levels], device=x.device, dtype=x.dtype)
    weights = weights / weights.sum()
    values = []
    for level in range(levels):
        ssim, cs = _ssim_terms(x, y, window, data_range)
        values.append(ssim if level == levels - 1 else cs)
        if level < levels - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    values = torch.stack(values).clamp_min(1e-6)
    return torch.prod(values ** weights)


def cosine_similarity(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cosine between each predicted and target patch taken as vectors (the SAM term for one band)."""
    return F.cosine_similarity(x.flatten(1), y.flatten(1), dim=1, eps=1e-6).mean()


def keep_observed(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cloud-aware training: where the target was not observed, show the loss the target itself.

    Every loss term then sees no error there and sends no gradient to those pixels, so
    the network never learns from gap-filled (interpolated) values.
    """
    return torch.where(mask > 0.5, prediction, target.detach())


def lsgan(scores: torch.Tensor, real: bool) -> torch.Tensor:
    return F.mse_loss(scores, torch.full_like(scores, 1.0 if real else 0.0))


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian (truncated at 3σ, reflected at the borders) of a (N, 1, H, W) batch."""
    radius = max(1, int(round(3 * sigma)))
    radius = min(radius, x.shape[-1] - 1, x.shape[-2] - 1)
    coords = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, g.view(1, 1, 1, -1))
    return F.conv2d(x, g.view(1, 1, -1, 1))


def coarse_consistency(prediction: torch.Tensor, fine_t1: torch.Tensor, coarse_change: torch.Tensor,
                       sigma: float) -> torch.Tensor:
    """Physics-informed term: seen through MODIS's footprint (a Gaussian of σ px), the predicted change
    from the fine reference must equal MODIS's change, ``coarse_change`` (in the prediction's units).
    The same constraint as backend/fusion/consistency.py, learned instead of imposed."""
    return F.mse_loss(gaussian_blur(prediction - fine_t1, sigma), gaussian_blur(coarse_change, sigma))
