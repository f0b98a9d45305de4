"""The fusion-method registry: STARFM, ESTARFM and trained ONNX models behind one interface.

An entry says how many reference pairs the method needs (for an ONNX model, its card
says), its parameter dataclass (the one source of defaults and of the user-facing
parameters), a scene-level preparation run once per fusion (similarity thresholds from
scene statistics, an ONNX Runtime session) and a kernel over one tile of haloed arrays.
The tiler (backend/io/tiler.py) does the reading, writing and blending. Adding a method
(FSDAF, say) is one module plus one entry here.

Kernels receive the tile's arrays keyed by role, with models/contract.py's names: fine_t1,
coarse_t1, coarse_t2 and, for two-pair methods, fine_t3, coarse_t3 (references sorted by date).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..errors import InputError
from ..io.tiler import Tile
from ..progress import Progress
from . import onnx_model
from .inputs import EVERY_PAIR, FusionInputs, global_stats
from .params import EstarfmParams, SeasonParams, StarfmParams


@dataclass(frozen=True)
class FusionMethod:
    name: str
    title: str
    params: type
    references: Callable[[Any], int]  # params -> reference pairs needed (inputs.EVERY_PAIR: all that are given)
    # Scene-level state, computed once; ``cache`` is shared by the dates of a series, so the
    # statistics of a reference pair (or an ONNX Runtime session) are computed once per series.
    prepare: Callable[[FusionInputs, Any, Progress, dict], Any]
    margin: Callable[[Any], int]  # context a tile needs on every side (px)
    kernel: Callable[[dict[str, np.ndarray], Tile, Any, Any], np.ndarray]  # arrays by role, tile, params, state
    mode: str = "crop"  # 'crop': exact inner part; 'blend': overlapping tiles averaged (CNNs)
    tile_rows: Callable[[Any, int, int], int] | None = None  # params, width, reference pairs -> inner rows per tile
    tile_cols: Callable[[Any], int | None] | None = None  # None: full-width bands
    tags: Callable[[Any, Any], dict[str, str]] | None = None  # params, state -> metadata of the output
    requires: tuple[str, ...] = ()  # modules the kernel imports when it first runs (checked on Dask workers)
    label: str = ""  # the method as messages and layer names say it ("STARFM"); the title's head when empty
    help: str = ""  # its paragraph in the help of Fuse and Fuse time series
    # (a, b, c) of backend/fusion/uncertainty.py's σ model, fitted by bench/bench_uncertainty.py; None: the
    # method has no calibrated uncertainty, and UNCERTAINTY is refused before any work.
    uncertainty: tuple[float, float, float] | None = None
    # Whether prepare() reads each fine reference's scene mean and σ (reference_statistics): a series then
    # computes them once and sends them to its workers.
    reference_statistics: bool = False
    # The coarse-consistency correction runs as a second pass over the whole written prediction instead of
    # around every tile (a per-pixel method would read two MODIS footprints of context for each).
    consistency_afterwards: bool = False
    # Gives back what the state holds between runs (ONNX Runtime's memory arena) once a date's tiles are
    # done, so the coarse-consistency pass and the next date do not stack on it.
    release: Callable[[Any], None] | None = None

    @contextlib.contextmanager
    def in_use(self, state) -> Iterator[None]:
        """Around a date's tiles: afterwards (done, failed or cancelled) :attr:`release` gives back what the
        state holds."""
        try:
            yield
        finally:
            if self.release is not None:
                self.release(state)

    @property
    def short(self) -> str:
        return self.label or self.title.split(" (")[0]


# ------------------------------------------------------------------ STARFM / ESTARFM

def reference_statistics(fine_items, grid, cache: dict) -> dict:
    """Mean and standard deviation of each fine reference, added to ``cache`` once per raster."""
    for fine in fine_items:
        if ("stats", fine.path) not in cache:
            cache[("stats", fine.path)] = global_stats(fine, grid)
    return cache


class Similarity(NamedTuple):
    """A fine reference's scene mean (K) and the threshold 2σ/m within which pixels count as similar."""

    mean: float
    threshold: float


def _thresholds(inputs: FusionInputs, classes: int, cache: dict) -> list[Similarity]:
    """The similarity of each fine reference, in date order."""
    reference_statistics([fine for fine, _ in inputs.pairs], inputs.grid, cache)
    stats = [cache[("stats", fine.path)] for fine, _ in inputs.pairs]
    return [Similarity(mean, std * 2.0 / classes) for mean, std in stats]


def _starfm_kernel(arrays: dict[str, np.ndarray], tile: Tile, params: StarfmParams,
                   state: list[Similarity]) -> np.ndarray:
    from .starfm import starfm_block  # numba compiles on first use, not when the registry is read

    first = state[0]
    return starfm_block(arrays["fine_t1"], arrays["coarse_t1"], arrays["coarse_t2"], tile.inner[0], params,
                        first.threshold)[:, tile.inner[1]]


def _estarfm_kernel(arrays: dict[str, np.ndarray], tile: Tile, params: EstarfmParams,
                    state: list[Similarity]) -> np.ndarray:
    from .estarfm import estarfm_block

    first, second = state
    # The first reference's scene mean conditions the regression sums; any nearby value works.
    return estarfm_block(arrays["fine_t1"], arrays["coarse_t1"], arrays["fine_t3"], arrays["coarse_t3"],
                         arrays["coarse_t2"], tile.inner[0], params, (first.threshold, second.threshold),
                         first.mean)[:, tile.inner[1]]


def _window_rows(bytes_per_pixel: int, per_pair: int = 0) -> Callable[[Any, int, int], int]:
    """Rows per tile holding ``bytes_per_pixel`` (+ ``per_pair`` for each reference pair) within 192 MB."""
    from ..io.grid import block_rows_for

    return lambda params, width, pairs: block_rows_for(width, bytes_per_pixel + per_pair * pairs, 192 * 2**20)


def _season_kernel(arrays: dict[str, np.ndarray], tile: Tile, params: SeasonParams, state) -> np.ndarray:
    from .season import kernel

    return kernel(arrays, tile, params, state)


def _season_prepare(inputs: FusionInputs, params: SeasonParams, progress: Progress, cache: dict):
    from .season import prepare

    return prepare(inputs, params)


# ------------------------------------------------------------------ ONNX models

def _onnx_kernel(arrays: dict[str, np.ndarray], tile: Tile, params: onnx_model.OnnxParams, state) -> np.ndarray:
    return onnx_model.predict(arrays, state)


# Uncertainty coefficients with each method's default options: fitted on two seasons (seeds 21 and 23,
# 300² px, 16 and 8 dates), checked on a third (seed 22, 12 dates): |error| ≤ σ for 67.7 % of pixels with
# STARFM, 68.3 % with the shipped STTFN, 65.7 % with ESTARFM. On a fourth (seed 31, 240² px, 10 dates;
# tests/test_consistency.py): 65.1 %, 66.6 % and 59.8 % (the test asks 55-80 %).
METHODS: dict[str, FusionMethod] = {
    "starfm": FusionMethod(
        "starfm", "STARFM (one reference pair)", StarfmParams, lambda p: 1,
        lambda inputs, p, progress, cache: _thresholds(inputs, p.classes, cache), lambda p: p.half, _starfm_kernel,
        tile_rows=_window_rows(240), requires=("backend.fusion.starfm",), reference_statistics=True,
        help="STARFM (Gao et al., 2006): one reference pair; the fine reference plus MODIS's change, weighted "
             "over similar pixels of a moving window (WINDOW, CLASSES).",
        uncertainty=(1.813, 0.117, 0.469)),
    "estarfm": FusionMethod(
        "estarfm", "ESTARFM (two reference pairs around the date)", EstarfmParams, lambda p: 2,
        lambda inputs, p, progress, cache: _thresholds(inputs, p.classes, cache), lambda p: p.half,
        _estarfm_kernel,
        tile_rows=_window_rows(240), requires=("backend.fusion.estarfm",), reference_statistics=True,
        help="ESTARFM (Zhu et al., 2010): two reference pairs, before and after the date; a per-pixel "
             "conversion coefficient from the regression of fine on coarse change over similar pixels.",
        uncertainty=(1.699, 0.103, 0.371)),
    "onnx": FusionMethod(
        "onnx", "Trained deep model (ONNX file)", onnx_model.OnnxParams, onnx_model.references,
        lambda inputs, p, progress, cache: onnx_model.prepare(p, progress, cache, inputs), lambda p: p.overlap,
        _onnx_kernel,
        mode="blend", tile_rows=lambda p, width, pairs: onnx_model.inner_size(p), tile_cols=onnx_model.inner_size,
        tags=onnx_model.output_tags, requires=("onnxruntime",), label="Trained deep model",
        release=onnx_model.release,
        help="Trained deep model: a network written by Train STF model (MODEL), or a shipped one "
             "(SHIPPED_MODEL), run by ONNX Runtime on overlapping tiles (TILE, TILE_OVERLAP) blended without "
             "seams; its card says whether it takes one reference pair or two.",
        uncertainty=(1.892, 0.071, 0.488)),
    # Appended: saved models and scripts keep their METHOD numbers.
    "season": FusionMethod(
        "season", "Season regression (every reference pair of the series)", SeasonParams, lambda p: EVERY_PAIR,
        _season_prepare, lambda p: 0, _season_kernel,
        # float32 inputs (8 B a pair), a flags read and its weight (9 B), eight float64 accumulators
        tile_rows=_window_rows(160, 17), requires=("backend.fusion.season",), label="Season regression",
        consistency_afterwards=True,
        help="Season regression: every reference pair of the series, not only the nearest. Each fine pixel's "
             "gain on MODIS's change is learned from all pairs (shrunk towards 1 by GAIN_SHRINKAGE; gap-filled "
             "reference pixels count FILLED_WEIGHT), then every reference is carried to the date with it and "
             "averaged with weights falling over MEMORY_DAYS (SEASON_WEIGHT more for the same day of another "
             "year). In Fuse, give the further pairs as REFERENCE_FINE/REFERENCE_COARSE."),
}


def register(method: FusionMethod) -> FusionMethod:
    """Add a fusion method from outside the package; it appears in Fuse and Fuse time series (after the
    others, so saved models and scripts keep their METHOD numbers)."""
    if method.name.lower() in METHODS:
        raise ValueError(f"A fusion method named {method.name!r} is already registered.")
    METHODS[method.name.lower()] = method
    return method


def get(name: str) -> FusionMethod:
    key = str(name).lower()
    if key not in METHODS:
        raise InputError(f"Unknown fusion method {name!r}: choose one of {', '.join(METHODS)}.")
    return METHODS[key]
