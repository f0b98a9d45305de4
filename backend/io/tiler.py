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

    @property
    def n_bands(self) -> int:
        return -(-self.grid.height // self.rows)

    def band(self, index: int) -> list[Tile]:
        """The tiles of band ``index`` (top to bottom), left to right."""
        return [self._tile(index * self.rows, left) for left in range(0, self.grid.width, self.cols)]

    def bands(self) -> Iterator[list[Tile]]:
        for index in range(self.n_bands):
            yield self.band(index)

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


def plan(grid: Grid, margin: int, rows: int, cols: int | None = None, even: bool = False) -> Plan:
    """Tiles of at most ``rows`` × ``cols`` inner pixels (``cols`` None: full-width bands) with ``margin``.

    ``even``: no more tiles than that takes, but of nearly equal size (the last along each axis smaller
    by less than a pixel per tile), not full ones and a sliver at the far edge: a network then runs on
    one or two tile shapes, and no tile is mostly margin.
    """
    rows = max(1, min(int(rows), grid.height))
    cols = grid.width if cols is None else max(1, min(int(cols), grid.width))
    if even:
        rows, cols = _even(grid.height, rows), _even(grid.width, cols)
    return Plan(grid, rows, cols, max(0, int(margin)))


def _even(length: int, most: int) -> int:
    """The size of ``ceil(length / most)`` equal parts of ``length``."""
    return -(-length // -(-length // most))


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


@dataclass
class BandResult:
    """What one band of tiles contributes: final values (``crop``), or weighted sums and weights
    over the band's read rows (``blend``), starting at grid row ``top``."""

    index: int
    top: int
    value: np.ndarray
    weight: np.ndarray | None = None


def compute_band(tile_plan: Plan, index: int, readers: Sequence[Reader], kernel: Kernel, mode: str = "crop",
                 progress: Progress | None = None) -> BandResult:
    """Read and predict the tiles of band ``index``; a unit of work that any process can run."""
    progress = ensure(progress)
    if mode not in ("crop", "blend"):
        raise ValueError(f"unknown tiling mode {mode!r}")
    band = tile_plan.band(index)
    width = tile_plan.grid.width
    first = band[0]
    if mode == "crop":
        value = np.full((int(first.window.height), width), np.nan, np.float32)
        top, weight = int(first.window.row_off), None
    else:
        value = np.zeros((int(first.read.height), width), np.float32)
        weight = np.zeros_like(value)
        top = int(first.read.row_off)
    for k, (tile, arrays) in enumerate(_read_ahead(band, readers)):
        progress.check()
        result = kernel(arrays, tile)
        if mode == "crop":
            value[:, int(tile.window.col_off):int(tile.window.col_off + tile.window.width)] = result
        else:
            w = blend_weights(tile, tile_plan.margin, tile_plan.grid)
            ok = np.isfinite(result)
            cols = slice(int(tile.read.col_off), int(tile.read.col_off + tile.read.width))
            value[:, cols] += np.where(ok, result * w, 0.0)
            weight[:, cols] += np.where(ok, w, 0.0)
        progress.update((k + 1) / len(band))
    return BandResult(index, top, value, weight)


def _read_ahead(band: list[Tile], readers: Sequence[Reader]) -> Iterator[tuple[Tile, list[np.ndarray]]]:
    """The band's tiles with their arrays, the next tile read in a thread while the caller computes on
    this one: GDAL reads and decompresses outside the GIL, so the reading hides behind the kernel
    (ONNX Runtime and numba release it too). A reader raises in the caller, at its tile."""
    from concurrent.futures import ThreadPoolExecutor

    def read(tile: Tile) -> list[np.ndarray]:
        return [reader(tile.read) for reader in readers]

    if len(band) == 1:
        yield band[0], read(band[0])
        return
    with ThreadPoolExecutor(1, thread_name_prefix="tile-read") as pool:
        pending = pool.submit(read, band[0])
        for k, tile in enumerate(band):
            arrays = pending.result()
            if k + 1 < len(band):
                pending = pool.submit(read, band[k + 1])
            yield tile, arrays


class Assembler:
    """Writes band results, in band order: ``crop`` bands as they are; ``blend`` bands summed where
    they overlap and written (sums / weights) as soon as no later band can reach a row."""

    def __init__(self, tile_plan: Plan, mode: str, write: Callable[[np.ndarray, Window], None]):
        self.plan, self.mode, self.write = tile_plan, mode, write
        self.valid = self.written = 0
        self.expected = 0
        self.top, self.value, self.weight = 0, None, None

    def _emit(self, block: np.ndarray, top: int) -> None:
        self.write(block, Window(0, top, self.plan.grid.width, block.shape[0]))
        self.valid += int(np.isfinite(block).sum())
        self.written += block.size

    def add(self, result: BandResult) -> None:
        if result.index != self.expected:
            raise ValueError(f"band {result.index} came before band {self.expected}")
        self.expected += 1
        if self.mode == "crop":
            self._emit(result.value.astype(np.float32), result.top)
            return
        rows, width = result.value.shape
        if self.value is None:
            self.top = result.top
            self.value = np.zeros((0, width), np.float32)
            self.weight = np.zeros((0, width), np.float32)
        end = result.top + rows
        grow = end - (self.top + self.value.shape[0])
        if grow > 0:
            self.value = np.vstack([self.value, np.zeros((grow, width), np.float32)])
            self.weight = np.vstack([self.weight, np.zeros((grow, width), np.float32)])
        where = slice(result.top - self.top, end - self.top)
        self.value[where] += result.value
        self.weight[where] += result.weight
        last = result.index == self.plan.n_bands - 1
        # Rows above the next band's reach are final.
        final = self.plan.grid.height if last else self.plan.band(result.index + 1)[0].read.row_off
        n = int(final) - self.top
        if n > 0:
            with np.errstate(invalid="ignore", divide="ignore"):
                block = np.where(self.weight[:n] > 0, self.value[:n] / self.weight[:n], np.nan).astype(np.float32)
            self._emit(block, self.top)
            self.value, self.weight, self.top = self.value[n:], self.weight[n:], self.top + n


def run(
    tile_plan: Plan,
    readers: Sequence[Reader],
    kernel: Kernel,
    write: Callable[[np.ndarray, Window], None],
    mode: str = "crop",
    progress: Progress | None = None,
) -> tuple[int, int]:
    """Read every tile from ``readers``, predict with ``kernel``, write with ``write``; band by band.

    ``kernel`` gets the arrays of the tile's read window and returns the prediction for the
    whole read window (``blend``) or for its inner part (``crop``). Returns (valid pixels,
    pixels written).
    """
    progress = ensure(progress)
    assembler = Assembler(tile_plan, mode, write)
    n = tile_plan.n_bands
    for index in range(n):
        assembler.add(compute_band(tile_plan, index, readers, kernel, mode, progress.sub(index / n, (index + 1) / n)))
    return assembler.valid, assembler.written


def row_blocks(grid: Grid, rows: int, halo: int = 0) -> Iterator[tuple[Window, Window, slice]]:
    """Full-width row blocks of the window plan: (block window, window with ``halo`` rows above and below
    clipped to the grid, rows of the block inside the haloed window)."""
    for tile in plan(grid, halo, rows).tiles():
        yield tile.window, tile.read, tile.inner[0]
