"""Gap-filling of LST time series: temporal, spatial, or temporal then spatial.

Temporal: a missing pixel takes the linear interpolation in time of the same pixel's
nearest valid observations before and after it, when those two are at most
``max_gap_days`` apart (no extrapolation past the ends of the series).

Spatial: normalised convolution. A missing pixel takes the Gaussian-weighted mean of
the *valid* pixels around it, at the smallest scale (σ = 1, 2, 4 ... px) where enough
valid neighbours exist. Valid pixels are never changed and each gap is filled from its
nearest surroundings, so LST's sharp edges (water, roofs, irrigated fields) stay sharp,
unlike a blur of the whole image.

MODIS-guided (Landsat series with the MODIS series on the Landsat grid): a missing pixel
takes its value on the nearest date where it was observed plus the change MODIS saw at that
place between the two dates, L_j + (M_k − M_j) — a STARFM-style prediction of the gap — then
the same residual correction as the temporal fill. It reaches across long gaps (no
MAX_GAP_DAYS) and follows the weather of the day, where spatial filling can only spread
the surroundings. Pixels it cannot reach (never observed, no MODIS) are filled in space.

Works in row blocks: pass 1 reads every date of a block and fills in time; pass 2
fills each date in space with a halo of ``max_distance_px`` rows. Memory is bounded
whatever the raster size or series length. Every output raster has a companion
``*_fillflags.tif`` saying how each pixel was obtained.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import rasterio
from scipy.ndimage import distance_transform_edt, gaussian_filter

from ..errors import InputError
from ..io.dates import file_name
from ..io.fill_flags import (  # noqa: F401 - also re-exported: the flags are this stage's output
    FILLED_SUFFIX,
    FLAG_MEANING,
    GUIDED,
    NODATA,
    OBSERVED,
    SPATIAL,
    TEMPORAL,
    flags_path_for,
)
from ..io.grid import block_rows_for
from ..io.lst_raster import LSTRaster
from ..io.outputs import check_output_folder, check_output_size, output_folder
from ..io.readers import input_unit_param, normalise_unit
from ..io.series import SeriesItem, check_fine_and_coarse, load_series, missing_quality_param, sensor_param
from ..io.tiler import row_blocks
from ..io.writers import (
    describe_lst_band,
    from_kelvin,
    lst_profile,
    lst_tags,
    output_unit_param,
    raster_output,
    unit_suffix,
    verify_raster,
)
from ..parameters import param, with_overrides
from ..progress import Progress, ensure

METHODS = ("temporal_then_spatial", "temporal", "spatial", "modis_guided")
METHOD_LABELS = ("Temporal, then spatial (default)", "Temporal only", "Spatial only",
                 "MODIS-guided: nearest clear date + MODIS's change (Landsat; needs GUIDE), then spatial")
MIN_SUPPORT = 0.02  # weighted fraction of valid neighbours needed at a scale


def temporal_interpolation(stack: np.ndarray, days: np.ndarray, max_gap_days: float) -> np.ndarray:
    """Linear interpolation in time of every pixel of a (dates, rows, cols) stack.

    Each date's value comes from the same pixel's nearest valid observations strictly
    before and strictly after it, when those are at most ``max_gap_days`` apart; NaN
    otherwise. Observed pixels get an interpolation too, so the gap-filler can measure
    how far today's weather departs from it.
    """
    n = stack.shape[0]
    valid = np.isfinite(stack)
    index = np.arange(n, dtype=np.int16)[:, None, None]
    prev = np.maximum.accumulate(np.where(valid, index, -1).astype(np.int16), axis=0)
    nxt = np.minimum.accumulate(np.where(valid, index, n).astype(np.int16)[::-1], axis=0)[::-1]
    # Strictly before / after: shift by one date.
    prev = np.concatenate([np.full_like(prev[:1], -1), prev[:-1]])
    nxt = np.concatenate([nxt[1:], np.full_like(nxt[:1], n)])
    p, q = np.clip(prev, 0, n - 1), np.clip(nxt, 0, n - 1)
    d = np.asarray(days, np.float64)
    span = d[q] - d[p]
    usable = (prev >= 0) & (nxt < n) & (span <= max_gap_days)
    out = np.full(stack.shape, np.nan, np.float32)
    if usable.any():
        before = np.take_along_axis(stack, p, axis=0)
        after = np.take_along_axis(stack, q, axis=0)
        weight = ((d[:, None, None] - d[p]) / np.where(span > 0, span, 1)).astype(np.float32)
        out[usable] = (before + weight * (after - before))[usable]
    return out


def guided_prediction(stack: np.ndarray, guide: np.ndarray, days: np.ndarray) -> np.ndarray:
    """For every date k and pixel, L_j + (M_k − M_j) from the nearest other date j (in time) where
    the pixel is observed and MODIS is valid on both dates; NaN where no date qualifies."""
    out = np.full(stack.shape, np.nan, np.float32)
    for k in range(stack.shape[0]):
        todo = np.isfinite(guide[k])
        for j in sorted((j for j in range(stack.shape[0]) if j != k), key=lambda j: abs(days[j] - days[k])):
            if not todo.any():
                break
            candidate = stack[j] + (guide[k] - guide[j])
            use = todo & np.isfinite(candidate)
            out[k][use] = candidate[use]
            todo &= ~use
    return out


def spatial_fill(image: np.ndarray, targets: np.ndarray, max_distance_px: float) -> np.ndarray:
    """Fill ``targets`` pixels of a 2-D image in place from valid neighbours (normalised convolution).

    Only pixels within ``max_distance_px`` of a valid pixel are filled; the scale grows
    (σ = 1, 2, 4 ... px) until each of them has enough valid neighbours. Returns the
    mask of the pixels it filled.
    """
    valid = np.isfinite(image)
    todo = targets & ~valid
    filled = np.zeros_like(todo)
    if not todo.any() or not valid.any():
        return filled
    todo &= distance_transform_edt(~valid) <= max_distance_px
    values = np.where(valid, image, 0.0).astype(np.float64)
    weights = valid.astype(np.float64)
    sigma = 1.0
    while todo.any():
        # Reach of the kernel: 3σ, never past the distance the caller allowed (and its halo).
        radius = min(3.0 * sigma, max(max_distance_px, 1.0))
        num = gaussian_filter(values, sigma, mode="constant", truncate=radius / sigma)
        den = gaussian_filter(weights, sigma, mode="constant", truncate=radius / sigma)
        ok = todo & (den > MIN_SUPPORT)
        if 3.0 * sigma >= max_distance_px:
            ok = todo & (den > 0)  # last scale: any support within reach will do
        image[ok] = (num[ok] / den[ok]).astype(image.dtype)
        filled |= ok
        todo &= ~ok
        if 3.0 * sigma >= max_distance_px:
            break
        sigma *= 2.0
    return filled


@dataclass(frozen=True)
class GapFillParams:
    """What users set for a gap-fill; the Processing algorithm builds its parameters from these fields."""

    sensor: str = sensor_param()
    method: str = param("temporal_then_spatial", "METHOD", "Method", options=METHODS, option_labels=METHOD_LABELS)
    max_gap_days: float = param(32.0, "MAX_GAP_DAYS", "Largest time between the observations bracketing a gap "
                                "(days)", 1.0)
    max_distance_px: float = param(100.0, "MAX_DISTANCE_PX", "Largest distance for spatial filling (pixels)", 1.0)
    # With a temporal method, pixels without one valid observation in the series stay nodata unless set.
    fill_never_observed: bool = param(False, "FILL_NEVER_OBSERVED",
                                      "Also fill pixels never observed in the series (spatially)")
    # Refuse (InputError) any date with less valid data than this, before filling.
    min_valid_fraction: float = param(0.0, "MIN_VALID_FRACTION", "Refuse dates with less valid data than (0-1)",
                                      0.0, 1.0)
    unit: str | None = input_unit_param()
    # A product without its QA/QC file is refused ('refuse') or used unmasked with a warning ('warn').
    missing_quality: str = missing_quality_param()
    out_unit: str = output_unit_param()  # Celsius outputs are named *_degC_filled.tif

    def validate(self, guide) -> None:
        """Refuse bad options before any work; ``guide`` is the MODIS series given (or None)."""
        _check_options(self.method, self.max_gap_days, self.max_distance_px, self.min_valid_fraction, guide)


@dataclass
class DateReport:
    date: str
    source: str
    output: str
    flags: str
    observed_fraction: float
    temporal_fraction: float
    spatial_fraction: float
    guided_fraction: float
    nodata_fraction: float
    cloud_mask: str  # the QA/QC file that masked clouds; 'none' when clouds were kept as data

    @property
    def filled_fraction(self) -> float:
        """The fraction of the date's pixels filled (in time, from MODIS's change or in space)."""
        return self.temporal_fraction + self.spatial_fraction + self.guided_fraction


@dataclass(frozen=True)
class GapFillResult:
    """What a gap-fill wrote: the report (gapfill_report.json) and, per date, the filled raster and its flags."""

    report: Path
    dates: tuple[DateReport, ...]
    unit: str  # of the filled rasters

    @property
    def folder(self) -> Path:
        return self.report.parent

    @property
    def filled_fraction(self) -> float:
        """The mean over dates of the fraction of pixels filled."""
        return sum(d.filled_fraction for d in self.dates) / len(self.dates)


def _cloud_mask(item: SeriesItem) -> str:
    if item.quality is None:
        return "as given (decoded LST)"
    if not item.quality:
        return "none"
    if item.quality.startswith("HDF4"):
        return item.quality.rsplit(":", 1)[-1]  # the QC layer inside the HDF file
    return Path(item.quality).name


def _output_stem(item: SeriesItem) -> str:
    name = file_name(item.path)
    if name.endswith(FILLED_SUFFIX):  # filling an already gap-filled raster again keeps its name
        return name[: -len(FILLED_SUFFIX)].removesuffix(unit_suffix("C"))
    return name.rsplit(".", 1)[0] if name.lower().endswith((".tif", ".tiff", ".hdf")) else name


@contextlib.contextmanager
def _prior_flags(item: SeriesItem) -> Iterator:
    """The open flags raster of an input that an earlier gap-fill wrote, or None."""
    path = flags_path_for(item.path)
    if path is None or not path.is_file():
        yield None
        return
    with rasterio.open(path) as src:
        ours = src.tags().get("LST_FUSION_CONTENT") == "fill_flags" and (src.height, src.width) == item.grid.shape
        yield src if ours else None


def _fill_date(
    observed: np.ndarray,
    interp: np.ndarray | None,
    climatology: np.ndarray | None,
    method: str,
    max_distance_px: float,
    fill_never_observed: bool,
    mean_residual: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Fill one date's block (with halo); return (values, flags).

    In time: the interpolation plus today's departure from it (the residual at observed
    pixels, spread into the gap by normalised convolution), so a hot or cold day is not
    filled with its neighbours' weather. In space: the pixel's mean over the series plus
    today's anomaly from it, spread the same way, so the fill keeps the landscape's
    thermal structure (city warm, river cool) inside large clouds.
    """
    value = observed.copy()
    flags = np.full(observed.shape, NODATA, np.uint8)
    flags[np.isfinite(observed)] = OBSERVED
    if interp is not None:
        targets = ~np.isfinite(observed) & np.isfinite(interp)
        residual = observed - interp
        spatial_fill(residual, targets, max_distance_px)
        correction = np.where(np.isfinite(residual), residual, np.float32(mean_residual))
        value[targets] = interp[targets] + correction[targets]
        flags[targets] = GUIDED if method == "modis_guided" else TEMPORAL
    if method == "temporal":
        return value, flags
    targets = ~np.isfinite(value)
    if interp is not None and not fill_never_observed:
        targets &= np.isfinite(climatology)
    with_climatology = targets & np.isfinite(climatology)
    anomaly = value - climatology
    spatial_fill(anomaly, with_climatology, max_distance_px)
    use = with_climatology & np.isfinite(anomaly)
    value[use] = climatology[use] + anomaly[use]
    spatial_fill(value, targets & ~np.isfinite(value), max_distance_px)
    flags[targets & np.isfinite(value)] = SPATIAL
    return value, flags


def _guides(guide, items: list[SeriesItem], unit: str | None, progress: Progress) -> list[SeriesItem | None]:
    """The MODIS raster (on the same grid) of each date of ``items``, within a day; None where there is none."""
    series = load_series(guide, unit=unit, progress=progress)
    check_fine_and_coarse(items, series, "GUIDE")
    out = []
    for item in items:
        near = [g for g in series if abs((g.date - item.date).days) <= 1]
        out.append(min(near, key=lambda g: abs((g.date - item.date).days)) if near else None)
    missing = [str(i.date) for i, g in zip(items, out) if g is None]
    if len(missing) == len(items):
        raise InputError(f"GUIDE: no MODIS raster within a day of any Landsat date ({items[0].date} ...).")
    if missing:
        progress.warn(f"GUIDE: no MODIS for {', '.join(missing)}; those dates are filled in space only.")
    return out


def _check_options(method: str, max_gap_days: float, max_distance_px: float, min_valid_fraction: float,
                   guide) -> None:
    if method not in METHODS:
        raise InputError(f"Unknown gap-fill method {method!r}: choose one of {', '.join(METHODS)}.")
    if max_gap_days <= 0 or max_distance_px <= 0:
        raise InputError(f"MAX_GAP_DAYS ({max_gap_days:g}) and MAX_DISTANCE_PX ({max_distance_px:g}) must be "
                         "positive (at least 1).")
    if not 0 <= min_valid_fraction <= 1:
        raise InputError(f"MIN_VALID_FRACTION must lie between 0 and 1, got {min_valid_fraction:g}.")
    if (method == "modis_guided") != bool(guide):
        raise InputError("GUIDE: the MODIS-guided method needs the MODIS series on the Landsat grid (Resample "
                         "to a reference grid), and only it uses one." if not guide else
                         f"GUIDE is used by the MODIS-guided method only; choose it, or leave GUIDE empty "
                         f"(method {method!r} was chosen).")


@dataclass
class _FirstPass:
    """What the pass over all dates leaves: per date a staging raster (observed, interpolated), the
    per-pixel climatology, and per date the valid pixels and the mean interpolation residual."""

    stage_files: list[Path]
    climatology: Path
    observed_count: np.ndarray
    mean_residual: np.ndarray


def _first_pass(items: list[SeriesItem], guides, days: np.ndarray, temporal: bool, max_gap_days: float,
                rows: int, stage: Path, profile: dict, progress: Progress) -> _FirstPass:
    """Read every date block by block: the climatology, the temporal (or MODIS-guided) interpolation and
    its residual at observed pixels, staged to disk so the spatial pass reads one date at a time."""
    n = len(items)
    grid = items[0].grid
    observed_count = np.zeros(n, np.int64)
    residual_sum, residual_count = np.zeros(n), np.zeros(n, np.int64)
    stage_files = [stage / f"{k}.tif" for k in range(n)]
    climatology_file = stage / "climatology.tif"
    blocks = list(row_blocks(grid, rows))
    stage_ds = [rasterio.open(f, "w", **{**profile, "count": 2}) for f in stage_files]
    try:
        with rasterio.open(climatology_file, "w", **profile) as clim_ds:
            for b, (window, _, _) in enumerate(blocks):
                stack = np.stack([it.read(window).data for it in items])
                valid = np.isfinite(stack)
                observed_count += valid.sum(axis=(1, 2))
                count = valid.sum(axis=0)
                clim = np.where(count > 0, np.where(valid, stack, 0).sum(axis=0) / np.maximum(count, 1), np.nan)
                clim_ds.write(clim.astype(np.float32), 1, window=window)
                if guides is not None:
                    guide_stack = np.stack([g.read(window).data if g is not None else
                                            np.full(stack.shape[1:], np.nan, np.float32) for g in guides])
                    interp = guided_prediction(stack, guide_stack, days)
                else:
                    interp = temporal_interpolation(stack, days, max_gap_days) if temporal else stack
                if temporal:
                    residual = stack - interp
                    both = np.isfinite(residual)
                    residual_sum += np.where(both, residual, 0).sum(axis=(1, 2))
                    residual_count += both.sum(axis=(1, 2))
                for k, ds in enumerate(stage_ds):
                    ds.write(np.stack([stack[k], interp[k]]), window=window)
                progress.update(0.5 * (b + 1) / len(blocks))
    finally:
        for ds in stage_ds:
            ds.close()
    for f in [*stage_files, climatology_file]:
        verify_raster(f)
    return _FirstPass(stage_files, climatology_file, observed_count, residual_sum / np.maximum(residual_count, 1))


def _check_coverage(items: list[SeriesItem], observed_count: np.ndarray, total: int, temporal: bool,
                    min_valid_fraction: float, progress: Progress) -> None:
    """Dates without a valid pixel, or under MIN_VALID_FRACTION, named before anything is written."""
    for item, count in zip(items, observed_count):
        if count == 0 and not temporal:
            raise InputError(f"{item.date} ({file_name(item.path)}) has no valid pixel, and spatial filling "
                             "needs some. Remove that date, or use a temporal method.")
        if count == 0:
            progress.warn(f"{item.date} ({file_name(item.path)}) has no valid pixel: it is filled only "
                          "from the dates around it.")
    too_sparse = [(it, c / total) for it, c in zip(items, observed_count) if c / total < min_valid_fraction]
    if too_sparse:
        listing = "; ".join(f"{it.date} ({Path(it.path).name}): {f:.1%}" for it, f in too_sparse)
        raise InputError(
            f"{len(too_sparse)} date(s) have less valid data than MIN_VALID_FRACTION "
            f"{min_valid_fraction:.0%}: {listing}. Remove them from the series or lower the threshold."
        )


def _write_date(item: SeriesItem, stage_file: Path, first: _FirstPass, mean_residual: float, target: Path,
                options: dict, profile: dict, rows: int, halo: int, out_unit: str) -> np.ndarray:
    """The second pass of one date: spatial filling block by block (with a halo), the filled raster and
    its flags written; returns the tally of flag codes."""
    grid = item.grid
    flags_path = flags_path_for(target)
    flag_profile = {**profile, "dtype": "uint8", "nodata": None, "predictor": 2}
    meta = LSTRaster(np.zeros((1, 1), np.float32), grid.crs, grid.transform, item.date, item.product, item.sensor,
                     item.path)
    tags = {**lst_tags(meta, out_unit, "gap_fill"), "GAPFILL_METHOD": options["method"],
            "GAPFILL_MAX_GAP_DAYS": str(options["max_gap_days"]),
            "GAPFILL_MAX_DISTANCE_PX": str(options["max_distance_px"])}
    temporal = options["method"] != "spatial"
    tally = np.zeros(256, np.int64)
    with rasterio.open(stage_file) as src, rasterio.open(first.climatology) as clim_src, \
            raster_output(target, **profile) as dst, raster_output(flags_path, **flag_profile) as fdst, \
            _prior_flags(item) as prior:
        dst.update_tags(**tags)
        describe_lst_band(dst, out_unit)
        fdst.update_tags(LST_FUSION_CONTENT="fill_flags", ACQUISITION_DATE=item.date.isoformat(),
                         FLAG_VALUES=", ".join(f"{v}={m}" for v, m in FLAG_MEANING.items()))
        for window, haloed, inner in row_blocks(grid, rows, halo):
            values, flags = _fill_date(
                src.read(1, window=haloed), src.read(2, window=haloed) if temporal else None,
                clim_src.read(1, window=haloed), options["method"], options["max_distance_px"],
                options["fill_never_observed"], mean_residual)
            flags = flags[inner]
            if prior is not None:
                # A pixel an earlier gap-fill made is still filled, not observed.
                earlier = prior.read(1, window=window)
                carried = (flags == OBSERVED) & (earlier != OBSERVED) & (earlier != NODATA)
                flags[carried] = earlier[carried]
            dst.write(from_kelvin(values[inner], out_unit), 1, window=window)
            fdst.write(flags, 1, window=window)
            tally += np.bincount(flags.ravel(), minlength=256)
    return tally


def gap_fill_series(
    inputs: list[str | os.PathLike],
    out_dir: str | os.PathLike,
    params: GapFillParams | None = None,
    *,
    guide: list[str | os.PathLike] | None = None,
    block_rows: int | None = None,
    progress: Progress | None = None,
    **options,
) -> GapFillResult:
    """Gap-fill a series of one sensor's LST rasters into ``out_dir``.

    ``params`` (or its fields as keywords, ``method='spatial'``) say how; ``guide`` is the MODIS series on
    the same grid, for ``method='modis_guided'``. The report (gapfill_report.json) says per date what was
    filled and which quality file masked its clouds.
    """
    p = with_overrides(GapFillParams, params, options)
    progress = ensure(progress)
    out_unit = normalise_unit(p.out_unit) or "K"
    p.validate(guide)
    method, max_gap_days, max_distance_px = p.method, p.max_gap_days, p.max_distance_px
    temporal = method != "spatial"
    check_output_folder(out_dir, "gap_fill", [*inputs, *(guide or [])])
    items = load_series(inputs, sensor=p.sensor, unit=p.unit, min_dates=2 if temporal else 1, progress=progress,
                        missing_quality=p.missing_quality)
    grid = items[0].grid
    guides = _guides(guide, items, p.unit, progress) if guide else None
    days = np.array([(i.date - items[0].date).days for i in items], np.float64)
    n = len(items)
    # _fill_date chains up to three spatial fills, each reaching max_distance_px and
    # each reading the previous one's results: a block needs three reaches of context.
    halo = 3 * int(math.ceil(max_distance_px))
    rows_a = block_rows or block_rows_for(grid.width, n * (72 if guide else 48))
    rows_b = block_rows or block_rows_for(grid.width, 96)
    fill_options = {"method": method, "max_gap_days": max_gap_days, "max_distance_px": max_distance_px,
                    "fill_never_observed": p.fill_never_observed}
    progress.info(f"Gap-filling {n} {items[0].sensor} dates on {grid.describe()} with {method}")
    with output_folder(out_dir, "gap_fill", [*inputs, *(i.path for i in items)]) as tmp:
        # Per date: the filled raster, its flags, and a two-band staging raster; plus the climatology.
        check_output_size(tmp, grid.width, grid.height, 13 + 4 / n, n, "OUTPUT_FOLDER", progress)
        stage = tmp / ".stage"
        stage.mkdir()
        profile = lst_profile(grid.crs, grid.transform, grid.width, grid.height)
        first = _first_pass(items, guides, days, temporal, max_gap_days, rows_a, stage, profile, progress)
        total = grid.width * grid.height
        _check_coverage(items, first.observed_count, total, temporal, p.min_valid_fraction, progress)
        reports = []
        for k, item in enumerate(items):
            target = tmp / f"{_output_stem(item)}{unit_suffix(out_unit)}{FILLED_SUFFIX}"
            tally = _write_date(item, first.stage_files[k], first, float(first.mean_residual[k]), target, fill_options,
                                profile, rows_b, halo, out_unit)
            fractions = {name: round(float(tally[v]) / total, 6) for v, name in
                         ((OBSERVED, "observed"), (TEMPORAL, "temporal"), (SPATIAL, "spatial"), (GUIDED, "guided"),
                          (NODATA, "nodata"))}
            reports.append(DateReport(item.date.isoformat(), item.path, target.name, flags_path_for(target).name,
                                      fractions["observed"], fractions["temporal"], fractions["spatial"],
                                      fractions["guided"], fractions["nodata"], _cloud_mask(item)))
            unmasked = " (clouds NOT masked: no quality file)" if reports[-1].cloud_mask == "none" else ""
            progress.update(0.5 + 0.5 * (k + 1) / n,
                            f"{item.date}: {fractions['observed']:.1%} observed{unmasked}, {fractions['temporal']:.1%} "
                            f"filled in time, {fractions['guided']:.1%} from MODIS's change, "
                            f"{fractions['spatial']:.1%} in space, {fractions['nodata']:.1%} nodata")
        for f in stage.iterdir():
            f.unlink()
        stage.rmdir()
        report = {
            "kind": "lst_fusion_gapfill",
            "method": method, "sensor": items[0].sensor, "unit": out_unit, "max_gap_days": max_gap_days,
            "max_distance_px": max_distance_px, "fill_never_observed": p.fill_never_observed,
            "grid": {"crs": grid.crs.to_string(), "transform": list(grid.transform)[:6],
                     "width": grid.width, "height": grid.height},
            "flags": {str(k): v for k, v in FLAG_MEANING.items()},
            "dates": [asdict(r) for r in reports],
        }
        (tmp / "gapfill_report.json").write_text(json.dumps(report, indent=2))
    return GapFillResult(Path(out_dir) / "gapfill_report.json", tuple(reports), out_unit)
