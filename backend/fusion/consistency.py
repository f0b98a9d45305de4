"""Coarse-consistency (residual) correction: the fused image must agree with MODIS at MODIS's scale.

Classical and deep fusion both ignore the one physical constraint the data give: seen at
1 km, the fine prediction should look like what MODIS observed at the target date, once the
sensors' offset is removed. Thermal sharpening (DisTrad, pyDMS) ends with this residual
step; spatio-temporal fusion usually does not, which is why ESTARFM scales a heat wave's
near-uniform warming by its conversion coefficient instead of passing it through.

MODIS on the fine grid, C, is already an observation at MODIS's scale. With L the MODIS
footprint applied to a fine image — a Gaussian point-spread of σ = half a coarse pixel
(FWHM ≈ 1.2 coarse pixels, the usual approximation of MODIS's triangular PSF), as a
nodata-aware normalised convolution — and each reference pair (F_k, C_k):

    offset_k   = C_k − L(F_k)                  MODIS − Landsat at MODIS's scale on reference date k
    residual   = L(C_2 − mean_k(offset_k) − L(P))
    corrected  = P + residual

so L(corrected) equals MODIS at t2 less the offset measured on the reference dates: the
method keeps the fine detail it predicted and MODIS decides the coarse-scale level. The
residual is itself passed through the footprint, so MODIS's per-pixel noise and the
resampling's coarse-pixel structure are not added to the fine image.

What it cannot know: MODIS's offset from Landsat changes from date to date (0.5–1 K is
common, more on some days); the correction assumes the reference dates' offset holds at t2,
so a change of offset passes into the result (as it does in STARFM's own change term).
Measured on two sample seasons (bench/bench_lst_options.py) it helps where a method mis-scales
a scene-wide change (ESTARFM, heat waves) or drifts in level (networks), and is neutral for
STARFM: it is on by default for ESTARFM and ONNX models, off for STARFM. A tile needs 6σ of
extra context (two footprints deep): :func:`margin` gives it, and window methods stay exact
per tile; networks are corrected in a second pass over their blended prediction (fuse.py).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from rasterio.windows import Window
from scipy.ndimage import gaussian_filter

from ..io.grid import MODIS_PIXEL_M
from ..io.tiler import Tile

TRUNCATE = 3.0  # the footprint is cut at 3σ


def sigma_px(fine_pixel_m: float, coarse_pixel_m: float = MODIS_PIXEL_M) -> float:
    """σ of the footprint in fine pixels: half a coarse pixel."""
    return 0.5 * coarse_pixel_m / fine_pixel_m


def margin(sigma: float) -> int:
    """Context (fine pixels) the correction needs on every side of a tile: two footprints deep."""
    return 2 * int(np.ceil(TRUNCATE * sigma))


def footprint(image: np.ndarray, sigma: float) -> np.ndarray:
    """L(image): the nodata-aware Gaussian footprint average (NaN where no valid pixel is within reach)."""
    valid = np.isfinite(image)
    values = np.where(valid, image, 0.0).astype(np.float64)
    num = gaussian_filter(values, sigma, mode="constant", truncate=TRUNCATE)
    den = gaussian_filter(valid.astype(np.float64), sigma, mode="constant", truncate=TRUNCATE)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 1e-3, num / den, np.nan)


def residual(prediction: np.ndarray, pairs: list[tuple[np.ndarray, np.ndarray]], coarse_target: np.ndarray,
             sigma: float) -> np.ndarray:
    """The smooth correction to add to ``prediction`` (zero where it cannot be computed).

    Every footprint averages the same pixels — those where the prediction and all inputs are
    valid — so a gap in one of them does not tilt the comparison around it.
    """
    valid = np.isfinite(prediction)
    for f, _ in pairs:
        valid &= np.isfinite(f)

    def seen(image: np.ndarray) -> np.ndarray:
        return footprint(np.where(valid, image, np.nan), sigma)

    # mean_k (C_k − L(F_k)) = mean(C) − L(mean(F)): with one mask the footprint is linear, so one footprint
    # serves every pair (a season's 25 pairs cost what one does).
    mean_coarse = sum(c.astype(np.float64) for _, c in pairs) / len(pairs)
    mean_fine = sum(f.astype(np.float64) for f, _ in pairs) / len(pairs)
    offset = mean_coarse - seen(mean_fine)
    r = footprint(coarse_target - offset - seen(prediction), sigma)
    return np.where(np.isfinite(r), r, 0.0)


def correct(prediction: np.ndarray, arrays: list[np.ndarray], sigma: float) -> np.ndarray:
    """``prediction`` corrected with the kernel-ordered inputs (fine_t1, coarse_t1[, fine_t3, coarse_t3], coarse_t2)."""
    refs = arrays[:-1]
    pairs = [(refs[k], refs[k + 1]) for k in range(0, len(refs), 2)]
    out = prediction + residual(prediction, pairs, arrays[-1], sigma)
    return out.astype(np.float32)


def wrap_kernel(kernel, sigma: float):
    """A window-method kernel (``crop``) that predicts :func:`margin` pixels beyond its tile (within the
    read window, which holds the method's margin plus this one), corrects the prediction there and
    returns it for the tile, so the footprint sees whole context and the result is exact per tile.
    """
    extra = margin(sigma)

    def corrected(arrays: list[np.ndarray], tile: Tile) -> np.ndarray:
        rows, cols = tile.inner
        height, width = arrays[0].shape
        r0, r1 = max(0, rows.start - extra), min(height, rows.stop + extra)
        c0, c1 = max(0, cols.start - extra), min(width, cols.stop + extra)
        read = tile.read
        wider = replace(tile, window=Window(read.col_off + c0, read.row_off + r0, c1 - c0, r1 - r0),
                        inner=(slice(r0, r1), slice(c0, c1)))
        prediction = kernel(arrays, wider)
        sub = [a[r0:r1, c0:c1] for a in arrays]
        out = correct(prediction, sub, sigma)
        return out[rows.start - r0: rows.stop - r0, cols.start - c0: cols.stop - c0]

    return corrected
