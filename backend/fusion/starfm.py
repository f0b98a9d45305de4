"""STARFM for land surface temperature (Gao, Masek, Schwaller & Hall, 2006, IEEE TGRS 44(8)).

One reference pair (fine F1 and coarse C1 at t1) and the coarse image C2 at the
prediction date t2 (the paper's t0; t2 here, as in ESTARFM and the models' roles). For
each fine pixel, the candidates in a moving window are the pixels whose F1 is within
``2σ(F1)/m`` of the centre's (σ over the whole image, m classes); the paper's filter
keeps those that are no worse than the centre in spectral (S = |F1 − C1|) and temporal
(T = |C2 − C1|) difference, up to the uncertainties
σ_FC = sqrt(σ_F² + σ_C²) and σ_CC = sqrt(2)·σ_C. The prediction is

    F2(c) = Σ w_i (F1_i + C2_i − C1_i),   w_i ∝ 1 / ((S_i + ε)(T_i + ε) D_i),
    D_i = 1 + d_i / A  (d the distance to the centre in pixels, A the spatial importance),

and when the centre itself has S = 0 or T = 0 it is used alone, as in the paper.

LST, not reflectance. Everything is computed in Kelvin. The original thresholds are in
reflectance (0–1, or DN 0–10000); we map that range onto a 100 K span of LST, so the
uncertainties 0.002 (fine) and 0.005 (coarse) become 0.2 K and 0.5 K, and the +1 DN that
the reference code adds to S and T before inverting becomes ε = 0.01 K. STARFM's model
assumes the fine and coarse sensors differ by an offset (a unit slope): F2 is F1 plus
the coarse change. The log-weight variant of the paper is not implemented.

The kernel is compiled with numba and runs over rows in parallel; see ``backend.fusion.fuse``
for the block/halo driver that bounds memory on any scene size.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .params import StarfmParams


@njit(parallel=True, cache=True)
def _starfm_rows(f1, s, t, p, valid, r0, r1, half, threshold, sigma_s, sigma_t, importance, eps, out):
    height, width = f1.shape
    for r in prange(r0, r1):
        for c in range(width):
            if not valid[r, c]:
                out[r - r0, c] = np.nan
                continue
            if s[r, c] == 0.0 or t[r, c] == 0.0:
                out[r - r0, c] = p[r, c]
                continue
            # One pixel at a time: the window sums stay in registers.
            wsum = psum = 0.0
            fc, s_max, t_max = f1[r, c], s[r, c] + sigma_s, t[r, c] + sigma_t
            for dy in range(-half, half + 1):
                rr = r + dy
                if rr < 0 or rr >= height:
                    continue
                for cc in range(max(0, c - half), min(width, c + half + 1)):
                    if (valid[rr, cc] and abs(f1[rr, cc] - fc) <= threshold
                            and s[rr, cc] < s_max and t[rr, cc] < t_max):
                        dx = cc - c
                        dist = 1.0 + math.sqrt(dy * dy + dx * dx) / importance
                        w = 1.0 / ((s[rr, cc] + eps) * (t[rr, cc] + eps) * dist)
                        wsum += w
                        psum += w * p[rr, cc]
            out[r - r0, c] = psum / wsum


def starfm_block(f1: np.ndarray, c1: np.ndarray, c2: np.ndarray, rows: slice, params: StarfmParams,
                 threshold: float) -> np.ndarray:
    """Predict rows ``rows`` of arrays that carry a halo of ``params.half`` rows around them."""
    f1, c1, c2 = (np.asarray(a, np.float64) for a in (f1, c1, c2))
    valid = np.isfinite(f1) & np.isfinite(c1) & np.isfinite(c2)
    s = np.where(valid, np.abs(f1 - c1), 0.0)
    t = np.where(valid, np.abs(c2 - c1), 0.0)
    p = np.where(valid, f1 + c2 - c1, 0.0)
    f = np.where(valid, f1, 0.0)
    out = np.empty((rows.stop - rows.start, f1.shape[1]), np.float64)
    sigma_s = math.hypot(params.fine_uncertainty, params.coarse_uncertainty)
    sigma_t = math.sqrt(2.0) * params.coarse_uncertainty
    _starfm_rows(f, s, t, p, valid, rows.start, rows.stop, params.half, threshold, sigma_s, sigma_t,
                 params.importance, params.epsilon, out)
    return out.astype(np.float32)


def similarity_threshold(fine: np.ndarray, classes: int) -> float:
    """2σ/m over the valid pixels of the fine reference."""
    return float(np.nanstd(fine.astype(np.float64))) * 2.0 / classes


def starfm(f1: np.ndarray, c1: np.ndarray, c2: np.ndarray, params: StarfmParams | None = None) -> np.ndarray:
    """STARFM on in-memory arrays (all on the fine grid, Kelvin, NaN = nodata)."""
    params = params or StarfmParams()
    params.validate()
    return starfm_block(f1, c1, c2, slice(0, f1.shape[0]), params, similarity_threshold(f1, params.classes))
