"""Property tests of the tiler's window plan (hypothesis): any scene size, tile size, margin and overlap.

Crop mode must write every pixel exactly once, each from a read window that holds the tile and
its margin (clipped at the scene's edges); blend mode's weights must be positive wherever a pixel
is covered and, normalised, sum to one: blending identical predictions gives them back exactly.
"""

from __future__ import annotations

import numpy as np
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.crs import CRS

from backend.io import tiler
from backend.io.grid import Grid

plans = st.tuples(st.integers(1, 90), st.integers(1, 90), st.integers(0, 20), st.integers(1, 100),
                  st.one_of(st.none(), st.integers(1, 100)), st.booleans())


def _grid(height: int, width: int) -> Grid:
    return Grid(CRS.from_epsg(32631), Affine(30, 0, 600000, 0, -30, 5300000), width, height)


def _scene(height: int, width: int) -> np.ndarray:
    return np.random.default_rng(height * 1000 + width).normal(300, 5, (height, width)).astype(np.float32)


@settings(max_examples=120, deadline=None)
@given(plans)
def test_crop_mode_writes_every_pixel_once_from_a_window_with_its_margin(case):
    height, width, margin, rows, cols, even = case
    grid = _grid(height, width)
    plan = tiler.plan(grid, margin, rows, cols, even)
    count = np.zeros((height, width), np.int32)
    for tile in plan.tiles():
        w, r = tile.window, tile.read
        count[w.row_off:w.row_off + w.height, w.col_off:w.col_off + w.width] += 1
        assert r.row_off == max(0, w.row_off - margin) and r.col_off == max(0, w.col_off - margin)
        assert r.row_off + r.height == min(height, w.row_off + w.height + margin)
        assert r.col_off + r.width == min(width, w.col_off + w.width + margin)
        rows_in, cols_in = tile.inner
        assert (rows_in.start, rows_in.stop) == (w.row_off - r.row_off, w.row_off - r.row_off + w.height)
        assert (cols_in.start, cols_in.stop) == (w.col_off - r.col_off, w.col_off - r.col_off + w.width)
    assert (count == 1).all()
    assert len(plan) == len(list(plan.tiles()))


@settings(max_examples=120, deadline=None)
@given(plans, st.sampled_from(["crop", "blend"]))
def test_identical_predictions_come_back_exactly(case, mode):
    """A kernel that returns what it reads: crop writes each pixel once, blend's normalised weights sum
    to one everywhere, so the scene comes back bit for bit in either mode."""
    height, width, margin, rows, cols, even = case
    grid = _grid(height, width)
    scene = _scene(height, width)
    out = np.full_like(scene, np.nan)

    def read(window):
        return scene[window.row_off:window.row_off + window.height, window.col_off:window.col_off + window.width]

    def kernel(arrays, tile):
        return arrays[0] if mode == "blend" else arrays[0][tile.inner]

    def write(block, window):
        out[window.row_off:window.row_off + window.height, window.col_off:window.col_off + window.width] = block

    valid, written = tiler.run(tiler.plan(grid, margin, rows, cols, even), [read], kernel, write, mode)
    assert written == valid == height * width
    np.testing.assert_allclose(out, scene, rtol=0, atol=1e-4 if mode == "blend" else 0)


@settings(max_examples=80, deadline=None)
@given(plans)
def test_blend_weights_are_positive_wherever_a_tile_reads(case):
    height, width, margin, rows, cols, even = case
    grid = _grid(height, width)
    total = np.zeros((height, width))
    for tile in tiler.plan(grid, margin, rows, cols, even).tiles():
        r = tile.read
        weights = tiler.blend_weights(tile, margin, grid)
        assert weights.shape == (r.height, r.width) and (weights >= 0).all() and (weights <= 1).all()
        rows_in, cols_in = tile.inner
        assert (weights[rows_in, cols_in] == 1).all()  # a tile's own pixels count fully
        total[r.row_off:r.row_off + r.height, r.col_off:r.col_off + r.width] += weights
    assert (total >= 1).all()


@settings(max_examples=120, deadline=None)
@given(plans)
def test_even_plans_take_no_more_tiles_and_no_slivers(case):
    height, width, margin, rows, cols, _ = case
    grid = _grid(height, width)
    plain, even = tiler.plan(grid, margin, rows, cols), tiler.plan(grid, margin, rows, cols, even=True)
    assert len(even) <= len(plain) and even.rows <= plain.rows and even.cols <= plain.cols
    for size, inner in ((height, even.rows), (width, even.cols)):
        count = -(-size // inner)
        assert inner - (size - (count - 1) * inner) < count  # the last tile is short by under a pixel a tile
