"""The one in-memory notion of an LST image every stage exchanges."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
from affine import Affine
from rasterio.crs import CRS

KELVIN_OFFSET = 273.15


@dataclass
class LSTRaster:
    """Land surface temperature on a georeferenced grid.

    ``data`` is float32 Kelvin with NaN for nodata, whatever the source product's
    encoding: readers decode scale/offset/fill/QA once so no later stage re-learns them.
    """

    data: np.ndarray
    crs: CRS | None
    transform: Affine
    date: dt.date | None = None
    product: str = "unknown"
    sensor: str = "unknown"
    source: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.data.ndim != 2:
            raise ValueError(f"LST data must be 2-D, got shape {self.data.shape}.")
        if self.data.dtype != np.float32:
            self.data = self.data.astype(np.float32)

    @property
    def shape(self) -> tuple[int, int]:
        return self.data.shape  # type: ignore[return-value]

    @property
    def height(self) -> int:
        return self.data.shape[0]

    @property
    def width(self) -> int:
        return self.data.shape[1]

    @property
    def valid(self) -> np.ndarray:
        return np.isfinite(self.data)

    @property
    def valid_fraction(self) -> float:
        return float(self.valid.mean()) if self.data.size else 0.0

    @property
    def resolution(self) -> tuple[float, float]:
        return abs(self.transform.a), abs(self.transform.e)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in the raster's CRS."""
        left, top = self.transform * (0, 0)
        right, bottom = self.transform * (self.width, self.height)
        return min(left, right), min(top, bottom), max(left, right), max(top, bottom)

    def celsius(self) -> np.ndarray:
        return self.data - np.float32(KELVIN_OFFSET)

    def _crs_name(self) -> str | None:
        if self.crs is None:
            return None
        epsg = self.crs.to_epsg()
        return f"EPSG:{epsg}" if epsg else self.crs.to_proj4() or "custom"

    def __repr__(self) -> str:
        date = self.date.isoformat() if self.date else "undated"
        return (
            f"LSTRaster({self.product}, {date}, {self.width}x{self.height}, "
            f"crs={self._crs_name()}, "
            f"valid={self.valid_fraction:.1%})"
        )
