"""Reprojection and resampling of (MODIS) LST onto a reference grid, e.g. Landsat's 30 m.

GDAL's warper does the work (through rasterio): it knows the MODIS sinusoidal
projection and every CRS pair, and with NaN declared as nodata it leaves invalid
pixels out of each kernel instead of mixing fill values in, so no cold or hot halo
appears around clouds or at swath edges. The output is written in row blocks: a
10,000 × 10,000 px target costs the memory of one block, not of the whole grid. Every core
works: GDAL's warper threads (NUM_THREADS) warp each block, the next block is warped while
the previous one is compressed and written (GTiff's own compression threads),
bench/bench_resample.py compares it with ``gdalwarp -multi``.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.warp import Resampling, reproject, transform_bounds

from ..errors import InputError
from ..io.atomic import atomic_path
from ..io.grid import Grid, block_rows_for
from ..io.lst_raster import LSTRaster
from ..io.outputs import check_output_folder, check_output_size, check_raster_output, output_folder
from ..io.readers import input_unit_param, normalise_unit
from ..io.series import SeriesItem, describe, find_lst_files, load_series, sensor_param
from ..io.tiler import row_blocks
from ..io.writers import (
    describe_lst_band,
    from_kelvin,
    lst_profile,
    lst_tags,
    output_unit_param,
    raster_output,
    unit_suffix,
)
from ..parameters import param, with_overrides
from ..progress import Progress, ensure

METHODS = {
    "bicubic": Resampling.cubic,
    "bilinear": Resampling.bilinear,
    "nearest": Resampling.nearest,
    "average": Resampling.average,
    "cubic_spline": Resampling.cubic_spline,
}
METHOD_LABELS = ("Bicubic (default, as in the survey)", "Bilinear", "Nearest", "Average", "Cubic spline")


@dataclass(frozen=True)
class ResampleParams:
    """What users set for a resampling; the Processing algorithm builds its parameters from these fields."""

    sensor: str = sensor_param(("modis", "auto", "landsat"))
    method: str = param("bicubic", "METHOD", "Resampling", options=tuple(METHODS), option_labels=METHOD_LABELS)
    unit: str | None = input_unit_param()
    out_unit: str = output_unit_param()


def _check_overlap(source: LSTRaster, grid: Grid) -> None:
    """Refuse inputs that cannot overlap, stating both extents in the target CRS and in degrees."""
    left, bottom, right, top = source.bounds
    try:
        s = transform_bounds(source.crs, grid.crs, left, bottom, right, top, densify_pts=21)
    except Exception:  # noqa: BLE001 - GDAL raises several types for impossible transforms
        s = (np.nan,) * 4
    g = grid.bounds
    overlaps = np.all(np.isfinite(s)) and s[0] < g[2] and s[2] > g[0] and s[1] < g[3] and s[3] > g[1]
    if not overlaps:
        sd = transform_bounds(source.crs, "EPSG:4326", left, bottom, right, top, densify_pts=21)
        gd = grid.bounds_in("EPSG:4326")
        raise InputError(
            f"{Path(source.source).name or 'input'} does not overlap the target grid. "
            f"Input extent: lon {sd[0]:.4f}..{sd[2]:.4f}, lat {sd[1]:.4f}..{sd[3]:.4f}; "
            f"target extent: lon {gd[0]:.4f}..{gd[2]:.4f}, lat {gd[1]:.4f}..{gd[3]:.4f} "
            f"({grid.describe()}). Check that both cover the same place."
        )


def resample_lst(
    source: LSTRaster,
    grid: Grid,
    out_path: str | os.PathLike,
    method: str = "bicubic",
    block_rows: int | None = None,
    progress: Progress | None = None,
    out_unit: str = "K",
    algorithm: str = "resample",
) -> Path:
    """Warp ``source`` onto ``grid`` with ``method`` and write it atomically to ``out_path`` in ``out_unit``
    (tagged as ``algorithm``'s output)."""
    progress = ensure(progress)
    out_unit = normalise_unit(out_unit) or "K"
    if method not in METHODS:
        raise InputError(f"Unknown resampling method {method!r}: choose one of {', '.join(METHODS)}.")
    if source.crs is None:
        raise InputError(f"{source.source}: has no CRS; it cannot be reprojected.")
    _check_overlap(source, grid)
    out_path = check_raster_output(out_path, [source.source], algorithm=algorithm)
    check_output_size(out_path.parent, grid.width, grid.height, 4, progress=progress)
    rows = block_rows or block_rows_for(grid.width, 16)
    blocks = list(row_blocks(grid, rows))
    profile = lst_profile(grid.crs, grid.transform, grid.width, grid.height)
    tags = {**lst_tags(source, out_unit, algorithm), "RESAMPLING": method,
            "SOURCE_RESOLUTION": f"{source.resolution[0]:g}", "SOURCE_CRS": source.crs.to_string()}
    threads = max(1, os.cpu_count() or 1)

    def warp(window) -> np.ndarray:
        block = np.full((int(window.height), int(window.width)), np.nan, np.float32)
        reproject(
            source.data, block,
            src_transform=source.transform, src_crs=source.crs, src_nodata=np.nan,
            dst_transform=rasterio.windows.transform(window, grid.transform), dst_crs=grid.crs,
            dst_nodata=np.nan, resampling=METHODS[method], num_threads=threads,
        )
        return block

    valid = 0
    # raster_output reads every block back (and records the statistics) before the rename: no second read here.
    with atomic_path(out_path) as tmp, ThreadPoolExecutor(1) as warper:
        with raster_output(tmp, **profile, num_threads=threads) as dst:
            dst.update_tags(**tags)
            describe_lst_band(dst, out_unit)
            ahead = warper.submit(warp, blocks[0][0])
            for b, (window, _, _) in enumerate(blocks):
                block = ahead.result()
                if b + 1 < len(blocks):
                    ahead = warper.submit(warp, blocks[b + 1][0])  # warped while this one is written
                valid += int(np.isfinite(block).sum())
                dst.write(from_kelvin(block, out_unit), 1, window=window)
                progress.update((b + 1) / len(blocks))
        if valid == 0:
            raise InputError(f"{source.source}: no valid pixel falls on the target grid ({grid.describe()}).")
    return out_path


def reference_grid(reference: str | os.PathLike) -> Grid:
    """The grid of a reference raster, or of the first Landsat (else any) LST raster in a folder."""
    path = Path(reference)
    if path.is_dir():
        files = find_lst_files([path])
        items = [describe(f) for f in files]
        items = [i for i in items if i.sensor == "landsat"] or items
        if not items:
            raise InputError(f"{path}: no raster to take the reference grid from.")
        return sorted(items, key=lambda i: i.date)[0].grid
    if not path.exists():
        raise InputError(f"{path}: reference raster not found.")
    return describe(str(path)).grid if path.suffix.lower() == ".hdf" else Grid.of(str(path))


def resample_series(
    inputs: list[str | os.PathLike],
    out_dir: str | os.PathLike,
    grid: Grid,
    params: ResampleParams | None = None,
    *,
    progress: Progress | None = None,
    **options,
) -> list[Path]:
    """Resample every raster of a series onto ``grid``, into ``out_dir`` (written atomically); ``params`` (or
    its fields as keywords) say how. Outputs are named ``SENSOR_YYYYMMDD_METHOD.tif`` (``…_degC.tif`` in
    Celsius).
    """
    p = with_overrides(ResampleParams, params, options)
    method, sensor, unit, out_unit = p.method, p.sensor, p.unit, p.out_unit
    progress = ensure(progress)
    check_output_folder(out_dir, "resample", inputs)
    items: list[SeriesItem] = load_series(inputs, sensor=sensor, unit=unit, same_grid=False, progress=progress)
    outputs = []
    with output_folder(out_dir, "resample", [*inputs, *(i.path for i in items)]) as tmp:
        out = Path(out_dir)
        check_output_size(tmp, grid.width, grid.height, 4, len(items), "OUTPUT_FOLDER", progress)
        for k, item in enumerate(items):
            name = f"{item.sensor}_{item.date:%Y%m%d}_{method}{unit_suffix(out_unit)}.tif"
            outputs.append(out / name)
            resample_lst(item.read(), grid, tmp / name, method,
                         progress=progress.sub(k / len(items), (k + 1) / len(items)), out_unit=out_unit)
            progress.info(f"{item.date}: {Path(item.path).name} -> {name}")
        (tmp / "resample_report.json").write_text(json.dumps({
            "kind": "lst_fusion_resample", "method": method,
            "grid": {"crs": grid.crs.to_string(), "transform": list(grid.transform)[:6],
                     "width": grid.width, "height": grid.height},
            "dates": [{"date": i.date.isoformat(), "source": i.path, "output": o.name} for i, o in zip(items, outputs)],
        }, indent=2))
    return outputs
