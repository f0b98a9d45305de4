"""Fuse a fine (Landsat) reference and coarse (MODIS) rasters into fine LST on the prediction date.

This module drives the classical methods (STARFM: one reference pair; ESTARFM: two
pairs bracketing the date) over rasters of any size: it reads row blocks with a halo of
half a window from every input, predicts the block, and writes it, so memory is bounded
by the block, not the scene. Output pixels where the inputs give no valid support stay
nodata and are counted in the output's metadata.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .errors import InputError
from .estarfm import EstarfmParams, estarfm_block
from .fusion_inputs import global_stats, load_fusion_inputs
from .grid import block_rows_for
from .lst_raster import LSTRaster
from .outputs import check_output_size, check_raster_output
from .progress import Progress, ensure
from .starfm import StarfmParams, starfm_block
from .writers import describe_lst_band, lst_profile, lst_tags, raster_output, verify_raster

METHODS = {"starfm": 1, "estarfm": 2}  # method -> reference pairs it needs


@dataclass
class FusionResult:
    path: Path
    method: str
    target_date: str
    reference_dates: list[str]
    valid_fraction: float
    nodata_pixels: int


def fuse(
    method: str,
    pairs: list[tuple[str | os.PathLike, str | os.PathLike]],
    coarse_target: str | os.PathLike,
    out_path: str | os.PathLike,
    params: StarfmParams | EstarfmParams | None = None,
    unit: str | None = None,
    block_rows: int | None = None,
    progress: Progress | None = None,
) -> FusionResult:
    """Predict fine LST at the date of ``coarse_target`` with ``method`` and write it atomically.

    ``pairs`` are (fine, coarse) reference rasters of the same dates; every raster must be
    on the fine grid (resample MODIS first).
    """
    progress = ensure(progress)
    method = method.lower()
    if method not in METHODS:
        raise InputError(f"Unknown fusion method {method!r}: choose one of {', '.join(METHODS)}.")
    if params is None:
        params = StarfmParams() if method == "starfm" else EstarfmParams()
    params.validate()
    inputs = load_fusion_inputs(pairs, coarse_target, METHODS[method], bracket=method == "estarfm", unit=unit,
                                method=method.upper(), progress=progress)
    grid = inputs.grid
    out_path = check_raster_output(out_path, [p for pair in pairs for p in pair] + [coarse_target])
    check_output_size(out_path.parent, grid.width, grid.height, 4, progress=progress)
    half = params.half
    stats = [global_stats(f, grid) for f, _ in inputs.pairs]
    thresholds = [std * 2.0 / params.classes for _, std in stats]
    reference_temperature = stats[0][0]  # conditions ESTARFM's regression sums; any nearby value works
    # About 30 float64 arrays per pixel of a block (inputs, derived terms, accumulators).
    rows = block_rows or block_rows_for(grid.width, 240, 192 * 2**20)
    blocks = list(grid.row_blocks(rows, half))
    reference_items = [x for pair in inputs.pairs for x in pair]
    progress.info(f"{method.upper()} on {grid.describe()}, window {params.window} px, predicting "
                  f"{inputs.target_date} from {', '.join(str(f.date) for f, _ in inputs.pairs)}")
    meta = LSTRaster(np.zeros((1, 1), np.float32), grid.crs, grid.transform, inputs.target_date,
                     f"{method.upper()} fusion", "landsat", str(inputs.coarse_target.path))
    tags = {**lst_tags(meta, "K"), "FUSION_METHOD": method.upper(),
            "FUSION_REFERENCE_DATES": ",".join(str(f.date) for f, _ in inputs.pairs),
            "FUSION_PARAMETERS": repr(params)}
    valid_count = expected = 0
    with atomic_path(out_path, verify=verify_raster) as tmp:
        with raster_output(tmp, **lst_profile(grid.crs, grid.transform, grid.width, grid.height)) as dst:
            describe_lst_band(dst, "K")
            for b, (window, haloed, inner) in enumerate(blocks):
                arrays = [it.read(haloed).data for it in reference_items] + [inputs.coarse_target.read(haloed).data]
                if method == "starfm":
                    f1, c1, c0 = arrays
                    block = starfm_block(f1, c1, c0, inner, params, thresholds[0])
                else:
                    f1, c1, f3, c3, c2 = arrays
                    block = estarfm_block(f1, c1, f3, c3, c2, inner, params, (thresholds[0], thresholds[1]),
                                          reference_temperature)
                dst.write(block, 1, window=window)
                valid_count += int(np.isfinite(block).sum())
                expected += block.size
                progress.update((b + 1) / len(blocks))
            nodata = expected - valid_count
            dst.update_tags(**tags, FUSION_NODATA_PIXELS=str(nodata))
        if valid_count == 0:
            raise InputError("No pixel could be predicted: the inputs share no valid pixel. Gap-fill them first.")
    if nodata:
        progress.warn(f"{nodata} pixel(s) ({nodata / expected:.1%}) had no valid input and are nodata.")
    return FusionResult(out_path, method, str(inputs.target_date),
                        [str(f.date) for f, _ in inputs.pairs], valid_count / expected, nodata)
