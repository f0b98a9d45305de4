"""Season regression: fusion from every reference pair of a season, not only the nearest ones.

A season holds 10-25 clear or gap-filled Landsat dates, and each says how a fine pixel
answers what MODIS sees: a roof warms more than the MODIS pixel around it, an irrigated
field or a reservoir less. STARFM and ESTARFM look at one or two of those dates; this method
learns each pixel's answer from all of them and then predicts from the nearest ones.

For a fine pixel with reference pairs (F_k, C_k), k = 1..K (C is MODIS on the fine grid) and
MODIS C_t at the prediction date:

1. The gain: a weighted regression of F on C over every pair, per pixel,
   ``g = (cov(F, C) + λ) / (var(C) + λ)``, clipped to [0, MAX_GAIN]: a ridge that pulls the
   gain towards 1 (MODIS's change passed on as it is) where the pixel's MODIS barely moved
   over the season, so a short or flat season gives STARFM's plain change, never noise. The
   weights are 1 for observed reference pixels and FILLED_WEIGHT for gap-filled ones (the
   gap-fill flags beside each reference say which).
2. The prediction: ``Σ_k v_k [F_k + g (C_t − C_k)] / Σ_k v_k``, every reference's fine value
   carried to the date by the pixel's own gain, with v_k = exp(−|t − t_k| / MEMORY_DAYS)
   (plus SEASON_WEIGHT for a reference on the same day of another year) times the pixel's
   weight. Near dates dominate, so what only they show (a field harvested last week) stays;
   far dates still average out Landsat's noise and MODIS's day-to-day error.

The fine value is carried by the change of MODIS, never set from MODIS's level, so the result
is on Landsat's level, like STARFM's (the sensor-bias and coarse-consistency options apply as
for every method). It is the "regression model fitting + residual" idea of Fit-FC (Wang and
Atkinson, 2018, Remote Sensing of Environment 204) turned from space to time, with ESTARFM's
conversion coefficient (Zhu et al., 2010) estimated over a season instead of two dates. While
designing it on the sample seasons of bench/bench_lst_options.py, season-wide spatial modes of
the references (EOFs whose amplitudes MODIS gives) and weighting references by how alike their
MODIS was to the date's gained nothing or lost on the difficult dates; the seasonal term and the
defaults are the bench's measurements (README, "Fusion from the whole season").

Every quantity is per pixel, so a tile needs no context (tiled equals untiled exactly) and one
pass over the pairs keeps eight accumulators: memory is the tile's inputs plus those.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from ..io.fill_flags import NODATA, OBSERVED, flags_path_for
from ..io.tiler import Tile
from .inputs import FusionInputs, reference_pairs
from .params import SeasonParams

SAME_DAY_SPREAD = 20.0  # days: how close in day of year a reference of another year must be for SEASON_WEIGHT


@dataclass(frozen=True)
class SeasonState:
    """Per reference pair, in date order: its weight in the prediction and its gap-fill flags (or None)."""

    weights: tuple[float, ...]
    flags: tuple[str | None, ...]


def date_weights(dates: list[dt.date], target: dt.date, params: SeasonParams) -> np.ndarray:
    """v_k of every reference date, the nearest one's time term 1 (far ones never all underflow to 0)."""
    lag = np.array([abs((d - target).days) for d in dates], float)
    weights = np.exp(-(lag - lag.min()) / params.memory_days)
    if params.season_weight:
        doy = np.array([(d.timetuple().tm_yday - target.timetuple().tm_yday + 182.5) % 365.25 - 182.5 for d in dates])
        weights += params.season_weight * np.exp(-0.5 * (doy / SAME_DAY_SPREAD) ** 2) * (lag > 182)
    return weights


def prepare(inputs: FusionInputs, params: SeasonParams) -> SeasonState:
    dates = [fine.date for fine, _ in inputs.pairs]
    flags = []
    for fine, _ in inputs.pairs:
        path = flags_path_for(fine.path)
        flags.append(str(path) if path is not None and path.is_file() else None)
    return SeasonState(tuple(date_weights(dates, inputs.target_date, params).tolist()), tuple(flags))


def _pixel_weight(flags: str | None, tile: Tile, filled_weight: float, shape: tuple[int, int]) -> np.ndarray:
    """1 for observed (or unflagged) reference pixels, ``filled_weight`` for gap-filled ones, 0 for nodata."""
    if flags is None:
        return np.ones(shape)
    import rasterio

    with rasterio.open(flags) as src:
        code = src.read(1, window=tile.read)
    return np.select([code == OBSERVED, code == NODATA], [1.0, 0.0], filled_weight)


def kernel(arrays: dict[str, np.ndarray], tile: Tile, params: SeasonParams, state: SeasonState) -> np.ndarray:
    """The prediction over ``tile``'s read window, cropped to its inner part."""
    pairs, target = reference_pairs(arrays)
    target = target.astype(np.float64)
    shape = target.shape
    w, sx, sy, sxx, sxy, v, vy, vx = (np.zeros(shape) for _ in range(8))
    for (fine, coarse), date_weight, flags in zip(pairs, state.weights, state.flags):
        ok = np.isfinite(fine) & np.isfinite(coarse) & np.isfinite(target)
        q = np.where(ok, _pixel_weight(flags, tile, params.filled_weight, shape), 0.0)
        # Centred on MODIS at the date, so the sums stay small (no cancellation at 300 K).
        x = np.where(ok, coarse - target, 0.0)
        y = np.where(ok, fine - target, 0.0)
        w += q
        sx += q * x
        sy += q * y
        sxx += q * x * x
        sxy += q * x * y
        v += date_weight * q
        vy += date_weight * q * y
        vx += date_weight * q * x
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = sx / w, sy / w
        var, cov = np.maximum(sxx / w - mx * mx, 0.0), sxy / w - mx * my
        lam = params.gain_shrinkage
        gain = np.where(var + lam > 0, (cov + lam) / (var + lam), 1.0)
        gain = np.clip(np.nan_to_num(gain, nan=1.0), 0.0, params.max_gain)
        # Σ v [F_k + g (C_t − C_k)] / Σ v, with F_k = C_t + y_k and C_k = C_t + x_k
        prediction = target + (vy - gain * vx) / v
    prediction[v <= 0] = np.nan
    return prediction[tile.inner].astype(np.float32)
