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

from ..errors import InputError
from ..io import tiler
from ..io.atomic import atomic_path
from ..io.grid import coarse_pixel_m
from ..io.lst_raster import LSTRaster
from ..io.outputs import check_output_size, check_raster_output
from ..io.writers import describe_lst_band, lst_profile, lst_tags, raster_output, verify_raster
from ..progress import Progress, ensure
from . import consistency, uncertainty
from .inputs import FusionInputs, load_fusion_inputs
from .methods import FusionMethod, get

METHODS = ("starfm", "estarfm", "onnx")


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
) -> FusionResult:
    """Predict fine LST at the date of ``coarse_target`` with ``method`` and write it atomically.

    ``pairs`` are (fine, coarse) reference rasters of the same dates; every raster must be
    on the fine grid (resample MODIS first). ``tile_rows``/``tile_cols`` override the
    method's tiling (results do not depend on it beyond float rounding).
    """
    progress = ensure(progress)
    spec, params = method_and_params(method, params)
    required = spec.references(params)
    inputs = load_fusion_inputs(pairs, coarse_target, required, bracket=required == 2, unit=unit,
                                method=spec.title.split(" (")[0], progress=progress)
    sources = [p for pair in pairs for p in pair] + [coarse_target]
    out_path = check_raster_output(out_path, sources)
    if getattr(params, "uncertainty", False):
        check_raster_output(uncertainty_path(out_path), sources, "OUTPUT (its uncertainty raster)")
    check_output_size(out_path.parent, inputs.grid.width, inputs.grid.height, 4, progress=progress)
    return fuse_inputs(spec, params, inputs, out_path, {}, tile_rows, tile_cols, progress)


def uncertainty_path(out_path: str | os.PathLike) -> Path:
    """Where a fused raster's uncertainty goes: beside it, ``<name>_uncertainty.tif``."""
    out = Path(out_path)
    return out.with_name(f"{out.stem}_uncertainty.tif")


def write_uncertainty(spec: FusionMethod, inputs: FusionInputs, path: Path,
                      progress: Progress | None = None) -> Path:
    """The per-pixel 1σ of ``spec``'s prediction from ``inputs`` (backend/fusion/uncertainty.py), atomically."""
    from ..io.grid import block_rows_for

    grid = inputs.grid
    the_plan = tiler.plan(grid, uncertainty.MARGIN, block_rows_for(grid.width, 96))
    with atomic_path(path, verify=verify_raster) as tmp:
        with raster_output(tmp, **lst_profile(grid.crs, grid.transform, grid.width, grid.height)) as dst:
            dst.set_band_description(1, f"{spec.title.split(' (')[0]} uncertainty, 1 sigma (K)")
            tiler.run(the_plan, input_readers(inputs), uncertainty.kernel(spec.name),
                      lambda block, window: dst.write(block, 1, window=window), "crop", progress)
            dst.update_tags(LST_FUSION_CONTENT="fusion_uncertainty", LST_UNIT="K", FUSION_METHOD=spec.name.upper(),
                            ACQUISITION_DATE=str(inputs.target_date),
                            UNCERTAINTY_MODEL="sqrt(a^2 + (b |dC|)^2 + (c h)^2), a, b, c = "
                                              + ", ".join(f"{x:g}" for x in uncertainty.COEFFICIENTS[spec.name]))
    return path


def method_and_params(method: str, params=None) -> tuple[FusionMethod, object]:
    """The registry entry of ``method`` and its checked parameters (defaults when ``params`` is None)."""
    spec = get(method)
    params = params if params is not None else spec.params()
    if not isinstance(params, spec.params):
        raise InputError(f"{spec.title} takes {spec.params.__name__}, not {type(params).__name__}.")
    params.validate()
    return spec, params


def consistency_sigma(params, inputs: FusionInputs) -> float | None:
    """σ (fine pixels) of the MODIS footprint when the coarse-consistency correction is on, else None."""
    if not getattr(params, "coarse_consistency", False):
        return None
    return consistency.sigma_px(inputs.grid.pixel_size_m(), coarse_pixel_m([inputs.coarse_target.path]))


def fusion_plan(spec: FusionMethod, params, grid, tile_rows: int | None = None,
                tile_cols: int | None = None, sigma: float | None = None) -> tiler.Plan:
    """The tiles a method runs on (the same plan wherever they are computed)."""
    rows = tile_rows or (spec.tile_rows(params, grid.width) if spec.tile_rows else grid.height)
    cols = tile_cols or (spec.tile_cols(params) if spec.tile_cols else None)
    extra = consistency.margin(sigma) if sigma and spec.mode == "crop" else 0
    return tiler.plan(grid, spec.margin(params) + extra, rows, cols)


def method_kernel(spec: FusionMethod, params, state, sigma: float | None = None) -> tiler.Kernel:
    """The method's kernel over one tile, with the coarse-consistency correction when ``sigma`` is set."""
    def kernel(arrays, tile):
        return spec.kernel(arrays, tile, params, state)

    return consistency.wrap_kernel(kernel, spec.mode, sigma) if sigma else kernel


def input_readers(inputs: FusionInputs) -> list:
    """Window readers in the kernels' order: fine_t1, coarse_t1[, fine_t3, coarse_t3], coarse_t2."""
    items = [x for pair in inputs.pairs for x in pair] + [inputs.coarse_target]
    return [lambda window, item=item: item.read(window).data for item in items]


def method_tags(spec: FusionMethod, params, state, sigma: float | None = None) -> dict[str, str]:
    tags = spec.tags(params, state) if spec.tags else {}
    if sigma:
        tags["FUSION_COARSE_CONSISTENCY"] = f"MODIS footprint sigma {sigma:.1f} px"
    return tags


def write_fused(spec: FusionMethod, params, inputs: FusionInputs, out_path: Path, extra_tags: dict[str, str],
                produce, progress: Progress | None = None) -> FusionResult:
    """Write a fused raster atomically; ``produce(write)`` writes its blocks and returns (valid, written).

    With ``params.uncertainty`` its 1σ raster follows, beside it.
    """
    progress = ensure(progress)
    grid = inputs.grid
    meta = LSTRaster(np.zeros((1, 1), np.float32), grid.crs, grid.transform, inputs.target_date,
                     f"{spec.name.upper()} fusion", "landsat", str(inputs.coarse_target.path))
    tags = {**lst_tags(meta, "K"), "FUSION_METHOD": spec.name.upper(),
            "FUSION_REFERENCE_DATES": ",".join(str(f.date) for f, _ in inputs.pairs),
            "FUSION_PARAMETERS": repr(params), **extra_tags}
    with atomic_path(out_path, verify=verify_raster) as tmp:
        with raster_output(tmp, **lst_profile(grid.crs, grid.transform, grid.width, grid.height)) as dst:
            describe_lst_band(dst, "K")
            valid, written = produce(lambda block, window: dst.write(block, 1, window=window))
            nodata = written - valid
            dst.update_tags(**tags, FUSION_NODATA_PIXELS=str(nodata))
        if valid == 0:
            raise InputError(f"{inputs.target_date}: no pixel could be predicted: the inputs share no valid pixel. "
                             "Gap-fill them first.")
    if nodata:
        progress.warn(f"{inputs.target_date}: {nodata} pixel(s) ({nodata / written:.1%}) had no valid input and "
                      "are nodata.")
    sigma_path = (write_uncertainty(spec, inputs, uncertainty_path(out_path), progress)
                  if getattr(params, "uncertainty", False) else None)
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
) -> FusionResult:
    """Fuse checked inputs into ``out_path`` (already checked); ``cache`` is shared across a series."""
    progress = ensure(progress)
    state = spec.prepare(inputs, params, progress, cache)
    sigma = consistency_sigma(params, inputs)
    the_plan = fusion_plan(spec, params, inputs.grid, tile_rows, tile_cols, sigma)
    progress.info(f"{spec.title.split(' (')[0]} on {inputs.grid.describe()}, predicting {inputs.target_date} from "
                  f"{', '.join(str(f.date) for f, _ in inputs.pairs)} in {len(the_plan)} tile(s)")

    def produce(write):
        return tiler.run(the_plan, input_readers(inputs), method_kernel(spec, params, state, sigma), write, spec.mode,
                         progress)

    return write_fused(spec, params, inputs, out_path, method_tags(spec, params, state, sigma), produce, progress)
