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

import numpy as np
from rasterio.windows import Window

from ..errors import CompanionFileError, InputError, UnknownProductError
from ..parameters import param
from ..progress import Progress, ensure
from .dates import file_name
from .grid import Grid
from .readers import detect_product, modis_sources, read_lst

SENSORS = ("auto", "landsat", "modis")
SENSOR_LABELS = {"auto": "All files are one sensor", "landsat": "Landsat only", "modis": "MODIS only"}
MISSING_QUALITY = ("refuse", "warn")  # what to do with a MODIS/Landsat product whose QC/QA file is absent
MISSING_QUALITY_LABELS = ("Stop and name the files (default)", "Use them without cloud masking (warn in the log)")


def sensor_param(order: tuple[str, ...] = SENSORS):
    """SENSOR: which sensor's files a series stage takes, ``order[0]`` the default (indices follow ``order``)."""
    return param(order[0], "SENSOR", "Sensor", options=order, option_labels=tuple(SENSOR_LABELS[s] for s in order))


def missing_quality_param():
    """MISSING_QUALITY: what to do with a product whose cloud mask file is not beside it."""
    return param("refuse", "MISSING_QUALITY", "Products without their QA_PIXEL/QC file", options=MISSING_QUALITY,
                 option_labels=MISSING_QUALITY_LABELS, advanced=True)
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
    quality: str | None = None  # the QA/QC file masking clouds; '' when absent, None for float rasters

    def read(self, window: Window | None = None, progress: Progress | None = None):
        # Warnings about the file (missing QA, unit) were reported once by describe/load_series,
        # not again for every block.
        return read_lst(self.path, product=self.kind, unit=self.unit, date=self.date, window=window,
                        progress=progress or _SILENT)


_SILENT = Progress(on_warning=lambda message: None)


def lst_grid(path: str, product: str) -> Grid:
    """The grid of the LST band itself (for HDF files, of its LST subdataset)."""
    if product == "modis" and not path.startswith("HDF4") and Path(path).suffix.lower() in _RASTER_SUFFIXES[2:]:
        path = modis_sources(path, "LST_Day_1km", None)[0]
    return Grid.of(path)


def find_lst_files(inputs: Iterable[str | os.PathLike], progress: Progress | None = None) -> list[str]:
    """LST rasters among ``inputs``: files as given, folders searched recursively.

    Quality companions (QA_PIXEL, QC), land cover and our own fill-flag rasters are skipped.
    """
    progress = ensure(progress)
    found: list[str] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        key = path if path.startswith("HDF4") else os.path.realpath(path)
        if key in seen:
            progress.info(f"{path}: given twice (as a file and within a folder, or twice); read once")
            return
        seen.add(key)
        found.append(path)

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
                    add(str(f))
        elif str(item).startswith("HDF4") or p.exists():
            add(str(item))
        else:
            raise InputError(f"{item}: file or folder not found.")
    return found


def describe(path: str, unit: str | None = None, date: dt.date | None = None) -> SeriesItem:
    """Date, sensor, product, grid and quality file of one raster, from a one-pixel read."""
    product = detect_product(path)
    probe = read_lst(path, product=product, unit=unit, date=date, window=Window(0, 0, 1, 1), progress=_SILENT)
    if probe.date is None:
        raise InputError(
            f"{file_name(path)}: no acquisition date in its name or metadata. Rename it with "
            "the date (e.g. lst_2016-02-18.tif) or import it with an explicit date."
        )
    sensor = probe.sensor if probe.sensor in ("landsat", "modis") else "unknown"
    quality = None if product == "float" else probe.tags.get("qa", probe.tags.get("qc", ""))
    return SeriesItem(path, probe.date, sensor, probe.product, lst_grid(path, product), unit, product, quality)


def check_quality_files(items: Iterable[SeriesItem], missing_quality: str, progress: Progress | None = None) -> None:
    """Refuse (or warn about, in the run's log) products read without their cloud mask."""
    progress = ensure(progress)
    if missing_quality not in MISSING_QUALITY:
        raise InputError(f"Unknown choice {missing_quality!r} for a missing quality file: "
                         f"choose one of {', '.join(MISSING_QUALITY)}.")
    unmasked = [i for i in items if i.quality == ""]
    if not unmasked:
        return
    names = ", ".join(file_name(i.path) for i in unmasked[:4]) + (" ..." if len(unmasked) > 4 else "")
    what = "Put the scene's QA_PIXEL file (Landsat) or QC file (MODIS) beside each, with its original name"
    if missing_quality == "refuse":
        raise InputError(
            f"{len(unmasked)} product(s) have no quality file, so their clouds would be kept as data: {names}. "
            f"{what}, or set MISSING_QUALITY to use them unmasked."
        )
    for item in unmasked:
        progress.warn(f"{file_name(item.path)}: no quality file beside it; its clouds are NOT masked and count "
                      "as observed.")


def load_series(
    inputs: Iterable[str | os.PathLike],
    sensor: str = "auto",
    unit: str | None = None,
    min_dates: int = 1,
    same_grid: bool = True,
    progress: Progress | None = None,
    missing_quality: str = "warn",
) -> list[SeriesItem]:
    """The dated rasters of one sensor found in ``inputs``, sorted by date and checked.

    ``sensor`` 'landsat' or 'modis' keeps only that sensor's files (so a sample
    dataset's root folder can be given); 'auto' requires all files to share one.
    ``missing_quality`` says what a product without its QA/QC file does: 'refuse' the
    run, or 'warn' in the log and use it unmasked.
    """
    progress = ensure(progress)
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
    check_quality_files(items, missing_quality, progress)
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


def coarse_texture(item: SeriesItem, size: int = 256) -> str | None:
    """Why ``item`` looks like a coarse raster resampled onto a fine grid, or None when it has fine detail.

    Measured on a central window: a MODIS raster brought to 30 m keeps its 1-km blocks (most
    neighbours equal) or, interpolated, varies smoothly (neighbour differences under 15 % of those
    16 px apart; Landsat LST, gap-filled or not, measures 0.35-0.4 here, MODIS bicubic 0.07).
    """
    rows, cols = item.grid.height, item.grid.width
    if min(rows, cols) < 48:
        return None
    r0, c0 = max(0, (rows - size) // 2), max(0, (cols - size) // 2)
    data = item.read(Window(c0, r0, min(size, cols), min(size, rows))).data.astype(np.float64)

    def differences(lag: int) -> np.ndarray:
        d = np.concatenate([(data[:, lag:] - data[:, :-lag]).ravel(), (data[lag:] - data[:-lag]).ravel()])
        return d[np.isfinite(d)]

    near, far = differences(1), differences(16)
    if near.size < 1000 or far.size < 1000 or not np.any(far):
        return None
    equal = float(np.mean(near == 0))
    if equal > 0.5:
        return f"{equal:.0%} of its pixels equal their neighbour: the blocks of a coarse raster"
    ratio = float(np.sqrt(np.mean(near ** 2) / np.mean(far ** 2)))
    if ratio < 0.15:
        return f"it varies as smoothly as an interpolated coarse raster (detail ratio {ratio:.2f}; Landsat ~0.4)"
    return None


def check_not_swapped(fine: list[tuple[str, SeriesItem]], coarse: list[tuple[str, SeriesItem]]) -> None:
    """Refuse a MODIS raster given as a fine input or a Landsat one as a coarse input, by their tags
    (sensor) and, for the fine ones, by their own resolution: named by parameter and file."""
    for name, item in fine:
        if item.sensor == "modis":
            raise InputError(f"{name}: {file_name(item.path)} is MODIS (its tags say so), given as the fine "
                             "(Landsat) input: swap them (Landsat is the fine raster, MODIS the coarse one).")
    for name, item in coarse:
        if item.sensor == "landsat":
            raise InputError(f"{name}: {file_name(item.path)} is Landsat (its tags say so), given as the coarse "
                             "(MODIS) input: swap them (Landsat is the fine raster, MODIS the coarse one).")
    for name, item in fine:
        why = coarse_texture(item)
        if why:
            raise InputError(f"{name}: {file_name(item.path)} has no fine detail ({why}); it looks like MODIS "
                             "resampled to the fine grid, not Landsat. If the inputs are swapped, swap them: the "
                             "Landsat raster here, MODIS as the coarse input.")


def check_fine_and_coarse(fine: list[SeriesItem], coarse: list[SeriesItem], coarse_name: str = "COARSE",
                          fine_name: str = "FINE") -> None:
    """The fine series must be Landsat and the coarse one MODIS, resampled onto the fine grid."""
    check_not_swapped([(fine_name, fine[0])], [(coarse_name, coarse[0])])
    if not coarse[0].grid.same_as(fine[0].grid):
        raise InputError(f"{coarse_name}: {file_name(coarse[0].path)} ({coarse[0].grid.describe()}) is not on the "
                         f"fine grid of the Landsat series ({fine[0].grid.describe()}). Resample MODIS onto the "
                         "Landsat grid first (Resample to a reference grid).")
