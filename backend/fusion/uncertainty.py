"""A per-pixel uncertainty (1σ, K) for fused LST, from what makes fusion err.

Two things make a fused pixel uncertain whatever the method: how much the surface changed
between the reference and the target (MODIS's change, which the fine image must follow
without seeing it at 30 m), and how heterogeneous the fine reference is around the pixel
(detail the 1 km change cannot apportion). The model is

    σ² = a² + (b · |ΔC|)² + (c · h)²

with ΔC = C_t2 − C_ref (mean over the references) and h the standard deviation of the fine
reference in a 5 × 5 window. The coefficients of each method were fitted to the squared
errors against the sample generator's truth (non-negative least squares, then scaled so
that |error| ≤ σ for 68 % of pixels) by ``bench/bench_uncertainty.py``, which prints them
and the coverage on a season of another seed. For the deep model the fit gives b = 0: its
errors do not grow with MODIS's change (it learned changes), only with the detail. The
coefficients are a calibration on synthetic data: check the coverage on your own validation
dates (Evaluate reports it for predictions that have an uncertainty raster beside them)
before trusting the band elsewhere.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter

WINDOW = 5  # px, for the local heterogeneity of the fine reference
MARGIN = WINDOW // 2
# Each method's (a, b, c) is on its registry entry (backend/fusion/methods.py, FusionMethod.uncertainty),
# fitted by bench/bench_uncertainty.py.


def features(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(|ΔC|, h) from kernel-ordered inputs: fine_t1, coarse_t1[, fine_t3, coarse_t3], coarse_t2."""
    refs = arrays[:-1]
    fines, coarses = refs[0::2], refs[1::2]
    target = arrays[-1].astype(np.float64)
    delta = np.mean([np.abs(target - c) for c in coarses], axis=0)
    spreads = []
    for fine in fines:
        f = fine.astype(np.float64)
        valid = np.isfinite(f)
        v = np.where(valid, f, 0.0)
        n = uniform_filter(valid.astype(np.float64), WINDOW, mode="constant")
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = uniform_filter(v, WINDOW, mode="constant") / n
            var = uniform_filter(v * v, WINDOW, mode="constant") / n - mean * mean
        spreads.append(np.sqrt(np.maximum(var, 0.0)))
    return delta, np.mean(spreads, axis=0)


def sigma(arrays: list[np.ndarray], coefficients: tuple[float, float, float]) -> np.ndarray:
    """σ (K) per pixel; NaN where an input is missing (where the fusion predicts nothing either)."""
    a, b, c = coefficients
    delta, spread = features(arrays)
    out = np.sqrt(a * a + (b * delta) ** 2 + (c * spread) ** 2)
    valid = np.logical_and.reduce([np.isfinite(x) for x in arrays])
    return np.where(valid, out, np.nan).astype(np.float32)


def kernel(coefficients: tuple[float, float, float]):
    """A crop-mode tiler kernel writing σ for the tile (needs :data:`MARGIN` of context)."""

    def run(arrays, tile):
        return sigma(arrays, coefficients)[tile.inner]

    return run
