"""Download: MODIS and Landsat LST of an area and period from a STAC archive, as files Import and Gap-fill read.

The survey's dataset tool searched both archives, kept Landsat scenes with ≥ 80 % valid pixels and MODIS
days with ≥ 90 %, and paired them by date; this stage does the same without an account and reads only the
area's bytes of each cloud-optimised asset. Each product keeps its native grid and encoding:

- ``landsat/<LC08|LC09>_L2SP_<pathrow>_<date>_<date>_02_<T1|T2>_ST_B10.TIF`` (uint16) with its
  ``_QA_PIXEL.TIF`` and an ``_MTL.json`` holding the item's scale and offset;
- ``modis/<MOD11A1>.A<yyyyddd>.<tiles>.061_<layer>.tif`` (uint16, sinusoidal) with its ``_QC_<…>.tif``;

scenes of one sensor and day are mosaicked (path/rows along a path, neighbouring MODIS tiles). The
manifest ``acquire_manifest.json`` lists every date with what it has and every dropped scene with the
reason; its pairs come from :func:`backend.io.pairs.pair_by_date`, the rule every other stage uses.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from rasterio.warp import transform_bounds

from ..errors import Cancelled, InputError
from ..io.atomic import stop_acknowledged
from ..io.grid import Grid
from ..io.outputs import FolderCommit, check_output_folder, output_folder
from ..io.pairs import pair_by_date
from ..io.readers import landsat_qa_mask, modis_qc_mask
from ..io.record import verified_record
from ..io.series import describe
from ..io.writers import raster_output
from ..parameters import param, parse_dates, with_overrides
from ..progress import Progress, ensure
from . import stac
from .fetch import HttpOptions, area_grid, header_grid, read_area

ALGORITHM = "download_lst"
MANIFEST = "acquire_manifest.json"
SENSOR_CHOICES = ("both", "landsat", "modis")
MODIS_PRODUCT_CHOICES = ("MOD11A1", "MYD11A1", "MOD11A1+MYD11A1", "MOD21A1")
MODIS_LAYERS = ("LST_Day_1km", "LST_Night_1km")
# MODIS QC: keep pixels whose LST error is at most 2 K (MOD11 QC bits 6-7 ≤ 1); the readers' own rule.
MODIS_MAX_LST_ERROR = 2.0


@dataclass(frozen=True)
class DownloadParams:
    """What users set for a download; the Processing algorithm builds its parameters from these fields."""

    start: str = param("", "START", "First date (YYYY-MM-DD)", kind="date")
    end: str = param("", "END", "Last date (YYYY-MM-DD, included)", kind="date")
    sensors: str = param("both", "SENSORS", "Sensors", options=SENSOR_CHOICES,
                         option_labels=("Landsat 8/9 and MODIS", "Landsat 8/9 only", "MODIS only"))
    modis_products: str = param("MOD11A1", "MODIS_PRODUCT", "MODIS product", options=MODIS_PRODUCT_CHOICES,
                                option_labels=("MOD11A1 (Terra, 10:30)", "MYD11A1 (Aqua, 13:30)",
                                               "MOD11A1 and MYD11A1", "MOD21A1 (Terra, TES algorithm)"))
    modis_layer: str = param("LST_Day_1km", "MODIS_LAYER", "MODIS layer", options=MODIS_LAYERS,
                             option_labels=("Day", "Night"))
    min_landsat_valid: float = param(0.8, "MIN_LANDSAT_VALID", "Keep Landsat dates with at least this valid "
                                     "fraction of the area (after QA_PIXEL)", 0.0, 1.0)
    min_modis_valid: float = param(0.9, "MIN_MODIS_VALID", "Keep MODIS days with at least this valid fraction "
                                   "of the area (after QC)", 0.0, 1.0)
    max_cloud_cover: float = param(80.0, "MAX_CLOUD_COVER", "Search only Landsat scenes with at most this "
                                   "scene cloud cover (%)", 0.0, 100.0)
    source: str = param("planetary_computer", "SOURCE", "Archive (STAC API)",
                        choices=lambda: [(name, s.help or name) for name, s in stac.SOURCES.items()])
    source_url: str = param("", "SOURCE_URL", "Another STAC API (URL; empty = the archive above)", kind="text",
                            advanced=True)
    landsat_collection: str = param("", "LANDSAT_COLLECTION", "Landsat collection (empty = the archive's)",
                                    kind="text", advanced=True)
    modis_collection: str = param("", "MODIS_COLLECTION", "MODIS collection (empty = the archive's)",
                                  kind="text", advanced=True)
    parallel: int = param(4, "PARALLEL", "Dates downloaded at once", 1, 16, advanced=True)
    timeout: float = param(30.0, "TIMEOUT", "Seconds to wait for an answer", 1.0, 600.0, advanced=True)
    max_area_km2: float = param(10000.0, "MAX_AREA_KM2", "Largest area (km²)", 1.0, 1e6, advanced=True)


@dataclass(frozen=True)
class DateEntry:
    date: str
    sensor: str
    product: str
    files: tuple[str, ...]  # data file first, then its quality file (and MTL)
    items: tuple[str, ...]
    valid_fraction: float


@dataclass(frozen=True)
class DownloadResult:
    folder: Path
    manifest: Path
    landsat: list[Path]
    modis: list[Path]
    pairs: list[str]  # ISO dates with a same-day pair
    dropped: list[dict]


def _source(params: DownloadParams) -> stac.StacSource:
    if params.source not in stac.SOURCES:
        raise InputError(f"SOURCE: unknown archive {params.source!r}; choose one of {', '.join(stac.SOURCES)}.")
    source = stac.SOURCES[params.source]
    modis = dict(source.modis_collections)
    if params.modis_collection:
        modis = dict.fromkeys(_modis_products(params), params.modis_collection)
    return replace(source, url=params.source_url or source.url,
                   landsat_collection=params.landsat_collection or source.landsat_collection, modis_collections=modis)


def _modis_products(params: DownloadParams) -> tuple[str, ...]:
    if params.modis_products not in MODIS_PRODUCT_CHOICES:
        raise InputError(f"MODIS_PRODUCT: {params.modis_products!r} is not one of {', '.join(MODIS_PRODUCT_CHOICES)}.")
    return tuple(params.modis_products.split("+"))


def _period(params: DownloadParams) -> tuple[dt.date, dt.date]:
    start, end = (parse_dates(name, str(value or "")) for name, value in (("START", params.start),
                                                                          ("END", params.end)))
    if not start or not end:
        raise InputError("START and END: give the first and last date of the period (YYYY-MM-DD).")
    if end[0] < start[0]:
        raise InputError(f"END ({end[0]}) is before START ({start[0]}).")
    return start[0], end[0]


def _check_area(bbox: tuple[float, float, float, float], limit_km2: float) -> None:
    west, south, east, north = bbox
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise InputError(f"EXTENT: {bbox} is not an area in longitude/latitude (west < east, south < north).")
    mid = math.radians((south + north) / 2)
    km2 = (east - west) * 111.32 * math.cos(mid) * (north - south) * 110.57
    if km2 > limit_km2:
        raise InputError(f"EXTENT: the area is about {km2:,.0f} km², over MAX_AREA_KM2 ({limit_km2:,.0f} km²). "
                         "Choose a smaller area (a city, a district) or raise MAX_AREA_KM2.")


def to_wgs84(bbox: tuple[float, float, float, float], crs: str = "EPSG:4326") -> tuple[float, float, float, float]:
    """(west, south, east, north) in degrees of an extent given in ``crs``."""
    if str(crs).upper() in ("EPSG:4326", "OGC:CRS84"):
        return tuple(float(v) for v in bbox)
    return tuple(transform_bounds(crs, "EPSG:4326", *bbox, densify_pts=21))


# ---------------------------------------------------------------- one date


def _names(group: list[stac.Scene], layer: str) -> tuple[str, ...]:
    first, day = group[0], group[0].date
    if first.sensor == "landsat":
        base = f"landsat/{first.product}_L2SP_{first.tile}_{day:%Y%m%d}_{day:%Y%m%d}_02_{first.category}"
        return f"{base}_ST_B10.TIF", f"{base}_QA_PIXEL.TIF", f"{base}_MTL.json"
    tiles = "".join(sorted({s.tile for s in group}))
    lst = "LST_1KM" if first.product == "MOD21A1" else layer
    base = f"modis/{first.product}.A{day:%Y%j}.{tiles}.061"
    return f"{base}_{lst}.tif", f"{base}_{stac.MODIS_QUALITY[lst]}.tif"


def _valid(sensor: str, data: np.ndarray, quality: np.ndarray, nodata: float | None) -> np.ndarray:
    filled = data != (0 if nodata is None else nodata)
    if sensor == "landsat":
        return filled & ~landsat_qa_mask(quality)
    return filled & ~modis_qc_mask(quality, MODIS_MAX_LST_ERROR) & (data >= 7500)


def _mosaic(group: list[stac.Scene], grid: Grid, source: stac.StacSource, options: HttpOptions,
            progress: Progress) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The group's LST and quality on ``grid``: each pixel from the first scene where it is valid, else the
    first where it is filled."""
    data = quality = valid = filled = None
    for scene in group:
        what = f"{scene.sensor} item {scene.item_id}"
        nodata = scene.nodata if scene.nodata is not None else 0
        d = read_area(scene.data_href, grid, nodata, what, source.sign, source.forget_signatures, options,
                      progress.check)
        q = read_area(scene.quality_href, grid, 1 if scene.sensor == "landsat" else 2, what + " (quality)",
                      source.sign, source.forget_signatures, options, progress.check)
        v, f = _valid(scene.sensor, d, q, nodata), d != nodata
        if data is None:
            data, quality, valid, filled = d, q, v, f
            continue
        take = (v & ~valid) | (f & ~filled & ~valid)
        data[take], quality[take] = d[take], q[take]
        valid |= v
        filled |= f
    return data, quality, valid


def _write(tmp: Path, names: tuple[str, ...], group: list[stac.Scene], grid: Grid, data: np.ndarray,
           quality: np.ndarray) -> None:
    first = group[0]
    profile = {"driver": "GTiff", "crs": grid.crs, "transform": grid.transform, "width": grid.width,
               "height": grid.height, "count": 1, "tiled": True, "blockxsize": 256, "blockysize": 256,
               "compress": "deflate"}
    (tmp / names[0]).parent.mkdir(parents=True, exist_ok=True)
    items = ",".join(s.item_id for s in group)
    with raster_output(tmp / names[0], **profile, dtype=data.dtype, nodata=first.nodata) as dst:
        dst.write(data, 1)
        dst.scales, dst.offsets = (first.scale,), (first.offset,)
        dst.update_tags(STAC_ITEMS=items, ACQUISITION_DATE=first.date.isoformat())
        if first.sensor == "modis":  # the HDF attributes the MODIS reader decodes with: (DN - add_offset) × scale
            dst.update_tags(scale_factor=repr(first.scale), add_offset=repr(-first.offset / first.scale),
                            _FillValue=str(int(first.nodata or 0)))
    with raster_output(tmp / names[1], **profile, dtype=quality.dtype) as dst:
        dst.write(quality, 1)
        dst.update_tags(STAC_ITEMS=items)
    if first.sensor == "landsat":
        mtl = {"LANDSAT_METADATA_FILE": {
            "IMAGE_ATTRIBUTES": {"DATE_ACQUIRED": first.date.isoformat(), "STAC_ITEMS": items},
            "LEVEL2_SURFACE_TEMPERATURE_PARAMETERS": {"TEMPERATURE_MULT_BAND_ST_B10": str(first.scale),
                                                      "TEMPERATURE_ADD_BAND_ST_B10": str(first.offset)}}}
        (tmp / names[2]).write_text(json.dumps(mtl, indent=2))


def _fetch_date(group: list[stac.Scene], grid: Grid, params: DownloadParams, source: stac.StacSource,
                options: HttpOptions, tmp: Path, progress: Progress) -> tuple[DateEntry | None, dict | None]:
    first = group[0]
    data, quality, valid = _mosaic(group, grid, source, options, progress)
    fraction = float(valid.mean()) if valid.size else 0.0
    floor = params.min_landsat_valid if first.sensor == "landsat" else params.min_modis_valid
    items = tuple(s.item_id for s in group)
    if fraction < floor:
        after = "QA_PIXEL" if first.sensor == "landsat" else "QC"
        return None, {"date": first.date.isoformat(), "sensor": first.sensor, "product": first.product,
                      "items": list(items), "valid_fraction": round(fraction, 4),
                      "reason": f"{fraction:.0%} of the area valid after {after} (below {floor:.0%})"}
    names = _names(group, params.modis_layer)
    _write(tmp, names, group, grid, data, quality)
    return DateEntry(first.date.isoformat(), first.sensor, first.product, names, items, round(fraction, 4)), None


# ---------------------------------------------------------------- the stage


def _groups(scenes: list[stac.Scene]) -> list[list[stac.Scene]]:
    by_day: dict[tuple, list[stac.Scene]] = defaultdict(list)
    for scene in scenes:
        by_day[(scene.date, scene.sensor, scene.product)].append(scene)
    return [by_day[key] for key in sorted(by_day)]


def _grids(groups: list[list[stac.Scene]], bbox: tuple, source: stac.StacSource, options: HttpOptions) -> dict:
    """One grid per sensor: the area on the native grid of the sensor's first scene (one header read)."""
    grids = {}
    for group in groups:
        sensor = group[0].sensor
        if sensor not in grids:
            crs, transform = header_grid(group[0].data_href, f"{sensor} item {group[0].item_id}", source.sign,
                                         source.forget_signatures, options)
            grids[sensor] = area_grid(bbox, crs, transform)
    return grids


def _request(params: DownloadParams, bbox: tuple, source: stac.StacSource) -> dict:
    """What identifies a download: a rerun with the same request reuses the dates already complete."""
    return {"source": source.url, "landsat_collection": source.landsat_collection,
            "modis_collections": source.modis_collections, "bbox": [round(v, 7) for v in bbox],
            "modis_layer": params.modis_layer,
            "thresholds": {"landsat": params.min_landsat_valid, "modis": params.min_modis_valid}}


def _previous(folder: Path, request: dict) -> dict[tuple, dict]:
    """The complete dates of an earlier run of the same request into ``folder`` (verified), by key."""
    record = verified_record(folder) if folder.exists() else None
    if not record or record.get("algorithm") != ALGORITHM:
        return {}
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    if manifest.get("request") != request:
        return {}
    kept = {(e["date"], e["sensor"], e["product"]): e for e in manifest.get("dates", [])
            if all(name in record["files"] for name in e["files"])}
    return {**{(d["date"], d["sensor"], d["product"]): d for d in manifest.get("dropped", [])}, **kept}


def _pairs_table(entries: list[dict], dropped: list[dict]) -> list[dict]:
    """Each date with what it has, paired by the rule of every other stage (``pair_by_date``); ``entries``
    carry the ``path`` their data file has now."""
    def series(sensor):
        return [describe(e["path"]) for e in entries if e["sensor"] == sensor]

    landsat, modis = series("landsat"), series("modis")
    paired = set()
    if landsat and modis:
        try:
            paired = {p.date.isoformat() for p in pair_by_date(landsat, modis, 0)}
        except InputError:
            paired = set()
    table = []
    for day in sorted({e["date"] for e in entries} | {d["date"] for d in dropped}):
        have = {e["sensor"]: e for e in entries if e["date"] == day}
        kind = ("same-day pair" if day in paired else "MODIS only" if "modis" in have
                else "Landsat only" if "landsat" in have else "dropped")
        table.append({"date": day, "kind": kind,
                      "landsat_valid": have.get("landsat", {}).get("valid_fraction"),
                      "modis_valid": have.get("modis", {}).get("valid_fraction"),
                      "dropped": [d["reason"] for d in dropped if d["date"] == day]})
    return table


def _run(groups, grids, params, source, options, tmp, previous, progress) -> tuple[list, list, BaseException | None]:
    entries, dropped, stopped = [], [], None
    todo = []
    for group in groups:
        key = (group[0].date.isoformat(), group[0].sensor, group[0].product)
        earlier = previous.get(key)
        if earlier is not None and tuple(earlier["items"]) == tuple(s.item_id for s in group):
            # complete in the folder already, or dropped by the same thresholds: kept as it is
            (entries if "files" in earlier else dropped).append(earlier)
            continue
        todo.append(group)
    progress.info(f"{len(groups)} scene date(s) found; {len(groups) - len(todo)} already done in the folder.")
    with ThreadPoolExecutor(max_workers=max(1, params.parallel)) as pool:
        pending = {pool.submit(_fetch_date, g, grids[g[0].sensor], params, source, options, tmp, progress): g
                   for g in todo}
        done_count = 0
        try:
            while pending:
                finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                progress.check()
                for future in finished:
                    group = pending.pop(future)
                    entry, drop = future.result()
                    done_count += 1
                    label = f"{group[0].date} {group[0].product}"
                    if entry is not None:
                        entries.append(asdict(entry))
                        progress.info(f"{label}: {entry.valid_fraction:.0%} valid, written.")
                    else:
                        dropped.append(drop)
                        progress.info(f"{label}: dropped, {drop['reason']}.")
                    progress.update(done_count / max(len(todo), 1))
        except (Cancelled, KeyboardInterrupt, InterruptedError) as exc:
            stop_acknowledged()
            stopped = exc
        except BaseException:
            for future in pending:
                future.cancel()
            raise
        finally:
            for future in pending:
                future.cancel()
    return entries, dropped, stopped


def download_lst(
    out_dir: str | os.PathLike,
    bbox: tuple[float, float, float, float],
    params: DownloadParams | None = None,
    bbox_crs: str = "EPSG:4326",
    progress: Progress | None = None,
    options: HttpOptions | None = None,
    **overrides,
) -> DownloadResult:
    """Download the LST of ``bbox`` (in ``bbox_crs``) for ``params``' period into ``out_dir``.

    A rerun of the same request into the same folder keeps the dates already complete there and fetches
    the rest; a cancelled run keeps the dates it finished.
    """
    progress = ensure(progress)
    params = with_overrides(DownloadParams, params, overrides)
    options = options or HttpOptions(timeout=params.timeout)
    start, end = _period(params)
    wgs84 = to_wgs84(bbox, bbox_crs)
    _check_area(wgs84, params.max_area_km2)
    source = _source(params)
    sensors = stac.SENSORS if params.sensors == "both" else (params.sensors,)
    folder = check_output_folder(out_dir, ALGORITHM)
    progress.info(f"Searching {source.url} for {', '.join(sensors)} from {start} to {end}…")
    scenes = stac.search_scenes(source, wgs84, start, end, sensors, _modis_products(params), params.modis_layer,
                                params.max_cloud_cover, params.timeout)
    if not scenes:
        limit = f" (Landsat scenes up to {params.max_cloud_cover:g} % cloud)" if "landsat" in sensors else ""
        raise InputError(f"No {' or '.join(sensors)} scene over the area from {start} to {end} in {source.url}"
                         f"{limit}. Widen the period, raise MAX_CLOUD_COVER or check the area.")
    groups = _groups(scenes)
    grids = _grids(groups, wgs84, source, options)
    request = _request(params, wgs84, source)
    previous = _previous(folder, request)
    commit = FolderCommit(keep_previous=True)
    with output_folder(out_dir, ALGORITHM, commit=commit) as tmp:
        entries, dropped, stopped = _run(groups, grids, params, source, options, tmp, previous,
                                         progress.sub(0.0, 0.95))
        entries.sort(key=lambda e: (e["date"], e["sensor"], e["product"]))
        for entry in entries:  # the kept ones are read from the folder, the new ones from the staging folder
            where = tmp if (tmp / entry["files"][0]).exists() else folder
            entry["path"] = str(where / entry["files"][0])
        table = _pairs_table(entries, dropped)
        manifest = {"kind": "lst_fusion_acquire", "request": request, "period": [str(start), str(end)],
                    "thresholds": {"landsat": params.min_landsat_valid, "modis": params.min_modis_valid,
                                   "max_cloud_cover": params.max_cloud_cover},
                    "complete": stopped is None,
                    "dates": [{k: v for k, v in e.items() if k != "path"} for e in entries],
                    "dropped": sorted(dropped, key=lambda d: (d["date"], d["sensor"])), "pairs": table}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
    if stopped is not None:
        error = Cancelled(f"Stopped: {len(entries)} date(s) are complete in {folder}; run again into the same "
                          "folder to download the rest.")
        error.kept = True
        raise error
    files = {s: [folder / e["files"][0] for e in entries if e["sensor"] == s] for s in stac.SENSORS}
    return DownloadResult(folder, folder / MANIFEST, files["landsat"], files["modis"],
                          [row["date"] for row in table if row["kind"] == "same-day pair"], manifest["dropped"])
