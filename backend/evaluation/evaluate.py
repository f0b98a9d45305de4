"""Evaluate fused LST against a reference, beside the two baselines every fusion must beat.

For each prediction date with a reference, the methods given (one fused raster, or whole
fused-series folders) are compared with two baselines computed here: **MODIS** at the date
on the fine grid (what resampling alone gives) and **persistence**, the nearest earlier
Landsat (what keeping the last clear scene gives). All entries of a date are scored on the
same pixels — those valid in the reference and in every entry — so a row compares like with
like; each entry's coverage of the reference says how much it left out.

A date is *difficult* when the surface changed strongly since the last Landsat (the mean
absolute difference between the reference and the persistence image is at least
``difficult_change_k``), or when the sample dataset the reference comes from declares it so
(a heat wave, fields switching state, a sensor disagreement). Such dates are where fusion
earns its keep and where the survey found every method failing, so they are averaged apart.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import rasterio

from ..errors import EmptyDataError, InputError
from ..io.dates import date_from_name, file_name, parse_date
from ..io.fill_flags import FLAG_MEANING, NODATA, OBSERVED, flags_path_for
from ..io.grid import Grid, coarse_pixel_m
from ..io.outputs import check_output_size, output_folder
from ..io.readers import input_unit_param
from ..io.series import SeriesItem, describe, find_lst_files, load_series
from ..io.writers import lst_profile, raster_output
from ..parameters import param
from ..progress import Progress, ensure
from . import metrics as m

MODIS_BASELINE, PERSISTENCE = "MODIS (resampled)", "Persistence (last Landsat)"
MAX_CLASSES = 256
SAMPLES_PER_DATE = 100_000  # (prediction, reference) pairs kept per entry and date for the plots
RECORD_NAME = "metrics.json"


@dataclass
class EvaluateParams:
    """What users set for an evaluation; the Processing algorithm builds its parameters from these fields."""

    metric_unit: str = param("K", "METRIC_UNIT", "Temperature unit of the report's maps and of SSIM, SAM and ERGAS",
                             options=m.UNITS,
                             option_labels=("Kelvin (K)", "Degrees Celsius (°C, as the survey's tables)"))
    coarse_resolution: float = param(0.0, "COARSE_RESOLUTION",
                                     "Coarse pixel size for ERGAS, m (0: from the MODIS inputs, else 926.6 m)",
                                     minimum=0.0, advanced=True)
    difficult_change_k: float = param(4.0, "DIFFICULT_CHANGE",
                                      "Difficult date: mean change since the last Landsat of at least (K)",
                                      minimum=0.0, advanced=True)
    map_dates: int = param(2, "MAP_DATES", "Dates shown as maps in the report", minimum=1, maximum=12,
                           advanced=True)
    input_unit: str | None = input_unit_param("Unit of float inputs that do not store one", advanced=False)

    def validate(self) -> None:
        if self.metric_unit not in m.UNITS:
            raise InputError(f"METRIC_UNIT: choose one of {', '.join(m.UNITS)}, not {self.metric_unit!r}.")
        if self.coarse_resolution < 0 or self.difficult_change_k < 0 or self.map_dates < 1:
            raise InputError("COARSE_RESOLUTION and DIFFICULT_CHANGE must be ≥ 0 and MAP_DATES ≥ 1.")


@dataclass(frozen=True)
class Entry:
    """One raster scored on one date: a method's prediction or a baseline."""

    label: str
    date: dt.date
    item: SeriesItem
    baseline: bool = False
    reference_dates: str = ""


@dataclass
class Evaluation:
    folder: Path
    html: Path
    json: Path
    csv: Path
    errors: list[tuple[str, str, Path]]  # (date, label, error raster)
    dates: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


def _label_of(path: str) -> tuple[str, str]:
    """A method label from a fused raster's tags (method, or the model that made it), and its reference dates."""
    with rasterio.open(path) as src:
        tags = src.tags()
    model = tags.get("FUSION_MODEL")
    method = tags.get("FUSION_METHOD")
    label = f"{model.upper()} (ONNX)" if model else method or Path(path).stem
    return label, tags.get("FUSION_REFERENCE_DATES", "")


def find_predictions(inputs: list[str | os.PathLike], labels: list[str] | None = None,
                     progress: Progress | None = None, unit: str | None = None) -> list[Entry]:
    """The predictions among ``inputs`` (files, or folders of fused series), labelled and dated.

    ``labels`` (one per input) name the method of each file or folder; without them the
    method (or model) recorded in each fused raster is used.
    """
    progress = ensure(progress)
    inputs = [str(i) for i in inputs if str(i)]
    if not inputs:
        raise InputError("PREDICTIONS: give at least one fused raster or fused-series folder.")
    if labels and len(labels) != len(inputs):
        raise InputError(f"LABELS: {len(labels)} label(s) for {len(inputs)} prediction input(s); give one per "
                         "input, in the same order, or none to use the method each file records.")
    entries: dict[tuple[str, dt.date], Entry] = {}
    for k, source in enumerate(inputs):
        files = find_lst_files([source], progress)
        if not files:
            raise InputError(f"PREDICTIONS: no LST raster in {source}.")
        for path in files:
            item = describe(path, unit)
            label, refs = _label_of(path)
            if labels:
                label = labels[k].strip() or label
            key = (label, item.date)
            if key in entries:
                raise InputError(f"PREDICTIONS: two rasters are labelled {label!r} for {item.date}: "
                                 f"{file_name(entries[key].item.path)} and {file_name(path)}. Give LABELS to "
                                 "tell the methods apart.")
            entries[key] = Entry(label, item.date, item, False, refs)
    return sorted(entries.values(), key=lambda e: (e.date, e.label))


def read_classes(path: str, grid: Grid) -> tuple[np.ndarray, dict[int, str]]:
    """A categorical raster on ``grid`` as int32 codes (−1 for nodata) and its class names."""
    name = file_name(path)
    if not Path(path).exists():
        raise InputError(f"LAND_COVER: {path} not found.")
    if not Grid.of(path).same_as(grid):
        raise InputError(f"LAND_COVER: {name} ({Grid.of(path).describe()}) is not on the reference's grid "
                         f"({grid.describe()}). Warp it onto the Landsat grid (nearest neighbour) first.")
    with rasterio.open(path) as src:
        band = src.read(1, masked=True)
        dtype = np.dtype(src.dtypes[0])
    values = np.asarray(band.filled(0))
    valid = ~np.ma.getmaskarray(band) & np.isfinite(values)
    codes = np.unique(values[valid])
    if not np.issubdtype(dtype, np.integer) and not np.all(codes == np.round(codes)):
        raise InputError(f"LAND_COVER: {name} holds non-integer values (e.g. {codes[codes != np.round(codes)][0]:g}); "
                         "it is not a categorical raster. Give a land-cover map of class codes.")
    if codes.size > MAX_CLASSES:
        raise InputError(f"LAND_COVER: {name} has {codes.size:,} distinct values; a categorical raster has at most "
                         f"{MAX_CLASSES}. Give a land-cover map of class codes, not a continuous raster.")
    out = np.where(valid, values, -1).astype(np.int32)
    return out, _class_names(path, [int(c) for c in codes])


def _class_names(path: str, codes: list[int]) -> dict[int, str]:
    """Names from the raster's category table or CLASS_<code> tags (as the sample land cover has), else 'class N'."""
    names: list[str] = []
    with rasterio.open(path) as src:
        tags = src.tags()
    try:
        from osgeo import gdal

        dataset = gdal.Open(path)
        names = list(dataset.GetRasterBand(1).GetCategoryNames() or []) if dataset else []
    except ImportError:
        pass
    return {c: (names[c] if 0 <= c < len(names) and names[c] else tags.get(f"CLASS_{c}", f"class {c}"))
            for c in codes}


def _flags_by_date(flags: list[str]) -> dict[dt.date, str]:
    found: dict[dt.date, str] = {}
    for path in flags:
        paths = sorted(str(p) for p in Path(path).rglob("*_fillflags.tif")) if Path(path).is_dir() else [path]
        for p in paths:
            if not Path(p).exists():
                raise InputError(f"FLAGS: {p} not found.")
            with rasterio.open(p) as src:
                tags = src.tags()
            if tags.get("LST_FUSION_CONTENT") != "fill_flags":
                raise InputError(f"FLAGS: {file_name(p)} is not a gap-fill flags raster (written by Gap-fill as "
                                 "*_fillflags.tif).")
            day = parse_date(tags.get("ACQUISITION_DATE")) or date_from_name(p)
            if day is None:
                raise InputError(f"FLAGS: {file_name(p)} has no date.")
            found[day] = p
    return found


def _read_flags(path: str, grid: Grid) -> np.ndarray:
    if not Grid.of(path).same_as(grid):
        raise InputError(f"FLAGS: {file_name(path)} is not on the reference's grid ({grid.describe()}).")
    with rasterio.open(path) as src:
        return src.read(1)


def _coarse_resolution(params: EvaluateParams, coarse: list[SeriesItem]) -> float:
    """The coarse pixel size for ERGAS: the user's, the one recorded by Resample, else MODIS's."""
    return params.coarse_resolution if params.coarse_resolution > 0 else coarse_pixel_m(i.path for i in coarse)


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_").lower() or "prediction"


def _write_error(path: Path, error: np.ndarray, grid: Grid, entry: Entry, reference: SeriesItem) -> None:
    profile = lst_profile(grid.crs, grid.transform, grid.width, grid.height)
    with raster_output(path, **profile) as dst:
        dst.write(error.astype(np.float32), 1)
        dst.set_band_description(1, f"{entry.label} − reference (K)")
        dst.update_tags(LST_FUSION_CONTENT="fusion_error", ACQUISITION_DATE=entry.date.isoformat(),
                        LST_UNIT="K", METHOD=entry.label, PREDICTION=file_name(entry.item.path),
                        REFERENCE=file_name(reference.path))


def _sidecar_flags(item: SeriesItem) -> str | None:
    """The flags Gap-fill wrote beside a gap-filled reference, if there are any."""
    path = flags_path_for(item.path)
    return str(path) if path is not None and path.exists() else None


def listed_difficult(items: list[SeriesItem]) -> dict[dt.date, str]:
    """Dates a sample dataset's manifest declares difficult (and why), for references read from one."""
    found: dict[dt.date, str] = {}
    for folder in {Path(i.path).resolve().parent for i in items}:
        for candidate in (folder / "manifest.json", folder.parent / "manifest.json"):
            try:
                manifest = json.loads(candidate.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(manifest, dict) and manifest.get("kind") == "lst_fusion_sample_dataset":
                found.update({dt.date.fromisoformat(d): why
                              for d, why in (manifest.get("difficult_dates") or {}).items()})
    return found


def _uncertainty_of(entry: Entry) -> Path | None:
    """The 1σ raster Fuse wrote beside a prediction (``<name>_uncertainty.tif``), if any."""
    if entry.baseline:
        return None
    path = Path(entry.item.path)
    sigma = path.with_name(f"{path.stem}_uncertainty.tif")
    return sigma if sigma.exists() else None


def _calibration(error: np.ndarray, sigma_path: Path, mask: np.ndarray, grid: Grid) -> dict:
    """How often |error| ≤ σ and ≤ 2σ (68 % and 95 % for a calibrated Gaussian band)."""
    if not Grid.of(str(sigma_path)).same_as(grid):
        return {}
    with rasterio.open(sigma_path) as src:
        sigma = src.read(1)
    ok = mask & np.isfinite(sigma)
    if not ok.any():
        return {}
    ratio = np.abs(error[ok]) / np.maximum(sigma[ok], 1e-6)
    return {"within_1sigma": float(np.mean(ratio <= 1)), "within_2sigma": float(np.mean(ratio <= 2)),
            "mean_sigma": float(np.mean(sigma[ok]))}


def _nearest_before(items: list[SeriesItem], day: dt.date) -> SeriesItem | None:
    earlier = [i for i in items if i.date < day]
    return earlier[-1] if earlier else None


def _warn_self_comparison(entries: list[Entry], refs: dict, progress: Progress) -> None:
    """A prediction that is the reference file itself (or a byte-identical copy) scores perfectly by
    construction: say so rather than report it as a result."""
    import filecmp

    for e in entries:
        ref = refs.get(e.date)
        if ref is None:
            continue
        same = Path(e.item.path).resolve() == Path(ref.path).resolve() or filecmp.cmp(e.item.path, ref.path,
                                                                                     shallow=False)
        if same:
            progress.warn(f"{e.date}: the prediction {file_name(e.item.path)} ({e.label}) is the reference "
                          f"{file_name(ref.path)} itself; its scores are perfect by construction and say nothing "
                          "about fusion. Evaluate fused rasters against an independent reference.")


@dataclass
class _Inputs:
    """Everything an evaluation reads before scoring: the entries, references, baselines and breakdowns."""

    entries: list[Entry]
    refs: dict[dt.date, SeriesItem]
    grid: Grid
    coarse_by_date: dict[dt.date, SeriesItem]
    fine_items: list[SeriesItem]
    declared: dict[dt.date, str]  # difficult dates a sample manifest declares
    dates: list[dt.date]  # the prediction dates that have a reference
    class_codes: np.ndarray | None
    class_names: dict[int, str]
    flag_files: dict[dt.date, str]
    ratio: float  # fine / coarse pixel size, for ERGAS


def _check_grids(entries: list[Entry], refs: dict, grid: Grid, coarse_items: list[SeriesItem],
                 fine_items: list[SeriesItem] | None) -> None:
    for e in entries:
        if not e.item.grid.same_as(grid):
            raise InputError(f"{file_name(e.item.path)} ({e.item.grid.describe()}) is not on the grid of the "
                             f"reference {file_name(refs[min(refs)].path)} ({grid.describe()}). Fuse on the "
                             "reference's grid, or resample one onto the other.")
    if coarse_items and not coarse_items[0].grid.same_as(grid):
        raise InputError(f"COARSE: {file_name(coarse_items[0].path)} is not on the reference's grid "
                         f"({grid.describe()}). Resample MODIS onto the Landsat grid first.")
    if fine_items and not fine_items[0].grid.same_as(grid):
        raise InputError(f"FINE_SERIES: {file_name(fine_items[0].path)} is not on the reference's grid.")


def _scored_dates(entries: list[Entry], refs: dict, progress: Progress) -> list[dt.date]:
    dates = sorted({e.date for e in entries})
    missing = [d for d in dates if d not in refs]
    if missing:
        progress.warn(f"No reference for {', '.join(map(str, missing))}: not evaluated.")
    dates = [d for d in dates if d in refs]
    if not dates:
        raise InputError(f"No prediction date has a reference: predictions for "
                         f"{', '.join(sorted({str(e.date) for e in entries}))}, references for "
                         f"{', '.join(map(str, sorted(refs)))}.")
    return dates


def _open_inputs(predictions, reference, coarse, fine_series, classes, flags, labels, params: EvaluateParams,
                 progress: Progress) -> _Inputs:
    input_unit = params.input_unit or None
    entries = find_predictions(predictions, labels, progress.sub(0, 0.05), input_unit)
    refs = {i.date: i for i in load_series(reference, unit=input_unit, progress=progress)}
    _warn_self_comparison(entries, refs, progress)
    grid = next(iter(refs.values())).grid
    coarse_items = load_series(coarse, unit=input_unit, progress=progress) if coarse else []
    fine_given = load_series(fine_series, unit=input_unit, progress=progress) if fine_series else None
    _check_grids(entries, refs, grid, coarse_items, fine_given)
    fine_items = fine_given if fine_given else sorted(refs.values(), key=lambda i: i.date)
    dates = _scored_dates(entries, refs, progress)
    class_codes, class_names = read_classes(str(classes), grid) if classes else (None, {})
    return _Inputs(entries, refs, grid, {i.date: i for i in coarse_items}, fine_items,
                   listed_difficult(list(refs.values())), dates, class_codes, class_names,
                   _flags_by_date([str(f) for f in flags]) if flags else {},
                   grid.pixel_size_m() / _coarse_resolution(params, coarse_items))


@dataclass
class _DateRasters:
    """One date's reference and the rasters compared with it, with the pixels they all share."""

    reference: SeriesItem
    ref: np.ndarray
    todo: list[Entry]
    arrays: dict[str, np.ndarray]
    ref_valid: np.ndarray
    common: np.ndarray
    persistence: SeriesItem | None


def _read_date(inputs: _Inputs, day: dt.date) -> _DateRasters:
    """The date's predictions plus its baselines (MODIS, persistence), read and checked for common pixels."""
    ref_item = inputs.refs[day]
    ref = ref_item.read().data
    todo = [e for e in inputs.entries if e.date == day]
    persistence = _nearest_before(inputs.fine_items, day)
    if day in inputs.coarse_by_date:
        todo.append(Entry(MODIS_BASELINE, day, inputs.coarse_by_date[day], True))
    if persistence is not None:
        todo.append(Entry(PERSISTENCE, day, persistence, True, str(persistence.date)))
    arrays = {}
    ref_valid = np.isfinite(ref)
    common = ref_valid.copy()
    for e in todo:
        a = e.item.read().data
        if not (np.isfinite(a) & ref_valid).any():
            raise EmptyDataError(f"{day}: {file_name(e.item.path)} ({e.label}) and the reference "
                                 f"{file_name(ref_item.path)} have no valid pixel in common.")
        arrays[e.label] = a
        common &= np.isfinite(a)
    if not common.any():
        raise EmptyDataError(f"{day}: no pixel is valid in the reference and in every compared raster "
                             f"({', '.join(arrays)}). Gap-fill the inputs, or evaluate them separately.")
    return _DateRasters(ref_item, ref, todo, arrays, ref_valid, common, persistence)


def _date_record(inputs: _Inputs, day: dt.date, d: _DateRasters, flags_path: str | None,
                 params: EvaluateParams) -> dict:
    """What the report says of a date: its reference, persistence, change and whether it is difficult."""
    change = (float(np.mean(np.abs(d.arrays[PERSISTENCE][d.common] - d.ref[d.common])))
              if PERSISTENCE in d.arrays else None)
    reasons = ([f"change of {change:.1f} K since the last Landsat"]
               if change is not None and change >= params.difficult_change_k else [])
    reasons += [inputs.declared[day]] if day in inputs.declared else []
    return {"date": str(day), "reference": file_name(d.reference.path),
            "persistence_date": str(d.persistence.date) if d.persistence else None,
            "change_k": change, "difficult": bool(reasons), "why": "; ".join(reasons),
            "pixels": int(d.common.sum()), "flags": file_name(flags_path) if flags_path else None}


def _flag_codes(ref_flags: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
    """The reference's status (0 observed, 1 gap-filled, −1 nodata) and flag codes, once per date."""
    if ref_flags is None:
        return None
    return (np.where(ref_flags == OBSERVED, 0, np.where(ref_flags == NODATA, -1, 1)),
            np.where(ref_flags == NODATA, -1, ref_flags))


def _score_row(inputs: _Inputs, day: dt.date, d: _DateRasters, e: Entry, flag_codes, difficult: bool,
               params: EvaluateParams) -> dict:
    """One entry's scores on a date, with its per-class and per-reference-flag breakdowns."""
    a = d.arrays[e.label]
    scores = m.compute(a, d.ref, inputs.ratio, params.metric_unit, mask=d.common)
    row = {"date": str(day), "label": e.label, "baseline": e.baseline, "prediction": file_name(e.item.path),
           "reference_dates": e.reference_dates, "coverage": float(np.mean(np.isfinite(a[d.ref_valid]))),
           "difficult": difficult, **scores}
    if inputs.class_codes is not None:
        row["classes"] = m.breakdown(a, d.ref, inputs.class_codes,
                                     lambda c: inputs.class_names.get(c, f"class {c}"), d.common)
    if flag_codes is not None:
        status, codes = flag_codes
        row["reference_status"] = m.breakdown(a, d.ref, status, lambda c: ("observed", "gap-filled")[c], d.common)
        row["reference_flags"] = m.breakdown(a, d.ref, codes, lambda c: FLAG_MEANING.get(c, str(c)), d.common)
    sigma_path = _uncertainty_of(e)
    if sigma_path is not None:
        row.update(_calibration(a - d.ref, sigma_path, d.common, inputs.grid))
    return row


@dataclass
class _Scores:
    rows: list[dict] = field(default_factory=list)
    per_date: list[dict] = field(default_factory=list)
    samples: dict[str, list[np.ndarray]] = field(default_factory=dict)
    errors: list[tuple[str, str, Path]] = field(default_factory=list)


def _score_date(inputs: _Inputs, day: dt.date, params: EvaluateParams, tmp: Path, rng, out: _Scores,
                step: Progress) -> None:
    """Score every entry of ``day`` into ``out`` and write the methods' error rasters."""
    d = _read_date(inputs, day)
    flags_path = inputs.flag_files.get(day) or _sidecar_flags(d.reference)
    flag_codes = _flag_codes(_read_flags(flags_path, inputs.grid) if flags_path else None)
    record = _date_record(inputs, day, d, flags_path, params)
    out.per_date.append(record)
    candidates = np.flatnonzero(d.common)
    for e in d.todo:
        a = d.arrays[e.label]
        out.rows.append(_score_row(inputs, day, d, e, flag_codes, record["difficult"], params))
        pick = candidates
        if pick.size > SAMPLES_PER_DATE:
            pick = rng.choice(pick, SAMPLES_PER_DATE, replace=False)
        out.samples.setdefault(e.label, []).append(np.stack([a.ravel()[pick], d.ref.ravel()[pick]]))
        if not e.baseline:
            path = tmp / "errors" / f"error_{day:%Y%m%d}_{_slug(e.label)}.tif"
            _write_error(path, np.where(np.isfinite(a) & d.ref_valid, a - d.ref, np.nan), inputs.grid, e,
                         d.reference)
            out.errors.append((str(day), e.label, path))
        step.update(1.0)


def _settings(params: EvaluateParams, ratio: float) -> dict:
    """The record's settings; its "unit" is the metric unit (the key reports have always read)."""
    settings = asdict(params)
    settings["unit"] = settings.pop("metric_unit")
    return {**settings, "resolution_ratio": ratio, "pixels": "valid in the reference and in every entry of the date"}


def evaluate(
    predictions: list[str | os.PathLike],
    reference: list[str | os.PathLike],
    out_dir: str | os.PathLike,
    coarse: list[str | os.PathLike] | None = None,
    fine_series: list[str | os.PathLike] | None = None,
    classes: str | os.PathLike | None = None,
    flags: list[str | os.PathLike] | None = None,
    labels: list[str] | None = None,
    params: EvaluateParams | None = None,
    progress: Progress | None = None,
) -> Evaluation:
    """Score ``predictions`` against ``reference`` and write the report, numbers and error rasters to ``out_dir``.

    ``coarse``: MODIS on the fine grid (the MODIS baseline); ``fine_series``: the Landsat the
    fusion used (the persistence baseline; the reference itself when not given); ``classes``:
    a categorical raster for per-class figures; ``flags``: gap-fill flags of the reference
    (found beside a gap-filled reference automatically).
    """
    from .report import write_report

    progress = ensure(progress)
    params = params or EvaluateParams()
    params.validate()
    inputs = _open_inputs(predictions, reference, coarse, fine_series, classes, flags, labels, params, progress)
    grid, dates = inputs.grid, inputs.dates
    sources = [*predictions, *reference, *(coarse or []), *(fine_series or []), classes, *(flags or [])]
    out = _Scores()
    with output_folder(out_dir, "evaluate", [str(i) for i in sources if i]) as tmp:
        n_errors = sum(1 for e in inputs.entries if e.date in inputs.refs)
        check_output_size(tmp, grid.width, grid.height, 4, n_errors, "OUTPUT_FOLDER", progress)
        (tmp / "errors").mkdir()
        rng = np.random.default_rng(0)
        for k, day in enumerate(dates):
            step = progress.sub(0.05 + 0.8 * k / len(dates), 0.05 + 0.8 * (k + 1) / len(dates))
            _score_date(inputs, day, params, tmp, rng, out, step)
            progress.info(f"{day}: " + "; ".join(f"{r['label']} RMSE {r['rmse']:.2f} K" for r in out.rows
                                                  if r["date"] == str(day)))
        summary = summarise(out.rows)
        record = {
            "kind": "lst_fusion_evaluation",
            "settings": _settings(params, inputs.ratio),
            "metrics": {k: {"title": v.title, "unit": v.unit or "", "better": v.better,
                            "unit_dependent": v.unit_dependent} for k, v in m.METRICS.items()},
            "dates": out.per_date, "results": out.rows, "summary": summary,
            "classes": {str(k): v for k, v in inputs.class_names.items()},
        }
        (tmp / RECORD_NAME).write_text(json.dumps(_finite(record), indent=2, ensure_ascii=False))
        _write_csv(tmp / "metrics.csv", out.rows)
        progress.update(0.9, "writing the report")
        write_report(tmp / "report.html", record, {k: np.concatenate(v, axis=1) for k, v in out.samples.items()},
                     _map_inputs(out.per_date, out.rows, inputs.entries, inputs.refs, inputs.coarse_by_date,
                                 inputs.fine_items, params.map_dates), progress)
    folder = Path(out_dir).expanduser().resolve()
    return Evaluation(folder, folder / "report.html", folder / RECORD_NAME, folder / "metrics.csv",
                      [(d, label, folder / "errors" / p.name) for d, label, p in out.errors], out.per_date, summary)


def summarise(rows: list[dict]) -> dict:
    """Mean of every metric per entry over all dates, the difficult dates and the others.

    Means are taken over the dates every entry has (an entry missing on a hard date would
    otherwise look better than it is); ``common_dates`` says how many that was, and when no
    date has them all each entry is averaged over its own dates.
    """
    labels = sorted({r["label"] for r in rows}, key=_label_order)
    by_date: dict[str, set[str]] = {}
    for r in rows:
        by_date.setdefault(r["date"], set()).add(r["label"])
    common = {d for d, present in by_date.items() if present == set(labels)}
    out: dict = {"common_dates": len(common), "dates": len(by_date), "common": sorted(common)}
    for subset, keep in (("all", lambda r: True), ("difficult", lambda r: r["difficult"]),
                         ("other", lambda r: not r["difficult"])):
        chosen = [r for r in rows if keep(r) and (r["date"] in common or not common)]
        out[subset] = {
            label: {"dates": sum(1 for r in chosen if r["label"] == label),
                    "baseline": next(r["baseline"] for r in chosen if r["label"] == label),
                    **{k: float(np.mean([r[k] for r in chosen if r["label"] == label])) for k in m.METRICS}}
            for label in labels if any(r["label"] == label for r in chosen)}
    return out


def _label_order(label: str) -> tuple:
    """Methods first (by name), then the baselines: MODIS, persistence."""
    baselines = (MODIS_BASELINE, PERSISTENCE)
    return (label in baselines, baselines.index(label) if label in baselines else 0, label)


def _map_inputs(per_date, rows, entries, refs, coarse_by_date, fine_items, count: int) -> list[dict]:
    """The dates drawn as maps: the most difficult (largest change) and the easiest, up to ``count``."""
    # Dates without a persistence image have no measured change: drawn only when no other date is.
    order = sorted(per_date, key=lambda d: (d["change_k"] is None, -(d["change_k"] or 0)))
    order = [d for d in order if d["change_k"] is not None] or order
    if len(order) > count:
        order = [order[i] for i in sorted(set(np.linspace(0, len(order) - 1, count).round().astype(int)))]
    picked = sorted(order, key=lambda d: d["date"])
    maps = []
    for d in picked:
        day = dt.date.fromisoformat(d["date"])
        items = {e.label: e.item for e in entries if e.date == day}
        if day in coarse_by_date:
            items[MODIS_BASELINE] = coarse_by_date[day]
        before = _nearest_before(fine_items, day)
        if before is not None:
            items[PERSISTENCE] = before
        maps.append({"date": d["date"], "difficult": d["difficult"], "why": d["why"], "change_k": d["change_k"],
                     "reference": refs[day], "entries": items})
    return maps


def _finite(value):
    """JSON has no NaN or infinity: write them as null."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _write_csv(path: Path, rows: list[dict]) -> None:
    """One row per date and entry (a row per class / fill status too, marked in 'group')."""
    columns = ["date", "label", "baseline", "difficult", "group", "coverage", "n", *m.METRICS]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "group": "all"})
            for kind in ("classes", "reference_status"):
                for group, scores in row.get(kind, {}).items():
                    writer.writerow({"date": row["date"], "label": row["label"], "baseline": row["baseline"],
                                     "difficult": row["difficult"], "group": f"{kind}:{group}", **scores})
