"""ESTARFM for land surface temperature (Zhu, Chen, Gao, Chen & Masek, 2010, RSE 114(11)).

Two reference pairs (F1, C1 at t1 and F3, C3 at t3, with t1 < t2 < t3) and the coarse
image C2 at the prediction date t2. For each fine pixel:

* Similar pixels: in the moving window, valid in all five inputs, with |F1_i − F1_c| and
  |F3_i − F3_c| both below 2σ/m (σ of each fine image over the whole scene, m classes).
* Weights: w_i ∝ 1 / ((1 − R_i) D_i), D_i = 1 + d_i / (w/2). For one band, R_i is the
  single-band similarity of Zhu's reference code, R = 1 − ½(|F1−C1|/(F1+C1) + |F3−C3|/(F3+C3)):
  how well the coarse value represents the fine one, relative to the temperature. It is
  well defined in Kelvin (F + C ≈ 600 K) and would blow up near 0 °C, so everything here
  is in Kelvin. (The multi-band correlation of the paper is undefined for one band.)
* Conversion coefficient V: slope of the regression of fine on coarse values of the
  similar pixels at both dates, used when the coarse change between t1 and t3 over them
  is at least ``min_coarse_change``, the regression is significant (F-test, p ≤ 0.05) and
  0 < V ≤ 5; otherwise V = 1.
* Predictions F2 = F_k(c) + Σ w_i V (C2_i − C_k_i) from each reference, blended with
  temporal weights T_k ∝ 1 / |mean(C2) − mean(C_k)| over the window's valid pixels.
* Safeguards (reference code): with 5 or fewer similar pixels, F2 = Σ_k T_k (F_k(c) +
  mean(C2) − mean(C_k)); a prediction outside the plausible range falls back to
  Σ_k T_k Σ_i w_i F_k_i.

LST rescaling, as for STARFM: reflectance thresholds map onto a 100 K LST span, so the
2 % minimum coarse change becomes 2 K, and the valid range 0–10000 DN becomes the
plausible LST range 180–360 K.

Departures from the reference code, and why: σ is taken over the whole scene, not per
processing block, so results do not depend on block size; significance uses the F
distribution's survival function (the reference code's 1 − pdf is not a p-value).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import njit, prange
from scipy.stats import f as f_dist

from .params import EstarfmParams


@lru_cache(maxsize=8)
def _f_critical(max_df: int, significance: float) -> np.ndarray:
    """F(1, df) quantiles: a regression is significant when its F statistic reaches them."""
    df = np.arange(max_df + 1, dtype=np.float64)
    crit = np.full(max_df + 1, np.inf)
    crit[1:] = f_dist.isf(significance, 1, df[1:])
    return crit


def _window_means(values: tuple[np.ndarray, ...], valid: np.ndarray, half: int) -> list[np.ndarray]:
    """Mean of each array over the valid pixels of the (edge-truncated) window, via summed-area tables."""
    h, w = valid.shape

    def box(a: np.ndarray) -> np.ndarray:
        sat = np.zeros((h + 1, w + 1))
        sat[1:, 1:] = a.cumsum(0).cumsum(1)
        r0 = np.clip(np.arange(h) - half, 0, h)[:, None]
        r1 = np.clip(np.arange(h) + half + 1, 0, h)[:, None]
        c0 = np.clip(np.arange(w) - half, 0, w)[None, :]
        c1 = np.clip(np.arange(w) + half + 1, 0, w)[None, :]
        return sat[r1, c1] - sat[r0, c1] - sat[r1, c0] + sat[r0, c0]

    count = box(valid.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return [box(np.where(valid, v, 0.0)) / count for v in values]


@njit(cache=True)
def _conversion_coefficient(big_n, sx, sy, sxx, sxy, syy, max_slope, f_crit):
    """V: the slope of fine on coarse values of the similar pixels at both dates (``big_n`` of them) from
    their sums, when the regression is significant and 0 < V ≤ ``max_slope``; else 1."""
    sxx_c = sxx - sx * sx / big_n
    sxy_c = sxy - sx * sy / big_n
    syy_c = syy - sy * sy / big_n
    if not sxx_c > 0.0:
        return 1.0
    slope = sxy_c / sxx_c
    ssr = slope * sxy_c
    sse = syy_c - ssr
    df = int(big_n) - 2
    fstat = ssr / (sse / df) if sse > 0.0 else np.inf
    if fstat >= f_crit[df] and slope > 0.0 and slope <= max_slope:
        return slope
    return 1.0


@njit(parallel=True, cache=True)
def _estarfm_rows(f1, f3, valid, q, d1, d3, xa, yb, xx, xy, yy, c1, c3, m2, m1, m3, r0, r1, half,
                  th1, th3, min_similar, min_change, max_slope, f_crit, lo, hi, out):
    height, width = f1.shape
    for r in prange(r0, r1):
        for c in range(width):
            if not valid[r, c]:
                out[r - r0, c] = np.nan
                continue
            # One pixel at a time: the window sums stay in registers.
            n = su = sd1 = sd3 = sf1 = sf3 = sx = sy = sxx = sxy = syy = sc1 = sc3 = 0.0
            fc1, fc3 = f1[r, c], f3[r, c]
            for dy in range(-half, half + 1):
                rr = r + dy
                if rr < 0 or rr >= height:
                    continue
                for cc in range(max(0, c - half), min(width, c + half + 1)):
                    if (valid[rr, cc] and abs(f1[rr, cc] - fc1) < th1 and abs(f3[rr, cc] - fc3) < th3):
                        dx = cc - c
                        u = 1.0 / (q[rr, cc] * (1.0 + math.sqrt(dy * dy + dx * dx) / half) + 1e-7)
                        n += 1.0
                        su += u
                        sd1 += u * d1[rr, cc]
                        sd3 += u * d3[rr, cc]
                        sf1 += u * f1[rr, cc]
                        sf3 += u * f3[rr, cc]
                        sx += xa[rr, cc]
                        sy += yb[rr, cc]
                        sxx += xx[rr, cc]
                        sxy += xy[rr, cc]
                        syy += yy[rr, cc]
                        sc1 += c1[rr, cc]
                        sc3 += c3[rr, cc]
            g1 = m2[r, c] - m1[r, c]
            g3 = m2[r, c] - m3[r, c]
            a1 = 1.0 / (abs(g1) + 1e-10)
            a3 = 1.0 / (abs(g3) + 1e-10)
            t1 = a1 / (a1 + a3)
            t3 = a3 / (a1 + a3)
            if n > min_similar:
                v = 1.0
                if abs(sc1 - sc3) / n >= min_change:
                    v = _conversion_coefficient(2.0 * n, sx, sy, sxx, sxy, syy, max_slope, f_crit)
                pred = t1 * (fc1 + v * sd1 / su) + t3 * (fc3 + v * sd3 / su)
                if pred <= lo or pred >= hi:
                    pred = t1 * sf1 / su + t3 * sf3 / su
            else:
                pred = t1 * (fc1 + g1) + t3 * (fc3 + g3)
            out[r - r0, c] = pred


def estarfm_block(f1, c1, f3, c3, c2, rows: slice, params: EstarfmParams, thresholds: tuple[float, float],
                  reference: float) -> np.ndarray:
    """Predict rows ``rows`` of arrays carrying a halo of ``params.half`` rows.

    ``reference`` is a temperature subtracted before the regression sums (any value near
    the scene's mean): it keeps the sums of squares well conditioned.
    """
    f1, c1, f3, c3, c2 = (np.asarray(a, np.float64) for a in (f1, c1, f3, c3, c2))
    valid = np.isfinite(f1) & np.isfinite(c1) & np.isfinite(f3) & np.isfinite(c3) & np.isfinite(c2)
    z = [np.where(valid, a, reference) for a in (f1, c1, f3, c3, c2)]
    f1, c1, f3, c3, c2 = z
    with np.errstate(invalid="ignore", divide="ignore"):
        r = 1.0 - 0.5 * (np.abs((f1 - c1) / (f1 + c1)) + np.abs((f3 - c3) / (f3 + c3)))
    q = np.where(np.isfinite(r), 1.0 - r, 0.5)
    k1, l1, k3, l3 = (a - reference for a in (c1, f1, c3, f3))
    m2, m1, m3 = _window_means((c2, c1, c3), valid, params.half)
    max_df = 2 * params.window * params.window
    out = np.empty((rows.stop - rows.start, f1.shape[1]), np.float64)
    _estarfm_rows(f1, f3, valid, q, c2 - c1, c2 - c3, k1 + k3, l1 + l3, k1 * k1 + k3 * k3, l1 * k1 + l3 * k3,
                  l1 * l1 + l3 * l3, k1, k3, m2, m1, m3, rows.start, rows.stop, params.half,
                  thresholds[0], thresholds[1], float(params.min_similar), params.min_coarse_change,
                  params.max_slope, _f_critical(max_df, params.significance), params.valid_range[0],
                  params.valid_range[1], out)
    return out.astype(np.float32)


def estarfm(f1, c1, f3, c3, c2, params: EstarfmParams | None = None) -> np.ndarray:
    """ESTARFM on in-memory arrays (all on the fine grid, Kelvin, NaN = nodata)."""
    params = params or EstarfmParams()
    params.validate()
    th = tuple(float(np.nanstd(np.asarray(a, np.float64))) * 2.0 / params.classes for a in (f1, f3))
    reference = float(np.nanmean(np.asarray(c1, np.float64)))
    return estarfm_block(f1, c1, f3, c3, c2, slice(0, f1.shape[0]), params, th, reference)
