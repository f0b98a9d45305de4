"""Fuse fine (Landsat) and coarse (MODIS) rasters into fine LST on the prediction date.

One driver for every registered method (backend/fusion/methods.py): it checks the inputs
once, prepares the method's scene-level state once, and lets the tiler read haloed
windows from every input, run the method's kernel and write the result, so memory is
bounded by a tile, not the scene. Output pixels where the inputs give no valid support
stay nodata and are counted in the output's metadata.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from ..errors import InputError
from ..io import tiler
from ..io.atomic import atomic_paths
from ..io.grid import coarse_pixel_m
from ..io.lst_raster import LSTRaster
from ..io.outputs import check_output_size, check_raster_output, output_tag
from ..io.readers import PLAUSIBLE_K, normalise_unit
from ..io.writers import describe_lst_band, from_kelvin, lst_profile, lst_tags, raster_output
from ..progress import Progress, ensure
from . import consistency, sensor_bias, uncertainty
from .inputs import FusionInputs, by_role, load_fusion_inputs
from .methods import FusionMethod, get


@dataclass
class FusionResult:
    path: Path
    method: str
    target_date: str
    reference_dates: list[str]
    valid_fraction: float
    nodata_pixels: int
    uncertainty: Path | None = None  # the 1σ raster, when asked for


def fuse(
    method: str,
    pairs: list[tuple[str | os.PathLike, str | os.PathLike]],
    coarse_target: str | os.PathLike,
    out_path: str | os.PathLike,
    params=None,
    unit: str | None = None,
    tile_rows: int | None = None,
    tile_cols: int | None = None,
    progress: Progress | None = None,
    out_unit: str = "K",
    algorithm: str = "fuse",
) -> FusionResult:
    """Predict fine LST at the date of ``coarse_target`` with ``method`` and write it atomically.

    ``pairs`` are (fine, coarse) reference rasters of the same dates; every raster must be
    on the fine grid (resample MODIS first). ``tile_rows``/``tile_cols`` override the
    method's tiling (results do not depend on it beyond float rounding). ``out_unit``: 'K'
    or 'C' for the output (methods compute in Kelvin). ``algorithm`` is recorded in the output's
    tags: only a run of the same algorithm may replace it.
    """
    progress = ensure(progress)
    out_unit = normalise_unit(out_unit) or "K"
    spec, params = method_and_params(method, params)
    required = spec.references(params)
    inputs = load_fusion_inputs(pairs, coarse_target, required, bracket=required == 2, unit=unit,
                                method=spec.short, progress=progress)
    sources = [p for pair in pairs for p in pair] + [coarse_target]
    out_path = check_raster_output(out_path, sources, algorithm=algorithm)
    rasters = 1
    if getattr(params, "uncertainty", False):
        check_raster_output(uncertainty_path(out_path), sources, "OUTPUT (its uncertainty raster)",
                            algorithm=algorithm)
        rasters = 2
    check_output_size(out_path.parent, inputs.grid.width, inputs.grid.height, 4, rasters, progress=progress)
    return fuse_inputs(spec, params, inputs, out_path, {}, tile_rows, tile_cols, progress, out_unit, algorithm)


def uncertainty_path(out_path: str | os.PathLike) -> Path:
    """Where a fused raster's uncertainty goes: beside it, ``<name>_uncertainty.tif``."""
    out = Path(out_path)
    return out.with_name(f"{out.stem}_uncertainty.tif")


def write_uncertainty(spec: FusionMethod, inputs: FusionInputs, path: Path, algorithm: str,
                      progress: Progress | None = None) -> None:
    """Write the per-pixel 1σ of ``spec``'s prediction from ``inputs`` (backend/fusion/uncertainty.py) at
    ``path``: a temporary of :func:`write_fused`, renamed together with the fused raster."""
    from ..io.grid import block_rows_for

    grid = inputs.grid
    tile_plan = tiler.plan(grid, uncertainty.MARGIN, block_rows_for(grid.width, 96))
    with raster_output(path, **lst_profile(grid.crs, grid.transform, grid.width, grid.height)) as dst:
        dst.set_band_description(1, f"{spec.short} uncertainty, 1 sigma (K)")
        tiler.run(tile_plan, input_readers(inputs), uncertainty.kernel(spec.uncertainty),
                  lambda block, window: dst.write(block, 1, window=window), "crop", progress)
        dst.update_tags(LST_FUSION_CONTENT="fusion_uncertainty", LST_UNIT="K", FUSION_METHOD=spec.name.upper(),
                        ACQUISITION_DATE=str(inputs.target_date), **output_tag(algorithm),
                        UNCERTAINTY_MODEL="sqrt(a^2 + (b |dC|)^2 + (c h)^2), a, b, c = "
                                          + ", ".join(f"{x:g}" for x in spec.uncertainty))


def method_and_params(method: str, params=None) -> tuple[FusionMethod, object]:
    """The registry entry of ``method`` and its checked parameters (defaults when ``params`` is None)."""
    spec = get(method)
    params = params if params is not None else spec.params()
    if not isinstance(params, spec.params):
        raise InputError(f"{spec.title} takes {spec.params.__name__}, not {type(params).__name__}.")
    params.validate()
    if getattr(params, "uncertainty", False) and spec.uncertainty is None:
        raise InputError(f"UNCERTAINTY: {spec.short} has no calibrated uncertainty model (bench/bench_uncertainty.py "
                         "fits one); turn UNCERTAINTY off for this method.")
    return spec, params


@dataclass(frozen=True)
class Adjustments:
    """The LST options around a method: sensor-bias correction of the references before it runs
    (backend/fusion/sensor_bias.py) and the coarse-consistency correction of its prediction
    (backend/fusion/consistency.py). ``sigma``: MODIS's footprint in fine pixels."""

    sigma: float = 0.0
    consistency: bool = False
    bias: str = "none"
    offsets: tuple[float, ...] | None = None  # per reference pair, for bias "landsat"

    def margin(self, spec: FusionMethod) -> int:
        """Extra context a tile reads for them (window methods only; networks blend their tiles, and
        the consistency correction of networks and per-pixel methods is a second pass, :func:`second_pass`)."""
        if spec.mode != "crop":
            return 0
        return ((consistency.margin(self.sigma) if self.consistency and not self.second_pass(spec) else 0)
                + (sensor_bias.margin(self.sigma) if self.bias != "none" else 0))

    def second_pass(self, spec: FusionMethod) -> bool:
        """Networks are corrected after their blended prediction is whole, and methods that say so
        (per-pixel ones, which would otherwise read two footprints of context around every tile) after
        their prediction is written: exact for any tiling."""
        return self.consistency and (spec.mode == "blend" or spec.consistency_afterwards)


def adjustments(params, inputs: FusionInputs, cache: dict | None = None) -> Adjustments:
    """The options ``params`` asks for, with the scene statistics they need (computed once per pair)."""
    on = getattr(params, "coarse_consistency", False)
    bias = getattr(params, "sensor_bias", "none")
    if not on and bias == "none":
        return Adjustments()
    sigma = consistency.sigma_px(inputs.grid.pixel_size_m(), coarse_pixel_m([inputs.coarse_target.path]))
    offsets = None
    if bias == "landsat":
        cache = {} if cache is None else cache
        offsets = tuple(sensor_bias.reference_offset(f, c, inputs.grid, cache) for f, c in inputs.pairs)
    return Adjustments(sigma, on, bias, offsets)


def fusion_plan(spec: FusionMethod, params, inputs: FusionInputs, tile_rows: int | None = None,
                tile_cols: int | None = None, adjust: Adjustments = Adjustments()) -> tiler.Plan:
    """The tiles a method runs on (the same plan wherever they are computed)."""
    grid = inputs.grid
    rows = tile_rows or (spec.tile_rows(params, grid.width, len(inputs.pairs)) if spec.tile_rows else grid.height)
    cols = tile_cols or (spec.tile_cols(params) if spec.tile_cols else None)
    return tiler.plan(grid, spec.margin(params) + adjust.margin(spec), rows, cols, even=spec.mode == "blend")


def method_kernel(spec: FusionMethod, params, state, adjust: Adjustments = Adjustments()) -> tiler.Kernel:
    """The method's kernel over one tile, inside the options ``adjust`` turns on.

    The references are corrected first, so the consistency step measures the offset of the
    references the method saw.
    """
    def kernel(arrays, tile):
        return spec.kernel(by_role(arrays), tile, params, state)

    if adjust.consistency and not adjust.second_pass(spec):
        kernel = consistency.wrap_kernel(kernel, adjust.sigma)
    if adjust.bias != "none":
        kernel = sensor_bias.wrap_kernel(kernel, adjust.sigma, adjust.offsets)
    return kernel


def input_readers(inputs: FusionInputs) -> list:
    """Window readers in inputs.READ_ORDER: fine_t1, coarse_t1[, fine_t3, coarse_t3], coarse_t2 (the option wrappers
    work on the pairs in this order; a method's kernel receives them by role)."""
    items = [x for pair in inputs.pairs for x in pair] + [inputs.coarse_target]
    return [lambda window, item=item: item.read(window).data for item in items]


def method_tags(spec: FusionMethod, params, state, adjust: Adjustments = Adjustments()) -> dict[str, str]:
    tags = spec.tags(params, state) if spec.tags else {}
    if adjust.consistency:
        tags["FUSION_COARSE_CONSISTENCY"] = f"MODIS footprint sigma {adjust.sigma:.1f} px"
    if adjust.bias != "none":
        offsets = (f", scene offsets {', '.join(f'{o:+.2f}' for o in adjust.offsets)} K" if adjust.offsets
                   else "")
        tags["FUSION_SENSOR_BIAS"] = f"{adjust.bias} level, MODIS footprint sigma {adjust.sigma:.1f} px{offsets}"
    return tags


def corrected_afterwards(produce, inputs: FusionInputs, adjust: Adjustments, scratch: Path,
                         progress: Progress | None = None):
    """``produce`` followed by the coarse-consistency correction over the whole (blended) prediction.

    The network's tiles are blended (a per-pixel method's tiles written) into ``scratch`` first; the
    correction then runs as a window method over it (two MODIS footprints of context per tile), so
    the result does not depend on the tiling. ``scratch`` is removed whatever happens.
    """
    from ..io.grid import block_rows_for

    progress = ensure(progress)
    grid = inputs.grid

    def run(write):
        try:
            with raster_output(scratch, **lst_profile(grid.crs, grid.transform, grid.width, grid.height)) as dst:
                produce(lambda block, window: dst.write(block, 1, window=window))
            extra = sensor_bias.margin(adjust.sigma) if adjust.bias != "none" else 0
            # ~100 bytes a pixel in float64 footprints and every input's float32: a small band, beside the
            # network's memory arena
            rows = block_rows_for(grid.width, 128 + 8 * len(inputs.pairs))
            tile_plan = tiler.plan(grid, consistency.margin(adjust.sigma) + extra, rows)
            with rasterio.open(scratch) as src:
                readers = [lambda window: src.read(1, window=window), *input_readers(inputs)]

                def kernel(arrays, tile):
                    refs = arrays[1:]
                    if adjust.bias != "none":
                        refs = sensor_bias.debias_references(refs, adjust.sigma, adjust.offsets)
                    return consistency.correct(arrays[0], refs, adjust.sigma)[tile.inner]

                progress.info("Coarse-consistency correction of the blended prediction")
                return tiler.run(tile_plan, readers, kernel, write, "crop", progress)
        finally:
            scratch.unlink(missing_ok=True)

    return run


class Plausibility:
    """Running tally of a prediction's values (K), so a broken model (1,000 K, 1e11 K) is refused as an
    implausible input would be: the median within PLAUSIBLE_K and at most 5 % of pixels 30 K beyond it."""

    def __init__(self) -> None:
        self.count = self.outside = 0
        self.sample: list[np.ndarray] = []

    def add(self, block: np.ndarray) -> None:
        values = block[np.isfinite(block)]
        lo, hi = PLAUSIBLE_K
        self.count += values.size
        self.outside += int(np.count_nonzero((values < lo - 30) | (values > hi + 30)))
        self.sample.append(values[::97])

    def check(self, what: str) -> None:
        if not self.count:
            return
        lo, hi = PLAUSIBLE_K
        median = float(np.median(np.concatenate(self.sample)))
        share = self.outside / self.count
        if lo <= median <= hi and share <= 0.05:
            return
        raise InputError(f"{what}: the prediction is not land surface temperature (median {median:.4g} K, "
                         f"{share:.0%} of pixels outside {lo - 30:.0f}-{hi + 30:.0f} K), so it was not written. "
                         "Check the model and its inputs; set ALLOW_IMPLAUSIBLE to write it anyway.")


def predictor_name(spec: FusionMethod, params) -> str:
    """The method, and the model file when it has one, as messages name them."""
    model = getattr(params, "path", "")
    return spec.short + (f" ({Path(model).name})" if model else "")


def write_fused(spec: FusionMethod, params, inputs: FusionInputs, out_path: Path, extra_tags: dict[str, str],
                produce, adjust: Adjustments, progress: Progress | None = None, out_unit: str = "K",
                algorithm: str = "fuse") -> FusionResult:
    """Write a fused raster atomically in ``out_unit``; ``produce(write)`` writes its (Kelvin) blocks and returns
    (valid, written).

    With ``params.uncertainty`` its 1σ raster is written beside it, and the two appear together
    or not at all.
    """
    progress = ensure(progress)
    grid = inputs.grid
    meta = LSTRaster(np.zeros((1, 1), np.float32), grid.crs, grid.transform, inputs.target_date,
                     f"{spec.name.upper()} fusion", "landsat", str(inputs.coarse_target.path))
    tags = {**lst_tags(meta, out_unit, algorithm), "FUSION_METHOD": spec.name.upper(),
            "FUSION_REFERENCE_DATES": ",".join(str(f.date) for f, _ in inputs.pairs),
            "FUSION_PARAMETERS": repr(params), **extra_tags}
    sigma_path = uncertainty_path(out_path) if getattr(params, "uncertainty", False) else None
    # raster_output reads each raster back (and records its statistics) before the rename: no second read here.
    with atomic_paths([out_path, *([sigma_path] if sigma_path else [])]) as temporaries:
        tmp = temporaries[0]
        if adjust.second_pass(spec):
            produce = corrected_afterwards(produce, inputs, adjust, tmp.with_name(tmp.name + ".pass1.tif"), progress)
        tally = Plausibility()

        def write(block, window):
            tally.add(block)
            dst.write(from_kelvin(block, out_unit), 1, window=window)

        with raster_output(tmp, **lst_profile(grid.crs, grid.transform, grid.width, grid.height)) as dst:
            describe_lst_band(dst, out_unit)
            valid, written = produce(write)
            nodata = written - valid
            dst.update_tags(**tags, FUSION_NODATA_PIXELS=str(nodata))
        if valid == 0:
            raise InputError(f"{inputs.target_date}: {predictor_name(spec, params)} predicted no valid pixel (NaN "
                             "everywhere): either the inputs share no valid pixel (gap-fill them first) or the "
                             "model is broken.")
        if not getattr(params, "allow_implausible", False):
            tally.check(f"{inputs.target_date}: {predictor_name(spec, params)}")
        if sigma_path:
            write_uncertainty(spec, inputs, temporaries[1], algorithm, progress)
    if nodata:
        progress.warn(f"{inputs.target_date}: {nodata} pixel(s) ({nodata / written:.1%}) had no valid input and "
                      "are nodata.")
    return FusionResult(out_path, spec.name, str(inputs.target_date),
                        [str(f.date) for f, _ in inputs.pairs], valid / written, nodata, sigma_path)


def fuse_inputs(
    spec: FusionMethod,
    params,
    inputs: FusionInputs,
    out_path: Path,
    cache: dict,
    tile_rows: int | None = None,
    tile_cols: int | None = None,
    progress: Progress | None = None,
    out_unit: str = "K",
    algorithm: str = "fuse",
) -> FusionResult:
    """Fuse checked inputs into ``out_path`` (already checked) in ``out_unit``; ``cache`` is shared across a series."""
    progress = ensure(progress)
    state = spec.prepare(inputs, params, progress, cache)
    adjust = adjustments(params, inputs, cache)
    tile_plan = fusion_plan(spec, params, inputs, tile_rows, tile_cols, adjust)
    progress.info(f"{spec.short} on {inputs.grid.describe()}, predicting {inputs.target_date} from "
                  f"{', '.join(str(f.date) for f, _ in inputs.pairs)} in {len(tile_plan)} tile(s)")

    def produce(write):
        with spec.in_use(state):
            return tiler.run(tile_plan, input_readers(inputs), method_kernel(spec, params, state, adjust), write,
                             spec.mode, progress)

    return write_fused(spec, params, inputs, out_path, method_tags(spec, params, state, adjust), produce, adjust,
                       progress, out_unit, algorithm)
