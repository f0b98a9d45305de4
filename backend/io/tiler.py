"""One 2-D tiler for every stage that reads rasters window by window and writes a raster.

A plan cuts the grid into tiles (full-width row bands by default). Each tile is read
with a margin of context on every side (clipped at the scene's edges) and its result is
written in one of two ways:

- ``crop`` (window methods such as STARFM/ESTARFM): the margin is at least the method's
  reach, so the inner part is exactly what a whole-scene run gives; it is cropped and
  written.
- ``blend`` (CNNs): neighbouring tiles overlap by twice the margin and their predictions
  are averaged with weights that are zero over the outer half of the margin and rise
  linearly over its inner half. A network whose receptive field is within half the
  margin gives exactly the whole-scene result; a wider one (global statistics, deep
  encoders) is blended without a visible seam.
  Rows are written as soon as no later tile can touch them: memory stays at one band.

The tiler owns reading, writing, progress, cancellation and the count of nodata pixels;
methods only map haloed arrays to predictions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window

from ..progress import Progress, ensure
from .grid import Grid


@dataclass(frozen=True)
class Tile:
    """``window`` is written; ``read`` (``window`` plus the margin, clipped) is read; ``inner``
    locates ``window`` inside ``read``."""

    window: Window
    read: Window
    inner: tuple[slice, slice]


@dataclass(frozen=True)
class Plan:
    grid: Grid
    rows: int  # inner rows per band
    cols: int  # inner columns per tile (the width: full-width bands)
    margin: int

    def bands(self) -> Iterator[list[Tile]]:
        """Tiles band by band (top to bottom), each band left to right."""
        for top in range(0, self.grid.height, self.rows):
            yield [self._tile(top, left) for left in range(0, self.grid.width, self.cols)]

    def tiles(self) -> Iterator[Tile]:
        for band in self.bands():
            yield from band

    def __len__(self) -> int:
        return -(-self.grid.height // self.rows) * -(-self.grid.width // self.cols)

    def _tile(self, top: int, left: int) -> Tile:
        h, w = min(self.rows, self.grid.height - top), min(self.cols, self.grid.width - left)
        r0, c0 = max(0, top - self.margin), max(0, left - self.margin)
        r1, c1 = min(self.grid.height, top + h + self.margin), min(self.grid.width, left + w + self.margin)
        return Tile(Window(left, top, w, h), Window(c0, r0, c1 - c0, r1 - r0),
                    (slice(top - r0, top - r0 + h), slice(left - c0, left - c0 + w)))


def plan(grid: Grid, margin: int, rows: int, cols: int | None = None) -> Plan:
    """Tiles of ``rows`` × ``cols`` inner pixels (``cols`` None: full-width bands) with ``margin``."""
    rows = max(1, min(int(rows), grid.height))
    cols = grid.width if cols is None else max(1, min(int(cols), grid.width))
    return Plan(grid, rows, cols, max(0, int(margin)))


def _edge(margin: int) -> np.ndarray:
    """Weights across a margin, from the read edge inwards: 0 over its outer half, where a network's
    padding still shows, then rising linearly towards 1 at the inner window."""
    outer = margin // 2
    rise = margin - outer
    return np.concatenate([np.zeros(outer), (np.arange(rise) + 1) / (rise + 1)])


def _ramp(length: int, lead: int, trail: int) -> np.ndarray:
    """Weights along one axis of a read window: 1 over the inner part, :func:`_edge` over the
    ``lead`` pixels at its start and the ``trail`` pixels at its end (none at the scene's edges)."""
    w = np.ones(length, np.float64)
    if lead:
        w[:lead] = _edge(lead)
    if trail:
        w[length - trail:] = _edge(trail)[::-1]
    return w


def blend_weights(tile: Tile, margin: int, grid: Grid) -> np.ndarray:
    r, c = tile.read, tile.window
    top = int(c.row_off - r.row_off)
    left = int(c.col_off - r.col_off)
    bottom = int(r.row_off + r.height - (c.row_off + c.height))
    right = int(r.col_off + r.width - (c.col_off + c.width))
    rows = _ramp(int(r.height), min(top, margin), min(bottom, margin))
    cols = _ramp(int(r.width), min(left, margin), min(right, margin))
    return np.outer(rows, cols)


Reader = Callable[[Window], np.ndarray]
Kernel = Callable[[list[np.ndarray], Tile], np.ndarray]


def run(
    the_plan: Plan,
    readers: Sequence[Reader],
    kernel: Kernel,
    write: Callable[[np.ndarray, Window], None],
    mode: str = "crop",
    progress: Progress | None = None,
) -> tuple[int, int]:
    """Read every tile from ``readers``, predict with ``kernel``, write with ``write``.

    ``kernel`` gets the arrays of the tile's read window and returns the prediction for the
    whole read window (``blend``) or for its inner part (``crop``). Returns (valid pixels,
    pixels written).
    """
    progress = ensure(progress)
    if mode not in ("crop", "blend"):
        raise ValueError(f"unknown tiling mode {mode!r}")
    grid, margin = the_plan.grid, the_plan.margin
    total, done, valid, written = len(the_plan), 0, 0, 0
    carry_top, value, weight = 0, None, None  # blend: accumulators for rows [carry_top, ...)
    for band in the_plan.bands():
        band_top = int(band[0].window.row_off)
        band_bottom = band_top + int(band[0].window.height)
        if mode == "blend":
            lo, hi = max(0, band_top - margin), min(grid.height, band_bottom + margin)
            value, weight, carry_top = _extend(value, weight, carry_top, lo, hi, grid.width)
        for tile in band:
            progress.check()
            arrays = [read(tile.read) for read in readers]
            result = kernel(arrays, tile)
            if mode == "crop":
                write(result.astype(np.float32), tile.window)
                valid += int(np.isfinite(result).sum())
                written += result.size
            else:
                w = blend_weights(tile, margin, grid)
                ok = np.isfinite(result)
                rows = slice(int(tile.read.row_off) - carry_top, int(tile.read.row_off + tile.read.height) - carry_top)
                cols = slice(int(tile.read.col_off), int(tile.read.col_off + tile.read.width))
                value[rows, cols] += np.where(ok, result * w, 0.0)
                weight[rows, cols] += np.where(ok, w, 0.0)
            done += 1
            progress.update(done / total)
        if mode == "blend":
            # Rows above the next band's reach are final.
            final = grid.height if band_bottom >= grid.height else band_bottom - margin
            if final > carry_top:
                n = final - carry_top
                block = _finish(value[:n], weight[:n])
                write(block, Window(0, carry_top, grid.width, n))
                valid += int(np.isfinite(block).sum())
                written += block.size
                value, weight, carry_top = value[n:], weight[n:], final
    return valid, written


def _extend(value, weight, carry_top: int, lo: int, hi: int, width: int):
    """Accumulators covering rows [min(carry_top, lo), hi), keeping what was carried over."""
    if value is None:
        return np.zeros((hi - lo, width)), np.zeros((hi - lo, width)), lo
    rows = hi - carry_top
    if rows > value.shape[0]:
        extra = rows - value.shape[0]
        value = np.vstack([value, np.zeros((extra, width))])
        weight = np.vstack([weight, np.zeros((extra, width))])
    return value, weight, carry_top


def _finish(value: np.ndarray, weight: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 0, value / weight, np.nan).astype(np.float32)
