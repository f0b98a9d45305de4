"""One colour range for a set of rasters, so that the dates of a series compare by colour.

A map per date stretched to its own values shows every date as equally "hot"; analysts
compare dates, so the layers of one run share the 2nd–98th percentile of all their pixels
(read from decimated overviews, a few hundred thousand pixels per file at most).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
import rasterio
from rasterio.enums import Resampling

SAMPLE_SIDE = 512  # pixels per side read from each raster


def display_range(paths: Iterable[str | os.PathLike], low: float = 2.0, high: float = 98.0,
                  symmetric: bool = False) -> tuple[float, float] | None:
    """(low, high) percentiles of band 1 over every raster of ``paths``, in the rasters' own unit.

    ``symmetric`` (differences, errors): ± the ``high`` percentile of the absolute values.
    None when no raster has a valid pixel.
    """
    samples = []
    for path in paths:
        with rasterio.open(path) as src:
            scale = max(1.0, max(src.width, src.height) / SAMPLE_SIDE)
            shape = (max(1, int(src.height / scale)), max(1, int(src.width / scale)))
            data = src.read(1, out_shape=shape, masked=True, resampling=Resampling.nearest)
        values = np.asarray(data.filled(np.nan), dtype=np.float64)
        samples.append(values[np.isfinite(values)])
    values = np.concatenate(samples) if samples else np.empty(0)
    if values.size == 0:
        return None
    if symmetric:
        limit = float(np.percentile(np.abs(values), high)) or 1.0
        return -limit, limit
    lo, hi = (float(v) for v in np.percentile(values, [low, high]))
    return (lo, hi) if hi > lo else (lo - 0.5, lo + 0.5)
