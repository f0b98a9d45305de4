"""Where a run may write: the one guard every stage's outputs pass through.

The contract: a run never deletes or overwrites anything it did not create.

- A file output must be a GeoTIFF name (for rasters), not an existing folder, not one of
  the run's inputs, not inside an input folder, and, if it exists, a file the same
  algorithm wrote as its output (its tag :data:`OUTPUT_TAG` says which). Anything else is
  refused before any work is done.
- A folder output must be new, empty, or a previous output of the same algorithm: such
  a folder holds a signed record (:mod:`backend.io.record`) of the files that run wrote,
  with their checksums. Only those files, unchanged, are replaced or removed; files the user
  added stay. Results are computed in a hidden staging folder beside it and committed all
  or nothing.
- Before a large write the size is estimated and refused when over the pixel limit or
  the free disk space, with the estimate in the message.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import LSTFusionError, OutputError
from ..progress import Progress, ensure
from .atomic import (
    describe_write_failure,
    is_temporary,
    make_parent,
    raise_if_signalled,
    remove_path,
    remove_stale,
    stop_on_signals,
    temporary_name,
    write_errors,
)
from .record import RECORD, file_digest, read_record, verified_record, write_record

__all__ = ["RECORD", "read_record"]  # re-exported: the record's own module is backend.io.record

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


OUTPUT_TAG = "LST_FUSION_OUTPUT_OF"


def output_tag(algorithm: str) -> dict[str, str]:
    """The tag that says which algorithm wrote a raster as its output (only that algorithm may replace it)."""
    return {OUTPUT_TAG: algorithm}


def written_as_output_of(path: Path) -> str | None:
    """The algorithm that wrote the raster at ``path`` as its output, from its tags; None if not ours."""
    import rasterio

    try:
        with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path) as src:
            return src.tags().get(OUTPUT_TAG)
    except Exception:  # noqa: BLE001 - anything GDAL cannot open is not ours
        return None


def check_raster_output(
    path: str | os.PathLike,
    inputs: Iterable[str | os.PathLike | None] = (),
    parameter: str = "OUTPUT",
    *,
    algorithm: str,
) -> Path:
    """Check ``algorithm`` may write a raster at ``path``; return the resolved path. Cleans stale temporaries.

    An existing file is replaced only when ``algorithm`` itself wrote it as an output: another
    stage's product (a gap-filled Landsat raster, the sample data's truth) is an input-like file.
    """
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
    if out.exists():
        writer = written_as_output_of(out)
        if writer is None:
            raise OutputError(f"{parameter}: {out} exists and was not written by LST Fusion; it was left "
                              "alone. Choose another name, or move that file away yourself.")
        if writer != algorithm:
            raise OutputError(f"{parameter}: {out} is an output of '{writer}', not of '{algorithm}'; it was left "
                              "alone. Choose another name for this output.")
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


def check_output_folder(
    path: str | os.PathLike,
    algorithm: str,
    inputs: Iterable[str | os.PathLike | None] = (),
    parameter: str = "OUTPUT_FOLDER",
) -> Path:
    """Check ``path`` may receive ``algorithm``'s output folder; return it resolved.

    A folder with a record must hold a verified record of ``algorithm`` (:func:`verified_record`);
    its files' checksums are checked again when the new files are committed.
    """
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
        record = verified_record(out, parameter, check_files=False)
        entries = [p for p in out.iterdir() if p.name != RECORD]
        if entries and record is None:
            raise OutputError(f"{parameter}: {out} is not empty ({_show(entries)}) and was not written by LST "
                              "Fusion; nothing in it was touched. Choose an empty or new folder.")
        if record is not None and record.get("algorithm") != algorithm:
            raise OutputError(f"{parameter}: {out} holds the output of '{record.get('algorithm')}', not of "
                              f"'{algorithm}'; it was left alone. Choose another folder.")
    _check_parent(out, parameter)
    return out


def _files_under(folder: Path) -> list[str]:
    """The finished files of a staging folder (a killed worker's temporary is no output)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if (p.is_file() or p.is_symlink()) and not is_temporary(p.name))


def digests(folder: Path, names: Iterable[str]) -> dict[str, dict]:
    """The record entries (size, SHA-256) of ``names`` in ``folder``, for files that exist."""
    return {name: file_digest(folder / name) for name in names if (folder / name).is_file()}


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
        previous = verified_record(out, parameter)
        earlier = [*previous["files"], *previous["pending"]] if previous else []
        write_record(out, algorithm, {}, complete=False, pending={*files, *earlier})
    return out


@dataclass
class FolderCommit:
    """How :func:`output_folder` commits: ``keep_previous`` (a run stopped part-way) keeps every earlier
    file that no new file replaces, instead of removing those the new run did not write."""

    keep_previous: bool = False


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)


def _prune_empty_parents(path: Path, top: Path) -> None:
    for parent in path.parents:
        if parent == top or not parent.is_dir() or any(parent.iterdir()):
            return
        parent.rmdir()


def _commit(stage: Path, out: Path, algorithm: str, keep_previous: bool = False, parameter: str = "OUTPUT_FOLDER"
            ) -> None:
    """Move the staged files into ``out``: all of them, or (on any failure) none.

    Earlier files that are replaced or removed are first moved to a hidden backup folder
    inside ``out``; if anything fails they are moved back, so the previous set stays
    complete. Only files the verified record of the previous run names are replaced (with GDAL's
    .aux.xml/.ovr sidecars beside them).
    """
    new = _files_under(stage)
    if RECORD in new:
        raise OutputError(f"{out}: a stage tried to write {RECORD}, which is reserved.")
    previous = verified_record(out, parameter) if out.is_dir() else None
    old: dict[str, dict] = dict(previous["files"]) if previous else {}
    previous_text = (out / RECORD).read_bytes() if previous else None
    conflicts = [name for name in new if ((out / name).exists() or (out / name).is_symlink()) and name not in old]
    if conflicts:
        raise OutputError(f"{out}: already holds {', '.join(conflicts[:3])}, which LST Fusion did not write; "
                          "nothing was changed. Move those files away or choose another folder.")
    written = digests(stage, new)
    kept = {n: d for n, d in old.items() if n not in written and (out / n).exists()} if keep_previous else {}
    displaced = [n for n in sorted(old) if n not in kept and ((out / n).exists() or (out / n).is_symlink())]
    # GDAL's statistics and overviews of a file that goes describe nothing any more: they go with it.
    displaced += [side for n in displaced for side in (f"{n}.aux.xml", f"{n}.ovr")
                  if side not in old and side not in written and (out / side).is_file()]
    out.mkdir(parents=True, exist_ok=True)
    backup = temporary_name(out / "previous")
    moved: list[str] = []
    placed: list[str] = []
    current = out / RECORD
    try:
        if displaced:
            # The journal: were this process killed now, the next run points the user at the backup.
            write_record(out, algorithm, old, complete=False, extra={"interrupted_commit": backup.name})
            backup.mkdir()
            for name in displaced:
                current = out / name
                _move(current, backup / name)
                moved.append(name)
        for name in new:
            current = out / name
            _move(stage / name, current)
            placed.append(name)
        current = out / RECORD
        write_record(out, algorithm, {**kept, **written}, complete=not keep_previous)
    except BaseException as exc:
        lost = _roll_back(stage, out, backup, placed, moved, previous_text)
        if lost:
            outcome = (f"The previous output could not all be put back: {', '.join(lost[:3])} "
                       f"{'is' if len(lost) == 1 else 'are'} in {backup}.")
        else:
            outcome = f"Nothing was changed: the previous output in {out} is complete, as it was."
        if isinstance(exc, OSError):
            raise OutputError(describe_write_failure(current, exc, outcome)) from exc
        if isinstance(exc, LSTFusionError):
            exc.args = (f"{exc} {outcome}",)
        raise
    remove_path(backup)
    for name in displaced:
        if name not in written:
            _prune_empty_parents(out / name, out)


def _restore_record(out: Path, text: bytes) -> None:
    tmp = temporary_name(out / RECORD)
    try:
        tmp.write_bytes(text)
        os.replace(tmp, out / RECORD)
    finally:
        tmp.unlink(missing_ok=True)


def _roll_back(stage: Path, out: Path, backup: Path, placed: list[str], moved: list[str],
               previous: bytes | None) -> list[str]:
    """Undo a failed commit; returns the earlier files that could not be put back."""
    lost = []
    for name in reversed(placed):  # plain renames back to where each file just came from
        with contextlib.suppress(OSError):
            os.replace(out / name, stage / name)
    for name in reversed(moved):
        try:
            os.replace(backup / name, out / name)
        except OSError:
            lost.append(name)
    with contextlib.suppress(OSError):
        if previous is not None:
            _restore_record(out, previous)
        elif not lost:
            (out / RECORD).unlink(missing_ok=True)
    if not lost:
        remove_path(backup)
    return lost



@contextlib.contextmanager
def output_folder(
    path: str | os.PathLike,
    algorithm: str,
    inputs: Iterable[str | os.PathLike | None] = (),
    parameter: str = "OUTPUT_FOLDER",
    commit: FolderCommit | None = None,
) -> Iterator[Path]:
    """Yield a staging folder for ``algorithm``'s outputs; on success move them into ``path``.

    The checks of :func:`check_output_folder` run first. On failure, cancellation or a
    signal the staging folder is removed and ``path`` is left exactly as it was.
    """
    commit = commit or FolderCommit()
    out = check_output_folder(path, algorithm, inputs, parameter)
    make_parent(out)
    remove_stale(out)
    stage = temporary_name(out)
    with stop_on_signals(), write_errors(out):
        try:
            stage.mkdir()
            yield stage
            raise_if_signalled()
            _commit(stage, out, algorithm, commit.keep_previous, parameter)
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
