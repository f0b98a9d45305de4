"""Fuse a whole season: every MODIS date without Landsat, each from its nearest reference pair(s).

A Landsat series (decoded or gap-filled) and a MODIS series on the Landsat grid are paired
by date; each MODIS date that has no Landsat (or each date the user lists) is predicted
with any registered method from the nearest pair (one-pair methods), the nearest pairs
before and after it (two-pair methods) or every other pair (multi-date methods such as the
season regression), unless the user fixes the references. Statistics
of a reference pair and an ONNX Runtime session are computed once for the whole series.

Outputs: one GeoTIFF per date named ``lst_YYYYMMDD_METHOD.tif``, a multi-band VRT stack
``lst_stack_METHOD.vrt`` whose band descriptions are the dates, and ``fuse_series.json``.
A cancelled or interrupted series keeps the dates already finished and, in a folder it wrote
before, every earlier date that no finished one replaced (its report lists both); the date in
progress leaves nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import tiler
from ..io.atomic import atomic_path, remove_path
from ..io.outputs import FolderCommit, check_output_folder, check_output_size, output_folder
from ..io.pairs import Pair, pair_by_date
from ..io.readers import normalise_unit
from ..io.record import verified_record
from ..io.series import SeriesItem, check_fine_and_coarse, load_series
from ..io.writers import unit_suffix
from ..parameters import param
from ..progress import Progress, ensure
from .distribute import client_for, collect, prepare_workers, run_locally
from .fuse import (
    FusionResult,
    adjustments,
    fuse_inputs,
    fusion_plan,
    input_readers,
    method_and_params,
    method_kernel,
    method_tags,
    uncertainty_path,
    write_fused,
)
from .inputs import EVERY_PAIR, FusionInputs
from .methods import get, reference_statistics
from .sensor_bias import reference_offset

ALGORITHM = "fuse_series"
REPORT = "fuse_series.json"


@dataclass(frozen=True)
class SeriesOptions:
    """Options of a season's run beside the method's own (the Processing algorithm offers these fields)."""

    # backend/training/adapt.py: the deep model fine-tuned on the season's pairs (never on a date it predicts)
    adapt_minutes: float = param(0.0, "ADAPT_MINUTES", "Deep models: adapt the model to this season first (time "
                                 "budget in minutes; 0 = use it as it is)", 0.0, 1440.0)


@dataclass(frozen=True)
class SeriesTask:
    target: SeriesItem
    pairs: tuple[Pair, ...]  # sorted by date


def plan_series(
    pairs: list[Pair],
    coarse: list[SeriesItem],
    references: int,
    dates: list[dt.date] | None = None,
    reference_dates: list[dt.date] | None = None,
    include_paired: bool = False,
) -> tuple[list[SeriesTask], list[tuple[dt.date, str]]]:
    """The dates to predict with their reference pairs, and the dates skipped with the reason.

    ``include_paired`` also predicts the dates that have Landsat, each from the other pairs
    (leave-one-out), to compare fusion with an observation.
    """
    targets = _targets(pairs, coarse, dates, include_paired)
    fixed = _fixed_references(pairs, references, reference_dates) if reference_dates else None
    tasks, skipped = [], []
    for target in targets:
        chosen, why = _references_for(target, pairs, references, fixed)
        if chosen is None:
            skipped.append((target.date, why))
        else:
            tasks.append(SeriesTask(target, chosen))
    return tasks, skipped


def _targets(pairs: list[Pair], coarse: list[SeriesItem], dates: list[dt.date] | None,
             include_paired: bool) -> list[SeriesItem]:
    """The MODIS dates to predict: ``dates`` (each must exist), else every date without Landsat."""
    by_date = {c.date: c for c in coarse}
    if dates:
        missing = [d for d in dates if d not in by_date]
        if missing:
            raise InputError(f"DATES: no MODIS raster for {', '.join(map(str, missing))} in the coarse series.")
        return [by_date[d] for d in sorted(set(dates))]
    pair_dates = {p.date for p in pairs}
    return [c for c in coarse if include_paired or c.date not in pair_dates]


def _fixed_references(pairs: list[Pair], references: int, reference_dates: list[dt.date]) -> tuple[Pair, ...]:
    """The pairs the user fixed for every date, checked against the pairs there are and the method's count."""
    lookup = {p.date: p for p in pairs}
    unknown = [d for d in reference_dates if d not in lookup]
    if unknown:
        raise InputError(f"REFERENCE_DATES: {', '.join(map(str, unknown))} have no Landsat + MODIS pair. "
                         f"Pairs exist for {', '.join(str(p.date) for p in pairs) or 'no date'}.")
    if references != EVERY_PAIR and len(reference_dates) != references:
        raise InputError(f"REFERENCE_DATES: this method uses {references} reference pair(s); "
                         f"{len(reference_dates)} given.")
    return tuple(sorted((lookup[d] for d in reference_dates), key=lambda p: p.date))


def _references_for(target: SeriesItem, pairs: list[Pair], references: int,
                    fixed: tuple[Pair, ...] | None) -> tuple[tuple[Pair, ...] | None, str]:
    """The reference pair(s) of one target date (the nearest, the nearest before and after it, or every other
    pair for multi-date methods), or None with the reason it cannot be predicted."""
    if fixed is not None:
        if any(p.date == target.date for p in fixed):
            return None, "it is one of the fixed reference dates"
        if references == 2 and not fixed[0].date < target.date < fixed[1].date:
            return None, "it does not lie between the fixed reference dates"
        return fixed, ""
    candidates = [p for p in pairs if p.date != target.date]
    if references == EVERY_PAIR:
        return (tuple(candidates), "") if candidates else (None, "no reference pair")
    if references == 1:
        if not candidates:
            return None, "no reference pair"
        return (min(candidates, key=lambda p: (abs((p.date - target.date).days), p.date)),), ""
    before = [p for p in candidates if p.date < target.date]
    after = [p for p in candidates if p.date > target.date]
    if not before or not after:
        return None, f"no reference pair {'before' if not before else 'after'} it"
    return (before[-1], after[0]), ""


# Per process: reference statistics and ONNX Runtime sessions reused by the dates a process runs
# (this one, or a Dask worker's).
_PROCESS_CACHE: dict = {}


def fuse_date(method: str, params, inputs: FusionInputs, out_path: str, stats: dict, out_unit: str = "K",
              progress: Progress | None = None) -> FusionResult:
    """One date of a series, in this process."""
    _PROCESS_CACHE.update(stats)
    return fuse_inputs(get(method), params, inputs, Path(out_path), _PROCESS_CACHE, progress=progress,
                       out_unit=out_unit, algorithm=ALGORITHM)


def fuse_band(method: str, params, inputs: FusionInputs, index: int, band_path: str,
              stats: dict) -> tuple[str, dict[str, str]]:
    """One band of tiles of one date, on a Dask worker: saved (atomically) to ``band_path``."""
    spec = get(method)
    _PROCESS_CACHE.update(stats)
    state = spec.prepare(inputs, params, Progress(on_message=lambda m: None), _PROCESS_CACHE)
    adjust = adjustments(params, inputs, _PROCESS_CACHE)
    tile_plan = fusion_plan(spec, params, inputs, adjust=adjust)
    with spec.in_use(state):
        result = tiler.compute_band(tile_plan, index, input_readers(inputs),
                                    method_kernel(spec, params, state, adjust), spec.mode)
    path = Path(band_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        arrays = {"index": result.index, "top": result.top, "value": result.value}
        if result.weight is not None:
            arrays["weight"] = result.weight
        np.savez(tmp, **arrays)
    return str(path), method_tags(spec, params, state, adjust)


def assemble_date(method: str, params, inputs: FusionInputs, bands: list[tuple[str, dict]],
                  out_path: str, out_unit: str = "K") -> FusionResult:
    """Write one date's raster (atomically) from its saved bands, on a Dask worker."""
    spec = get(method)
    adjust = adjustments(params, inputs, _PROCESS_CACHE)
    tile_plan = fusion_plan(spec, params, inputs, adjust=adjust)

    def produce(write):
        assembler = tiler.Assembler(tile_plan, spec.mode, write)
        for path, _ in bands:
            with np.load(path) as saved:
                assembler.add(tiler.BandResult(int(saved["index"]), int(saved["top"]), saved["value"],
                                               saved["weight"] if "weight" in saved else None))
        return assembler.valid, assembler.written

    return write_fused(spec, params, inputs, Path(out_path), bands[0][1] if bands else {}, produce, adjust,
                       out_unit=out_unit, algorithm=ALGORITHM)


def _on_cluster(scheduler: str, spec, params, jobs: list[tuple[FusionInputs, Path]], labels: list[str],
                stats: dict, stage: Path, progress: Progress, out_unit: str = "K"):
    """Submit every date as (band tasks → one assembly task); collect the dates as they finish."""
    with client_for(scheduler) as client:
        workers = prepare_workers(client, scheduler, (__name__, "rasterio", *spec.requires), progress)
        progress.info(f"Running {len(jobs)} date(s) on the Dask cluster at {scheduler} ({workers} worker(s))")
        dates, folders = [], []
        for inputs, out in jobs:
            folder = stage / ".bands" / out.stem
            folders.append(folder)
            n = fusion_plan(spec, params, inputs).n_bands
            bands = [client.submit(fuse_band, spec.name, params, inputs, k, str(folder / f"band_{k:05d}.npz"),
                                   stats, retries=2, pure=False) for k in range(n)]
            dates.append(client.submit(assemble_date, spec.name, params, inputs, bands, str(out), out_unit, retries=2,
                                       pure=False))
        done, stopped = collect(dates, labels, progress, on_done=lambda k: remove_path(folders[k]), address=scheduler)
        client.cancel(dates)
    remove_path(stage / ".bands")
    return done, stopped


@dataclass
class SeriesResult:
    folder: Path
    method: str
    outputs: list[FusionResult]
    skipped: list[tuple[str, str]]
    stack: Path | None
    report: Path


def _write_stack(folder: Path, entries: list[tuple[str, str]], method: str, out_unit: str = "K",
                 kept_in: Path | None = None) -> Path | None:
    """A VRT with one band per (file name, date) of ``entries`` (band description = the date), for tools
    that take a stack. Names not in ``folder`` are the previous run's files kept in ``kept_in``."""
    if not entries:
        return None
    from osgeo import gdal

    gdal.UseExceptions()
    path = folder / f"lst_stack_{method}{unit_suffix(out_unit)}.vrt"
    entries = sorted(entries, key=lambda e: e[1])
    links = []
    cwd = os.getcwd()
    try:
        for name, _ in entries:
            if kept_in is not None and not (folder / name).exists():
                (folder / name).symlink_to(kept_in / name)  # read by BuildVRT only; removed before the commit
                links.append(folder / name)
        os.chdir(folder)  # relative source paths, so the folder can be moved or shared
        vrt = gdal.BuildVRT(path.name, [name for name, _ in entries], separate=True)
        for band, (_, date) in enumerate(entries, start=1):
            vrt.GetRasterBand(band).SetDescription(date)
            vrt.GetRasterBand(band).SetMetadataItem("ACQUISITION_DATE", date)
        vrt.SetMetadataItem("LST_UNIT", out_unit)
        vrt.FlushCache()
        vrt = None
    finally:
        os.chdir(cwd)
        for link in links:
            link.unlink(missing_ok=True)
    return path


def _previous_dates(folder: Path, replaced: set[str]) -> tuple[list[dict], str | None, str | None]:
    """The dates of the previous run's report in ``folder`` whose files no new file replaces, with that
    report's method and unit (a stopped run keeps them, and says so in its own report)."""
    record = verified_record(folder, check_files=False) if folder.is_dir() else None  # the commit checks them
    if record is None or REPORT not in record["files"]:
        return [], None, None
    try:
        previous = json.loads((folder / REPORT).read_text())
    except (OSError, ValueError):
        return [], None, None
    kept = [{**entry, "from_previous_run": True} for entry in previous.get("dates", [])
            if entry.get("path") not in replaced and entry.get("path") in record["files"]
            and (folder / entry["path"]).is_file()]
    return kept, previous.get("method"), previous.get("unit")


def fuse_series(
    method: str,
    fine_inputs: list[str | os.PathLike],
    coarse_inputs: list[str | os.PathLike],
    out_dir: str | os.PathLike,
    params=None,
    dates: list[dt.date] | None = None,
    reference_dates: list[dt.date] | None = None,
    unit: str | None = None,
    scheduler: str | None = None,
    include_paired: bool = False,
    progress: Progress | None = None,
    out_unit: str = "K",
    adapt_minutes: float = 0.0,
) -> SeriesResult:
    """Predict every MODIS-only date (or ``dates``) of a season into ``out_dir``, in ``out_unit``.

    ``scheduler``: the address of a Dask scheduler to run the dates on a cluster (the
    output folder must be on storage its workers share); None runs them here.
    ``include_paired``: also predict the dates that have Landsat, from the other pairs.
    ``adapt_minutes`` > 0: a deep model is first fine-tuned on the season's pairs, the dates to
    predict left out, within that many minutes (``adapted_<model>.onnx`` in the folder).
    """
    progress = ensure(progress)
    out_unit = normalise_unit(out_unit) or "K"
    spec, params = method_and_params(method, params)
    references = spec.references(params)
    if adapt_minutes and not hasattr(params, "path"):
        raise InputError(f"ADAPT_MINUTES: {spec.short} has no trained model to adapt; set it to 0, or choose a deep "
                         "model (METHOD onnx).")
    check_output_folder(out_dir, ALGORITHM, [*fine_inputs, *coarse_inputs])
    fine = load_series(fine_inputs, unit=unit, progress=progress)
    coarse = load_series(coarse_inputs, unit=unit, progress=progress)
    grid = fine[0].grid
    check_fine_and_coarse(fine, coarse)
    pairs = pair_by_date(fine, coarse, 0)
    tasks, skipped = plan_series(pairs, coarse, references, dates, reference_dates, include_paired)
    for date, why in skipped:
        progress.warn(f"{date}: not predicted ({why}).")
    if not tasks:
        raise _nothing_to_predict(pairs, coarse, include_paired, dates)
    stats = _series_statistics(spec, params, tasks, grid)
    sources = [*fine_inputs, *coarse_inputs, *(i.path for i in fine), *(i.path for i in coarse)]
    folder = Path(out_dir).expanduser()
    commit = FolderCommit()
    with output_folder(out_dir, ALGORITHM, sources, commit=commit) as tmp:
        check_output_size(tmp, grid.width, grid.height, 4, len(tasks), "OUTPUT_FOLDER", progress)
        adaptation = None
        if adapt_minutes:
            params, adaptation = _adapted(params, fine_inputs, coarse_inputs, pairs, tasks, tmp, adapt_minutes,
                                          progress)
        names = [f"lst_{task.target.date:%Y%m%d}_{spec.name}{unit_suffix(out_unit)}.tif" for task in tasks]
        jobs = [(FusionInputs(tuple((p.fine, p.coarse) for p in task.pairs), task.target, grid), tmp / name)
                for task, name in zip(tasks, names)]
        labels = [f"{task.target.date}: {name} from {', '.join(str(p.date) for p in task.pairs)}"
                  for task, name in zip(tasks, names)]
        # Cancelled or interrupted: the dates already written are committed, and every earlier file that
        # no finished date replaced is kept.
        done, stopped = _run_dates(scheduler, spec, params, jobs, labels, stats, tmp, progress, out_unit)
        entries = [{**asdict(r), "path": r.path.name, "uncertainty": r.uncertainty.name if r.uncertainty else None}
                   for r in done]
        finished = {name for e in entries for name in (e["path"], e["uncertainty"]) if name}
        _drop_uncollected(jobs, finished)
        kept, kept_method, kept_unit = [], None, None
        if stopped is not None:
            commit.keep_previous = True
            kept, kept_method, kept_unit = _previous_dates(folder, finished)
        same_stack = kept if (kept_method, kept_unit) == (spec.name, out_unit) else []
        stack = _write_stack(tmp, [(e["path"], e["target_date"]) for e in [*entries, *same_stack]], spec.name,
                             out_unit, folder)
        report = {
            "kind": "lst_fusion_fuse_series", "method": spec.name, "unit": out_unit, "parameters": repr(params),
            "complete": stopped is None,
            "dates": sorted([*entries, *kept], key=lambda e: e["target_date"]),
            "skipped": [{"date": str(d), "reason": why} for d, why in skipped],
            "stack": stack.name if stack else None,
            "adaptation": adaptation,
        }
        (tmp / REPORT).write_text(json.dumps(report, indent=2))
    results = [FusionResult(folder / r.path.name, r.method, r.target_date, r.reference_dates, r.valid_fraction,
                            r.nodata_pixels, folder / r.uncertainty.name if r.uncertainty else None) for r in done]
    if stopped is not None:
        raise _stopped_error(stopped, done, len(tasks), folder, len(kept))
    return SeriesResult(folder, spec.name, results, [(str(d), w) for d, w in skipped],
                        folder / stack.name if stack else None, folder / REPORT)


def _adapted(params, fine_inputs, coarse_inputs, pairs: list[Pair], tasks: list[SeriesTask], tmp: Path,
             minutes: float, progress: Progress):
    """``params`` with the model adapted to the season (written into the output folder), and what the report
    says of it. The paired dates being predicted are left out of the adaptation."""
    from ..training.adapt import AdaptParams, adapt_model

    predicted = {t.target.date for t in tasks} & {p.date for p in pairs}
    out = tmp / f"adapted_{Path(params.path).stem}.onnx"
    result = adapt_model(fine_inputs, coarse_inputs, out, AdaptParams(model=params.path, minutes=minutes,
                                                                       exclude_dates=sorted(predicted)),
                         progress=progress)
    report = {"model": out.name, "base_model": Path(params.path).name, "dates": list(result.dates),
              "excluded_dates": [str(d) for d in sorted(predicted)], "validation_rmse_k": result.rmse_k,
              "base_validation_rmse_k": result.base_rmse_k, "minutes": round(result.minutes, 2)}
    return replace(params, model=str(out), shipped=""), report


def _nothing_to_predict(pairs: list[Pair], coarse: list[SeriesItem], include_paired: bool,
                        dates: list[dt.date] | None) -> InputError:
    """Why a series has no date to predict, with the way out when every MODIS date has Landsat."""
    hint = (" Every MODIS date has Landsat: set INCLUDE_PAIRED to predict those dates from the other pairs "
            "(to compare fusion with Landsat), or add the MODIS-only dates to predict."
            if len(pairs) == len(coarse) and not include_paired and not dates else "")
    return InputError(f"Nothing to predict: {len(coarse)} MODIS date(s), {len(pairs)} with Landsat, and no "
                      f"other date has the reference pair(s) this method needs.{hint}")


def _series_statistics(spec, params, tasks: list[SeriesTask], grid) -> dict:
    """The statistics of each reference pair, computed once for the series (and sent to workers)."""
    stats: dict = {}
    if spec.reference_statistics:  # the window methods' similarity thresholds
        reference_statistics({p.fine.path: p.fine for task in tasks for p in task.pairs}.values(), grid, stats)
    if getattr(params, "sensor_bias", "none") == "landsat":
        for pair in {p.fine.path: p for task in tasks for p in task.pairs}.values():
            reference_offset(pair.fine, pair.coarse, grid, stats)
    return stats


def _run_dates(scheduler: str | None, spec, params, jobs: list[tuple[FusionInputs, Path]], labels: list[str],
               stats: dict, tmp: Path, progress: Progress, out_unit: str):
    """Fuse every job here or on the cluster: the results finished and what stopped the rest (or None)."""
    try:
        if scheduler:
            return _on_cluster(scheduler, spec, params, jobs, labels, stats, tmp, progress, out_unit)
        return run_locally(fuse_date, [(spec.name, params, inputs, str(out), stats, out_unit)
                                       for inputs, out in jobs], labels, progress)
    finally:
        _PROCESS_CACHE.clear()


def _drop_uncollected(jobs: list[tuple[FusionInputs, Path]], finished: set[str]) -> None:
    """Remove what a lost worker wrote but nobody collected: it is not reported, so it is not kept."""
    for _, out in jobs:
        for path in (out, uncertainty_path(out)):
            if path.name not in finished:
                remove_path(path)


def _stopped_error(stopped: BaseException, done: list, planned: int, folder: Path, kept: int) -> BaseException:
    """The cancellation or interruption, saying which dates were finished and kept."""
    finished = ", ".join(r.target_date for r in done) or "none"
    earlier = f" The previous run's {kept} other date(s) were kept as they were." if kept else ""
    error = type(stopped)(f"{stopped} {len(done)} of {planned} date(s) were finished and kept in {folder} "
                          f"({finished}); the date in progress left nothing.{earlier}")
    error.kept = True
    return error
