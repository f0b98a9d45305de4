"""Raster grids (CRS, transform, size) and the row-block windows stages iterate over."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_bounds

from ..errors import InputError

MODIS_PIXEL_M = 926.625433055833  # the MODIS 1 km products' sinusoidal pixel size


def coarse_pixel_m(paths) -> float:
    """The coarse pixel size of MODIS resampled onto a fine grid: as Resample recorded it
    (SOURCE_RESOLUTION) in the first file that says, else MODIS's 926.6 m."""
    for path in paths:
        try:
            with rasterio.open(path) as src:
                value = src.tags().get("SOURCE_RESOLUTION")
        except rasterio.errors.RasterioIOError:
            continue
        if value:
            try:
                return float(value)
            except ValueError:
                continue
    return MODIS_PIXEL_M


@dataclass(frozen=True)
class Grid:
    """Where a raster's pixels are: CRS, affine transform and size."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    @classmethod
    def of(cls, path: str) -> Grid:
        """The grid of a raster file (or GDAL subdataset)."""
        from .readers import open_raster

        with open_raster(path) as src:
            if src.crs is None:
                raise InputError(f"{path}: has no coordinate reference system.")
            return cls(src.crs, src.transform, src.width, src.height)

    @classmethod
    def from_bounds(cls, crs: CRS | str, resolution: float, bounds: tuple[float, float, float, float]) -> Grid:
        """A north-up grid of square pixels covering ``bounds`` (left, bottom, right, top), snapped outward."""
        if resolution <= 0:
            raise InputError(f"Resolution must be positive, got {resolution}.")
        left, bottom, right, top = bounds
        if not (right > left and top > bottom):
            raise InputError(f"Empty extent {bounds}: give (left, bottom, right, top) with left < right.")
        left = np.floor(left / resolution) * resolution
        top = np.ceil(top / resolution) * resolution
        width = int(np.ceil((right - left) / resolution - 1e-9))
        height = int(np.ceil((top - bottom) / resolution - 1e-9))
        return cls(CRS.from_user_input(crs), Affine(resolution, 0, left, 0, -resolution, top), width, height)

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return rasterio.transform.array_bounds(self.height, self.width, self.transform)[0:4]

    def bounds_in(self, crs: CRS | str) -> tuple[float, float, float, float]:
        left, bottom, right, top = self.bounds
        return transform_bounds(self.crs, crs, left, bottom, right, top, densify_pts=21)

    def same_as(self, other: Grid, tolerance: float = 1e-6) -> bool:
        """Same CRS, size and transform (to ``tolerance`` of a pixel)."""
        if (self.width, self.height) != (other.width, other.height) or self.crs != other.crs:
            return False
        a, b = np.array(self.transform)[:6], np.array(other.transform)[:6]
        return bool(np.all(np.abs(a - b) <= tolerance * max(abs(self.transform.a), 1e-12)))

    def pixel_size_m(self) -> float:
        """The pixel size in metres (mean of both axes); degrees converted at the grid's centre latitude."""
        dx, dy = abs(self.transform.a), abs(self.transform.e)
        if self.crs is not None and self.crs.is_geographic:
            left, bottom, right, top = self.bounds
            lat = np.radians((bottom + top) / 2)
            dx, dy = dx * 111_320.0 * np.cos(lat), dy * 110_574.0
        elif self.crs is not None:
            try:
                factor = float(self.crs.linear_units_factor[1])
            except Exception:  # noqa: BLE001 - a CRS without linear units: take the numbers as metres
                factor = 1.0
            dx, dy = dx * factor, dy * factor
        return float((dx + dy) / 2)

    def describe(self) -> str:
        left, bottom, right, top = self.bounds
        epsg = self.crs.to_epsg()
        crs = f"EPSG:{epsg}" if epsg else "custom CRS"
        return (f"{self.width}×{self.height} px of {abs(self.transform.a):g} in {crs}, "
                f"extent ({left:.1f}, {bottom:.1f}, {right:.1f}, {top:.1f})")


def block_rows_for(width: int, bytes_per_row_pixel: int, budget_bytes: int = 256 * 2**20) -> int:
    """Rows per block so one block of all the arrays a stage holds stays within ``budget_bytes``."""
    return max(16, int(budget_bytes // max(1, width * bytes_per_row_pixel)))
