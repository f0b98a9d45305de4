"""The survey's six fusion metrics plus MAE, bias, unbiased RMSE and R², each defined once.

Every metric uses only the pixels valid (finite) in both the prediction and the reference.
Inputs are Kelvin; differences (RMSE, MAE, bias, ubRMSE) are the same in °C. Three metrics
depend on the temperature scale because they use absolute levels, so the unit they are
computed in is an explicit choice (``unit``), reported with them:

- **RMSE** = sqrt(mean((p − r)²)); **MAE** = mean(|p − r|); **bias** = mean(p − r) (positive:
  the prediction is too warm); **ubRMSE** = sqrt(RMSE² − bias²), the RMSE left once the mean
  offset is removed (Yu et al. 2023 report it for LST fusion).
- **R²** = 1 − Σ(p − r)² / Σ(r − mean r)², the coefficient of determination of the prediction
  as an estimate of the reference (not CC², which ignores bias and scale); can be negative.
- **CC** = Pearson correlation of p and r.
- **PSNR** = 10 · log10(R² / MSE) dB with R = max(r) − min(r), the reference's data range in
  the image (per date). Being a difference over a difference, it does not depend on the unit.
- **SSIM** (Wang et al. 2004): Gaussian window σ = 1.5 truncated at 5 px (11 × 11), K1 = 0.01,
  K2 = 0.03, data range R as above, population (not sample) covariances, averaged over the
  valid pixels at least 5 px from the image border — scikit-image's ``structural_similarity``
  with ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=R`` on images
  without nodata. With nodata, local means, variances and covariance are normalised Gaussian
  averages over the valid neighbours only, so a cloud does not drag its neighbours' SSIM down.
  Unit-dependent: the luminance term compares mean levels (in Kelvin it is ~1 everywhere).
- **SAM**: the angle in degrees between the prediction and the reference taken as vectors of
  their valid pixels, 2·atan2(‖p̂ − r̂‖, ‖p̂ + r̂‖) with unit vectors p̂, r̂ (stable for small angles);
  for several bands, the mean of the per-band angles. Unit-dependent (an offset turns vectors).
- **ERGAS** = 100 · (h/l) · sqrt(mean over bands of (RMSE_b / μ_b)²), h/l the ratio of the
  fine to the coarse pixel size (30 m / 926.6 m for Landsat and MODIS by default), μ_b the mean
  reference in the chosen unit. Unit-dependent; in °C it grows without bound as μ nears 0 °C.

Where the literature differs: some STF codes (e.g. EDCSTFN's evaluate.py) compute SAM per pixel
across bands and ERGAS without the h/l factor or with the prediction's mean; we follow the
definitions above (Wald 2000 for ERGAS). The survey's authors' tables are in °C.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from ..errors import EmptyDataError, InputError
from ..io.grid import MODIS_PIXEL_M
from ..io.lst_raster import KELVIN_OFFSET

UNITS = ("K", "C")  # the scale of the unit-dependent metrics (SSIM, SAM, ERGAS)
LANDSAT_PIXEL_M = 30.0
DEFAULT_RATIO = LANDSAT_PIXEL_M / MODIS_PIXEL_M
SSIM_SIGMA, SSIM_RADIUS, SSIM_K1, SSIM_K2 = 1.5, 5, 0.01, 0.03


@dataclass(frozen=True)
class Metric:
    """How a metric reads in tables: its unit (``{t}`` = the temperature unit) and which way is better."""

    name: str
    title: str
    unit: str
    better: str  # "lower", "higher" or "zero"
    unit_dependent: bool = False


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("rmse", "RMSE", "K", "lower"),
    Metric("mae", "MAE", "K", "lower"),
    Metric("bias", "Bias", "K", "zero"),
    Metric("ubrmse", "ubRMSE", "K", "lower"),
    Metric("r2", "R²", "", "higher"),
    Metric("cc", "CC", "", "higher"),
    Metric("ssim", "SSIM", "", "higher", True),
    Metric("psnr", "PSNR", "dB", "higher"),
    Metric("sam", "SAM", "°", "lower", True),
    Metric("ergas", "ERGAS", "", "lower", True),
)}
# Metrics that need no neighbourhood: the ones broken down by class and by fill status.
POINT_METRICS = ("rmse", "mae", "bias", "ubrmse", "cc")


def _bands(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 2:
        return a[None]
    if a.ndim != 3:
        raise InputError(f"{name} must be an image (rows × columns) or a stack of bands; got shape {a.shape}.")
    return a


def _check_unit(unit: str) -> None:
    if unit not in UNITS:
        raise InputError(f"Unknown metric unit {unit!r}: choose one of {', '.join(UNITS)}.")


def valid_pair(prediction: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both images as float64 band stacks and the mask of pixels valid in both."""
    p, r = _bands(prediction, "prediction"), _bands(reference, "reference")
    if p.shape != r.shape:
        raise InputError(f"The prediction ({'×'.join(map(str, p.shape))}) and the reference "
                         f"({'×'.join(map(str, r.shape))}) differ in size.")
    mask = np.isfinite(p) & np.isfinite(r)
    return p, r, mask


def point_metrics(p: np.ndarray, r: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, bias, ubRMSE, R², CC and n of matching 1-D samples (all valid)."""
    n = p.size
    if n == 0:
        return {"n": 0, **{k: float("nan") for k in ("rmse", "mae", "bias", "ubrmse", "r2", "cc")}}
    e = p - r
    mse = float(np.mean(e * e))
    bias = float(np.mean(e))
    dr = r - r.mean()
    dp = p - p.mean()
    ss_tot = float(np.sum(dr * dr))
    ss_p = float(np.sum(dp * dp))
    return {
        "n": int(n),
        "rmse": mse ** 0.5,
        "mae": float(np.mean(np.abs(e))),
        "bias": bias,
        "ubrmse": max(mse - bias * bias, 0.0) ** 0.5,
        "r2": 1.0 - float(np.sum(e * e)) / ss_tot if ss_tot > 0 else float("nan"),
        "cc": float(np.sum(dp * dr)) / (ss_p * ss_tot) ** 0.5 if ss_p > 0 and ss_tot > 0 else float("nan"),
    }


def _gauss(a: np.ndarray) -> np.ndarray:
    return gaussian_filter(a, SSIM_SIGMA, truncate=SSIM_RADIUS / SSIM_SIGMA, mode="reflect")


def ssim(prediction: np.ndarray, reference: np.ndarray, data_range: float, rows: int = 512) -> float:
    """Mean SSIM of one band (Wang et al. 2004; see the module docstring), nodata-aware.

    Works in row blocks with a halo of the window's radius, so memory stays bounded and the
    result equals the whole-image computation.
    """
    p, r = np.asarray(prediction, np.float64), np.asarray(reference, np.float64)
    valid = np.isfinite(p) & np.isfinite(r)
    if not valid.any() or not data_range > 0:
        return float("nan")  # a constant reference has no structure to compare (0/0)
    # Moments are taken about the reference's mean: variances of a few kelvin on values near 300 K
    # would otherwise lose their digits to cancellation. Only the luminance term needs the means.
    shift = float(np.mean(r[valid]))
    height, width = valid.shape
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    pad = SSIM_RADIUS
    inner = np.zeros_like(valid)
    if height > 2 * pad and width > 2 * pad:
        inner[pad:height - pad, pad:width - pad] = True
    else:  # too small for a border: average over every valid pixel
        inner[:] = True
    total, count = 0.0, 0
    for top in range(0, height, rows):
        bottom = min(top + rows, height)
        lo, hi = max(top - pad, 0), min(bottom + pad, height)
        sl = slice(lo, hi)
        v = valid[sl]
        w = v.astype(np.float64)
        x = np.where(v, r[sl] - shift, 0.0)
        y = np.where(v, p[sl] - shift, 0.0)
        # Rows kept are a radius away from the slice's cut edges, so they equal the whole-image filter
        # (which reflects at the image's own edges, as the slice does there).
        wsum = _gauss(w)
        with np.errstate(invalid="ignore", divide="ignore"):
            mx = _gauss(w * x) / wsum
            my = _gauss(w * y) / wsum
            vx = np.maximum(_gauss(w * x * x) / wsum - mx * mx, 0.0)
            vy = np.maximum(_gauss(w * y * y) / wsum - my * my, 0.0)
            cxy = _gauss(w * x * y) / wsum - mx * my
            ux, uy = mx + shift, my + shift
            s = ((2 * ux * uy + c1) * (2 * cxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        keep = (v & inner[sl])[top - lo: top - lo + bottom - top]
        total += float(np.sum(s[top - lo: top - lo + bottom - top][keep]))
        count += int(keep.sum())
    return total / count if count else float("nan")


def sam(p: np.ndarray, r: np.ndarray) -> float:
    """Angle (degrees) between two vectors, stable for small angles."""
    np_, nr = np.linalg.norm(p), np.linalg.norm(r)
    if np_ == 0 or nr == 0:
        return float("nan")
    a, b = p / np_, r / nr
    return float(np.degrees(2 * np.arctan2(np.linalg.norm(a - b), np.linalg.norm(a + b))))


def compute(
    prediction: np.ndarray,
    reference: np.ndarray,
    resolution_ratio: float = DEFAULT_RATIO,
    unit: str = "K",
    mask: np.ndarray | None = None,
) -> dict[str, float]:
    """Every metric of :data:`METRICS` (and ``n``) for a prediction against a reference, both in Kelvin.

    ``mask`` restricts the comparison further (e.g. to pixels every compared method covers).
    Raises :class:`EmptyDataError` when no pixel is valid in both.
    """
    _check_unit(unit)
    if not resolution_ratio > 0:
        raise InputError(f"The fine/coarse resolution ratio must be positive, not {resolution_ratio}.")
    p, r, valid = valid_pair(prediction, reference)
    if mask is not None:
        valid &= np.broadcast_to(mask, valid.shape)
    if not valid.any():
        raise EmptyDataError("The prediction and the reference have no valid pixel in common.")
    out = point_metrics(p[valid], r[valid])
    offset = KELVIN_OFFSET if unit == "C" else 0.0
    rv = r[valid]
    data_range = float(rv.max() - rv.min())
    mse = out["rmse"] ** 2
    out["psnr"] = 10 * np.log10(data_range ** 2 / mse) if mse > 0 and data_range > 0 else float("inf")
    ssims, angles, ergas_terms = [], [], []
    for pb, rb, vb in zip(p, r, valid):
        if not vb.any():
            continue
        ssims.append(ssim(np.where(vb, pb - offset, np.nan), rb - offset, data_range))
        angles.append(sam(pb[vb] - offset, rb[vb] - offset))
        mu = float(np.mean(rb[vb])) - offset
        rmse_b = float(np.sqrt(np.mean((pb[vb] - rb[vb]) ** 2)))
        ergas_terms.append((rmse_b / mu) ** 2 if mu != 0 else float("inf"))
    out["ssim"] = float(np.mean(ssims))
    out["sam"] = float(np.mean(angles))
    out["ergas"] = float(100 * resolution_ratio * np.sqrt(np.mean(ergas_terms)))
    out["data_range"] = data_range
    return out


def breakdown(
    prediction: np.ndarray,
    reference: np.ndarray,
    groups: np.ndarray,
    names: Callable[[int], str],
    mask: np.ndarray | None = None,
) -> dict[str, dict[str, float]]:
    """The point metrics per group code of ``groups`` (an integer raster; codes < 0 are ignored)."""
    p, r, valid = valid_pair(prediction, reference)
    g = np.broadcast_to(groups, valid.shape)
    if mask is not None:
        valid &= np.broadcast_to(mask, valid.shape)
    valid &= g >= 0
    out = {}
    for code in np.unique(g[valid]):
        sel = valid & (g == code)
        out[names(int(code))] = point_metrics(p[sel], r[sel])
    return out
