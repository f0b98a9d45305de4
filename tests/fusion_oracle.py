# ruff: noqa: N806  (the papers' notation: F, C, S, T, R, D)
"""Per-pixel reference implementations of STARFM and ESTARFM, written straight from the
papers' formulas (with the LST parameter mapping documented in backend.fusion.starfm/estarfm).
Slow and obviously correct: the oracle the fast kernels are tested against, and the
baseline the benchmark measures the speed-up from."""

from __future__ import annotations

import numpy as np
from scipy.stats import f as f_dist


def _window(shape, r, c, half):
    r0, r1 = max(0, r - half), min(shape[0], r + half + 1)
    c0, c1 = max(0, c - half), min(shape[1], c + half + 1)
    rows, cols = np.mgrid[r0:r1, c0:c1]
    return (slice(r0, r1), slice(c0, c1)), np.hypot(rows - r, cols - c)


def starfm_pixelwise(f1, c1, c0, window=51, classes=4, fine_unc=0.2, coarse_unc=0.5, importance=None, eps=0.01):
    f1, c1, c0 = (np.asarray(a, np.float64) for a in (f1, c1, c0))
    half = window // 2
    importance = importance or half
    valid = np.isfinite(f1) & np.isfinite(c1) & np.isfinite(c0)
    threshold = np.std(f1[valid]) * 2 / classes
    sigma_s, sigma_t = np.hypot(fine_unc, coarse_unc), np.sqrt(2) * coarse_unc
    out = np.full(f1.shape, np.nan)
    for r in range(f1.shape[0]):
        for c in range(f1.shape[1]):
            if not valid[r, c]:
                continue
            s_c, t_c = abs(f1[r, c] - c1[r, c]), abs(c0[r, c] - c1[r, c])
            if s_c == 0 or t_c == 0:
                out[r, c] = f1[r, c] + c0[r, c] - c1[r, c]
                continue
            win, dist = _window(f1.shape, r, c, half)
            F, C, C0, V = f1[win], c1[win], c0[win], valid[win]
            S, T = np.abs(F - C), np.abs(C0 - C)
            with np.errstate(invalid="ignore"):
                cand = V & (np.abs(F - f1[r, c]) <= threshold) & (S < s_c + sigma_s) & (T < t_c + sigma_t)
            w = 1.0 / ((S[cand] + eps) * (T[cand] + eps) * (1 + dist[cand] / importance))
            out[r, c] = np.sum(w * (F + C0 - C)[cand]) / np.sum(w)
    return out


def estarfm_pixelwise(f1, c1, f3, c3, c2, window=51, classes=4, min_similar=5, min_change=2.0, max_slope=5.0,
                      alpha=0.05, valid_range=(180.0, 360.0), region=None):
    """ESTARFM pixel by pixel; ``region`` (r0, r1, c0, c1) limits which pixels are predicted."""
    f1, c1, f3, c3, c2 = (np.asarray(a, np.float64) for a in (f1, c1, f3, c3, c2))
    half = window // 2
    valid = np.isfinite(f1) & np.isfinite(c1) & np.isfinite(f3) & np.isfinite(c3) & np.isfinite(c2)
    th1 = np.std(f1[np.isfinite(f1)]) * 2 / classes
    th3 = np.std(f3[np.isfinite(f3)]) * 2 / classes
    out = np.full(f1.shape, np.nan)
    row0, row1, col0, col1 = region or (0, f1.shape[0], 0, f1.shape[1])
    for r in range(row0, row1):
        for c in range(col0, col1):
            if not valid[r, c]:
                continue
            win, dist = _window(f1.shape, r, c, half)
            V = valid[win]
            F1, C1, F3, C3, C2 = (a[win] for a in (f1, c1, f3, c3, c2))
            # Temporal weights from the coarse change over the window's valid pixels.
            g1 = C2[V].mean() - C1[V].mean()
            g3 = C2[V].mean() - C3[V].mean()
            a1, a3 = 1 / (abs(g1) + 1e-10), 1 / (abs(g3) + 1e-10)
            t1, t3 = a1 / (a1 + a3), a3 / (a1 + a3)
            with np.errstate(invalid="ignore"):
                cand = V & (np.abs(F1 - f1[r, c]) < th1) & (np.abs(F3 - f3[r, c]) < th3)
            n = cand.sum()
            if n <= min_similar:
                out[r, c] = t1 * (f1[r, c] + g1) + t3 * (f3[r, c] + g3)
                continue
            R = 1 - 0.5 * (np.abs((F1 - C1) / (F1 + C1)) + np.abs((F3 - C3) / (F3 + C3)))
            D = 1 + dist / half
            w = 1 / ((1 - R[cand]) * D[cand] + 1e-7)
            w = w / w.sum()
            x = np.concatenate([C1[cand], C3[cand]])
            y = np.concatenate([F1[cand], F3[cand]])
            v = 1.0
            if abs(C1[cand].mean() - C3[cand].mean()) >= min_change and np.var(x) > 0:
                slope, intercept = np.polyfit(x, y, 1)
                residual = y - (slope * x + intercept)
                ssr = np.sum((slope * x + intercept - y.mean()) ** 2)
                sse = np.sum(residual**2)
                df = x.size - 2
                p = f_dist.sf(ssr / (sse / df), 1, df) if sse > 0 else 0.0
                if p <= alpha and 0 < slope <= max_slope:
                    v = slope
            p1 = f1[r, c] + np.sum(w * v * (C2 - C1)[cand])
            p3 = f3[r, c] + np.sum(w * v * (C2 - C3)[cand])
            pred = t1 * p1 + t3 * p3
            if pred <= valid_range[0] or pred >= valid_range[1]:
                pred = t1 * np.sum(w * F1[cand]) + t3 * np.sum(w * F3[cand])
            out[r, c] = pred
    return out
