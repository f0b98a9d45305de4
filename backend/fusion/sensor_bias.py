"""Sensor-bias correction of the fine references, in the spirit of ubESTARFM (Yu et al. 2023).

Classical and deep fusion add MODIS's change to the fine reference, so whatever separates
the fine reference from MODIS on its own date passes into the fused image: Landsat and
MODIS differ by a bias that varies in space (emissivity, view angle, the time of the
overpass over a city or irrigated fields) and in time, and a gap-filled reference adds the
local level errors of its filling. ubESTARFM's "zero bias" step moves each fine reference
to MODIS's level in every moving window (fine − mean(fine) + mean(coarse) over the window's
similar pixels) and keeps its spatial detail, so the prediction follows MODIS's calibration.

Here the window is MODIS's footprint (the Gaussian of backend/fusion/consistency.py, σ =
half a coarse pixel), the same for every method, applied to the inputs before the method
runs, so STARFM, ESTARFM and ONNX models all take the corrected references:

    local_k = L(C_k − F_k)                      MODIS − Landsat around each pixel, date k
    "modis":   F_k' = F_k + local_k             ubESTARFM: the output is on MODIS's level
    "landsat": F_k' = F_k + local_k − offset_k  offset_k = the scene's mean of C_k − F_k:
                                                 local departures are removed, Landsat's
                                                 scene-wide calibration is kept

"landsat" removes what varies in space (local sensor differences, the errors of a
gap-filled reference) and keeps the fused image comparable with Landsat; "modis" also
takes MODIS's scene-wide calibration, as ubESTARFM does when it is validated against
in-situ LST. Neither can know a disagreement that appears on the target date alone
(MODIS is the only observation there): the evaluation's unbiased RMSE separates such a
level error from the spatial pattern. Window methods stay exact per tile: a tile reads
:func:`margin` more context.
"""

from __future__ import annotations

import numpy as np

from ..io.series import SeriesItem
from ..io.tiler import row_blocks
from .consistency import TRUNCATE, footprint

MODES = ("none", "landsat", "modis")
MODE_LABELS = (
    "None: the fine references as they are",
    "Local, Landsat level: remove the references' local departures from MODIS, keep Landsat's scene-wide level",
    "Local, MODIS level (ubESTARFM): move the references to MODIS's local level; the result follows MODIS",
)


def margin(sigma: float) -> int:
    """Context (fine pixels) the correction needs beyond what the method reads: one footprint."""
    return int(np.ceil(TRUNCATE * sigma))


def reference_offset(fine: SeriesItem, coarse: SeriesItem, grid, cache: dict, block_rows: int = 1024) -> float:
    """The scene's mean MODIS − Landsat (K) over pixels valid in both, computed once per pair."""
    key = ("offset", str(fine.path), str(coarse.path))
    if key not in cache:
        n, total = 0, 0.0
        for window, _, _ in row_blocks(grid, block_rows):
            d = coarse.read(window).data.astype(np.float64) - fine.read(window).data
            d = d[np.isfinite(d)]
            n, total = n + d.size, total + d.sum()
        cache[key] = total / n if n else 0.0
    return cache[key]


def debias(fine: np.ndarray, coarse: np.ndarray, sigma: float, offset: float | None) -> np.ndarray:
    """``fine`` moved to MODIS's local level (``offset`` None), or by its local departure from ``offset``."""
    local = footprint(coarse.astype(np.float64) - fine, sigma)
    shift = local if offset is None else local - offset
    return (fine + np.where(np.isfinite(shift), shift, 0.0)).astype(np.float32)


def debias_references(arrays: list[np.ndarray], sigma: float, offsets: tuple[float, ...] | None) -> list[np.ndarray]:
    """Kernel-ordered inputs (fine, coarse[, fine, coarse], coarse_t2) with each fine reference corrected;
    ``offsets`` per pair for "landsat", None for "modis"."""
    arrays = list(arrays)
    for k in range(0, len(arrays) - 1, 2):
        arrays[k] = debias(arrays[k], arrays[k + 1], sigma, None if offsets is None else offsets[k // 2])
    return arrays


def wrap_kernel(kernel, sigma: float, offsets: tuple[float, ...] | None):
    """A kernel that corrects the fine references of its arrays before ``kernel`` runs."""
    def corrected(arrays: list[np.ndarray], tile) -> np.ndarray:
        return kernel(debias_references(arrays, sigma, offsets), tile)

    return corrected
