"""Time series of LST rasters of one sensor: find them in folders, date them, check their grids.

Stages that work across dates (gap-fill, resample, patching) start here, so every one
of them refuses mixed sensors, duplicate or missing dates and misaligned grids the same way.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rasterio.windows import Window

from .dates import file_name
from .errors import CompanionFileError, InputError, UnknownProductError
from .grid import Grid
from .progress import Progress, ensure
from .readers import _modis_sources, detect_product, read_lst

SENSORS = ("auto", "landsat", "modis")
_RASTER_SUFFIXES = (".tif", ".tiff", ".hdf", ".h4", ".hdf4")
_COMPANION_MARKERS = ("_QA_PIXEL", "_QC_", "_QC.", "_QA_RADSAT", "_ST_QA", "LANDCOVER")


@dataclass(frozen=True)
class SeriesItem:
    """One dated LST raster of a series, described without reading its pixels."""

    path: str
    date: dt.date
    sensor: str
    product: str
    grid: Grid
    unit: str | None = None
    kind: str = "auto"  # the reader: 'modis', 'landsat' or 'float' (detected once)

    def read(self, window: Window | None = None, progress: Progress | None = None):
        return read_lst(self.path, product=self.kind, unit=self.unit, date=self.date, window=window,
                        progress=progress)


def lst_grid(path: str, product: str) -> Grid:
    """The grid of the LST band itself (for HDF files, of its LST subdataset)."""
    if product == "modis" and not path.startswith("HDF4") and Path(path).suffix.lower() in _RASTER_SUFFIXES[2:]:
        path = _modis_sources(path, "LST_Day_1km", None)[0]
    return Grid.of(path)


def find_lst_files(inputs: Iterable[str | os.PathLike], progress: Progress | None = None) -> list[str]:
    """LST rasters among ``inputs``: files as given, folders searched recursively.

    Quality companions (QA_PIXEL, QC), land cover and our own fill-flag rasters are skipped.
    """
    progress = ensure(progress)
    found: list[str] = []
    for item in inputs:
        if not str(item):
            raise InputError("An empty path was given as input.")
        p = Path(item)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in _RASTER_SUFFIXES and not f.name.startswith("."):
                    if any(m in f.name.upper() for m in _COMPANION_MARKERS):
                        continue
                    try:
                        detect_product(f)
                    except CompanionFileError:
                        continue
                    except UnknownProductError as exc:
                        progress.info(f"skipped {f.name}: {exc}")
                        continue
                    found.append(str(f))
        elif str(item).startswith("HDF4") or p.exists():
            found.append(str(item))
        else:
            raise InputError(f"{item}: file or folder not found.")
    return found


def describe(path: str, unit: str | None = None, date: dt.date | None = None) -> SeriesItem:
    """Date, sensor, product and grid of one raster, from a one-pixel read."""
    product = detect_product(path)
    probe = read_lst(path, product=product, unit=unit, date=date, window=Window(0, 0, 1, 1))
    if probe.date is None:
        raise InputError(
            f"{file_name(path)}: no acquisition date in its name or metadata. Rename it with "
            "the date (e.g. lst_2016-02-18.tif) or import it with an explicit date."
        )
    sensor = probe.sensor if probe.sensor in ("landsat", "modis") else "unknown"
    return SeriesItem(path, probe.date, sensor, probe.product, lst_grid(path, product), unit, product)


def load_series(
    inputs: Iterable[str | os.PathLike],
    sensor: str = "auto",
    unit: str | None = None,
    min_dates: int = 1,
    same_grid: bool = True,
    progress: Progress | None = None,
) -> list[SeriesItem]:
    """The dated rasters of one sensor found in ``inputs``, sorted by date and checked.

    ``sensor`` 'landsat' or 'modis' keeps only that sensor's files (so a sample
    dataset's root folder can be given); 'auto' requires all files to share one.
    """
    if sensor not in SENSORS:
        raise InputError(f"Unknown sensor {sensor!r}: choose one of {', '.join(SENSORS)}.")
    inputs = list(inputs)
    files = find_lst_files(inputs, progress)
    items = [describe(f, unit) for f in files]
    if sensor != "auto":
        items = [i for i in items if i.sensor == sensor]
    names = ", ".join(str(i) for i in inputs) or "(nothing)"
    if not items:
        raise InputError(f"No {'' if sensor == 'auto' else sensor + ' '}LST raster found in {names}.")
    sensors = sorted({i.sensor for i in items})
    if len(sensors) > 1:
        raise InputError(
            f"Mixed sensors in {names}: {', '.join(sensors)}. A series must hold one sensor: "
            "choose the sensor parameter or separate the files."
        )
    items.sort(key=lambda i: i.date)
    for a, b in zip(items, items[1:]):
        if a.date == b.date:
            raise InputError(f"Two rasters for {a.date}: {file_name(a.path)} and {file_name(b.path)}. Keep one.")
    if len(items) < min_dates:
        raise InputError(
            f"Only {len(items)} date(s) in {names}; this needs at least {min_dates}."
        )
    if same_grid:
        ref = items[0]
        for item in items[1:]:
            if not item.grid.same_as(ref.grid):
                raise InputError(
                    f"{file_name(item.path)} is not on the grid of {file_name(ref.path)} "
                    f"({item.grid.describe()} vs {ref.grid.describe()}). Resample the series "
                    "onto one grid first (Resample to a reference grid)."
                )
    return items
