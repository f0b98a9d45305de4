"""Where a run may write: the one guard every stage's outputs pass through.

The contract: a run never deletes or overwrites anything it did not create.

- A file output must be a GeoTIFF name (for rasters), not an existing folder, not one of
  the run's inputs, not inside an input folder, and, if it exists, a file LST Fusion
  wrote (it carries our tags). Anything else is refused before any work is done.
- A folder output must be new, empty, or a previous output of the same algorithm: such
  a folder holds :data:`RECORD`, which lists the files that run wrote. Only those files
  are replaced or removed; files the user added stay. Results are computed in a hidden
  staging folder beside it and moved in only once complete.
- Before a large write the size is estimated and refused when over the pixel limit or
  the free disk space, with the estimate in the message.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from .. import __version__
from ..errors import OutputError
from ..progress import Progress, ensure
from .atomic import make_parent, remove_path, remove_stale, stop_on_signals, temporary_name, write_errors

RECORD = "lst_fusion_output.json"
RASTER_SUFFIXES = (".tif", ".tiff")
MAX_PIXELS_ENV = "LST_FUSION_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 1_000_000_000  # ~31,600 px square: 16 Landsat scenes; far beyond any sane LST grid


def _resolve(path: str | os.PathLike) -> Path:
    text = str(path)
    if text.startswith("HDF4_EOS:"):  # a subdataset: the file is its third field
        text = text.split(":")[2].strip('"')
    return Path(text).expanduser().resolve(strict=False)


def _inputs(inputs: Iterable[str | os.PathLike | None]) -> list[Path]:
    return [_resolve(p) for p in inputs if p]


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _show(entries: Iterable[Path], limit: int = 3) -> str:
    names = sorted(p.name for p in entries)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _check_not_input(out: Path, inputs: list[Path], parameter: str, what: str) -> None:
    for source in inputs:
        if out == source or (out.exists() and source.exists() and _samefile(out, source)):
            raise OutputError(f"{parameter}: {out} is an input of this run; it would be overwritten. "
                              f"Choose another {what} for the output.")
        if source.is_dir() and _is_within(out, source):
            raise OutputError(f"{parameter}: {out} is inside the input folder {source}; outputs there would be "
                              f"read as inputs next time. Choose a {what} outside it.")


def _samefile(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _check_parent(out: Path, parameter: str) -> None:
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{parameter}: {parent} is a file, not a folder. Choose an output in a folder.")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise OutputError(f"{parameter}: no permission to write in {parent}. Choose a folder you can "
                                  "write to.")
            return


def written_by_us(path: Path) -> bool:
    """Whether the raster at ``path`` carries LST Fusion's tags (so a rerun may replace it)."""
    import rasterio

    try:
        with rasterio.open(path) as src:
            tags = src.tags()
    except Exception:  # noqa: BLE001 - anything GDAL cannot open is not ours
        return False
    return "LST_FUSION_CONTENT" in tags or "LST_FUSION_VERSION" in tags


def check_raster_output(
    path: str | os.PathLike,
    inputs: Iterable[str | os.PathLike | None] = (),
    parameter: str = "OUTPUT",
) -> Path:
    """Check a raster may be written at ``path``; return the resolved path. Cleans stale temporaries."""
    if not str(path).strip():
        raise OutputError(f"{parameter}: no output file given.")
    out = _resolve(path)
    if out.is_dir():
        raise OutputError(f"{parameter}: {out} is an existing folder; it was left alone. Give a file name "
                          "inside it instead (e.g. " + str(out / "lst.tif") + ").")
    if out.suffix.lower() not in RASTER_SUFFIXES:
        raise OutputError(f"{parameter}: {out.name} — LST Fusion writes GeoTIFF rasters; name the output "
                          f"with .tif (e.g. {out.stem or 'lst'}.tif).")
    _check_not_input(out, _inputs(inputs), parameter, "file")
    if out.exists() and not written_by_us(out):
        raise OutputError(f"{parameter}: {out} exists and was not written by LST Fusion; it was left alone. "
                          "Choose another name, or move that file away yourself.")
    _check_parent(out, parameter)
    remove_stale(out)
    return out


def check_file_output(
    path: str | os.PathLike,
    inputs: Iterable[str | os.PathLike | None] = (),
    parameter: str = "OUTPUT",
) -> Path:
    """The checks of :func:`check_raster_output` for a non-raster file we are about to create."""
    out = _resolve(path)
    if out.is_dir():
        raise OutputError(f"{parameter}: {out} is an existing folder; it was left alone. Give a file name.")
    _check_not_input(out, _inputs(inputs), parameter, "file")
    _check_parent(out, parameter)
    remove_stale(out)
    return out


def read_record(folder: Path) -> dict | None:
    """The record of the LST Fusion run that wrote ``folder``, or ``None``."""
    try:
        record = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("kind") != "lst_fusion_output":
        return None
    return record


def check_output_folder(
    path: str | os.PathLike,
    algorithm: str,
    inputs: Iterable[str | os.PathLike | None] = (),
    parameter: str = "OUTPUT_FOLDER",
) -> Path:
    """Check ``path`` may receive ``algorithm``'s output folder; return it resolved."""
    if not str(path).strip():
        raise OutputError(f"{parameter}: no output folder given.")
    raw = Path(path).expanduser()
    if raw.is_symlink() and not raw.exists():
        raise OutputError(f"{parameter}: {raw} is a link to nothing ({os.readlink(raw)}). Choose a real folder.")
    out = _resolve(path)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{parameter}: {out} is a file; it was left alone. Choose a folder for the output.")
    sources = _inputs(inputs)
    _check_not_input(out, sources, parameter, "folder")
    for source in sources:
        if _is_within(source, out):
            raise OutputError(f"{parameter}: {out} holds the input {source.name}; writing there could replace "
                              "it. Choose another folder for the output.")
    if out.is_dir():
        entries = [p for p in out.iterdir() if p.name != RECORD]
        record = read_record(out)
        if entries and record is None:
            raise OutputError(f"{parameter}: {out} is not empty ({_show(entries)}) and was not written by LST "
                              "Fusion; nothing in it was touched. Choose an empty or new folder.")
        if record is not None and record.get("algorithm") != algorithm:
            raise OutputError(f"{parameter}: {out} holds the output of '{record.get('algorithm')}', not of "
                              f"'{algorithm}'; it was left alone. Choose another folder.")
    _check_parent(out, parameter)
    return out


def _files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def write_record(folder: Path, algorithm: str, files: Iterable[str], complete: bool = True) -> None:
    """Write (atomically) the record saying which files of ``folder`` ``algorithm`` wrote."""
    record = {"kind": "lst_fusion_output", "algorithm": algorithm, "version": __version__,
              "written": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "complete": complete,
              "files": sorted(set(files))}
    tmp = temporary_name(folder / RECORD)
    try:
        tmp.write_text(json.dumps(record, indent=2))
        os.replace(tmp, folder / RECORD)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def claim_folder(
    path: str | os.PathLike,
    algorithm: str,
    files: Iterable[str],
    inputs: Iterable[str | os.PathLike | None] = (),
    parameter: str = "OUTPUT_FOLDER",
) -> Path:
    """For a stage that writes in place (training checkpoints): check ``path``, create it, and record
    the ``files`` it may write, so a rerun or resume recognises the folder as its own."""
    out = check_output_folder(path, algorithm, inputs, parameter)
    with write_errors(out):
        out.mkdir(parents=True, exist_ok=True)
        previous = read_record(out)
        write_record(out, algorithm, {*files, *(previous["files"] if previous else ())}, complete=False)
    return out


def _commit(stage: Path, out: Path, algorithm: str) -> None:
    """Move the staged files into ``out``, replacing only files the previous run of ``algorithm`` listed."""
    new = _files_under(stage)
    if RECORD in new:
        raise OutputError(f"{out}: a stage tried to write {RECORD}, which is reserved.")
    previous = read_record(out) if out.is_dir() else None
    old = set(previous["files"]) if previous else set()
    conflicts = [name for name in new if (out / name).exists() and name not in old]
    if conflicts:
        raise OutputError(f"{out}: already holds {', '.join(conflicts[:3])}, which LST Fusion did not write; "
                          "nothing was changed. Move those files away or choose another folder.")
    out.mkdir(parents=True, exist_ok=True)
    # While files move, the record lists both runs' files, so an interrupted commit stays ours.
    write_record(out, algorithm, old | set(new), complete=False)
    for name in new:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        os.replace(stage / name, out / name)
    for name in sorted(old - set(new)):
        target = out / name
        if target.is_file() or target.is_symlink():
            target.unlink()
        for parent in target.parents:
            if parent == out or not parent.is_dir() or any(parent.iterdir()):
                break
            parent.rmdir()
    write_record(out, algorithm, new)


@contextlib.contextmanager
def output_folder(
    path: str | os.PathLike,
    algorithm: str,
    inputs: Iterable[str | os.PathLike | None] = (),
    parameter: str = "OUTPUT_FOLDER",
) -> Iterator[Path]:
    """Yield a staging folder for ``algorithm``'s outputs; on success move them into ``path``.

    The checks of :func:`check_output_folder` run first. On failure, cancellation or a
    signal the staging folder is removed and ``path`` is left exactly as it was.
    """
    out = check_output_folder(path, algorithm, inputs, parameter)
    make_parent(out)
    remove_stale(out)
    stage = temporary_name(out)
    with stop_on_signals(), write_errors(out):
        try:
            stage.mkdir()
            yield stage
            _commit(stage, out, algorithm)
        finally:
            remove_path(stage)


SCRATCH_MARK = ".lst_fusion_scratch"


def fresh_scratch_folder(path: str | os.PathLike) -> Path:
    """An empty working folder for a script's intermediate files.

    An existing folder is emptied only when this function made it (it holds our mark);
    any other folder is refused and left exactly as it was.
    """
    folder = Path(path).expanduser()
    if folder.is_symlink() or (folder.exists() and not (folder / SCRATCH_MARK).is_file()):
        raise OutputError(f"{folder} exists and is not a scratch folder LST Fusion made; it was left alone. "
                          "Choose another working folder, or remove it yourself.")
    if folder.exists():
        remove_path(folder)
    with write_errors(folder):
        folder.mkdir(parents=True)
        (folder / SCRATCH_MARK).write_text("Made by LST Fusion; rerunning the script that made it replaces it.\n")
    return folder


def max_pixels() -> int:
    try:
        return int(float(os.environ.get(MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS)))
    except ValueError:
        return DEFAULT_MAX_PIXELS


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def check_output_size(
    destination: str | os.PathLike,
    width: int,
    height: int,
    bytes_per_pixel: float,
    files: int = 1,
    parameter: str = "OUTPUT",
    progress: Progress | None = None,
) -> int:
    """Refuse a write over the pixel limit or the free disk space; return the estimated bytes.

    ``bytes_per_pixel`` counts every band and temporary a pixel costs on disk,
    uncompressed (DEFLATE usually halves it, so the estimate is an upper bound).
    """
    progress = ensure(progress)
    pixels = int(width) * int(height)
    limit = max_pixels()
    if pixels > limit:
        raise OutputError(
            f"{parameter}: the output grid would be {width:,} × {height:,} px ({pixels / 1e9:.2f} billion pixels), "
            f"over the limit of {limit / 1e9:.2f} billion. Check the resolution and extent (in the units of "
            f"the CRS); to go beyond, set the environment variable {MAX_PIXELS_ENV}."
        )
    need = int(pixels * bytes_per_pixel * files)
    where = Path(destination).expanduser().resolve(strict=False)
    anchor = next((p for p in (where, *where.parents) if p.exists()), Path.cwd())
    free = shutil.disk_usage(anchor).free
    if need >= 64 * 2**20:
        progress.info(f"Writing {files} raster(s) of {width:,} × {height:,} px: up to {_size(need)} "
                      f"({_size(free)} free)")
    if need > free:
        raise OutputError(
            f"{parameter}: the output needs up to {_size(need)} ({files} raster(s) of {width:,} × {height:,} px) "
            f"and only {_size(free)} is free on the disk of {anchor}. Free some space or choose another disk."
        )
    return need
