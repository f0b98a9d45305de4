"""Temporary names, atomic renames, write-error translation and signal handling for every write.

Each output is first written under a hidden temporary name beside its destination (same
file system, so the final rename is atomic). The name records the host and process that
made it: the temporary is removed when the block fails, is cancelled, or is stopped by
SIGINT/SIGTERM/SIGHUP, and one left behind by a killed process is removed by the next run
of the same output. Failed writes (disk full, file-size limit, permissions) become
:class:`OutputError` naming the path, never a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path

from ..errors import Interrupted, LSTFusionError, OutputError

TMP_TAG = "lstf"
_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
_lock = threading.Lock()
_depth = 0
_previous: dict[int, object] = {}
# Signals received while a run writes. The handler's exception can be swallowed on its way out (it is
# raised wherever the main thread happens to be, a broad ``except`` included), so each commit and every
# progress check asks again: a signalled run never renames its output.
_received: list[int] = []
_destination: ContextVar[Path | None] = ContextVar("lst_fusion_destination", default=None)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"


def temporary_name(final: Path) -> Path:
    """A hidden sibling of ``final`` that says which host and process are writing it."""
    token = f"{TMP_TAG}-{_host()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    return final.with_name(f".{final.name}.{token}.part{final.suffix}")


_TEMPORARY = re.compile(rf"^\..+\.{TMP_TAG}-[A-Za-z0-9]+-\d+-[0-9a-f]+\.part")


def is_temporary(name: str) -> bool:
    """Whether a file name is one of :func:`temporary_name`'s (a write not finished, or a killed one's)."""
    return bool(_TEMPORARY.match(name))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_path(path: Path) -> None:
    """Remove a file or a folder tree made by this package (never follows a link into a folder)."""
    if path.is_symlink() or path.is_file():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def remove_stale(final: Path) -> list[Path]:
    """Remove the temporaries of ``final`` left by processes of this host that no longer run."""
    pattern = re.compile(rf"\.{re.escape(final.name)}\.{TMP_TAG}-([A-Za-z0-9]+)-(\d+)-[0-9a-f]+\.part")
    removed = []
    if not final.parent.is_dir():
        return removed
    host = _host()
    for entry in final.parent.iterdir():
        m = pattern.match(entry.name)
        if m and m.group(1) == host and not _alive(int(m.group(2))):
            remove_path(entry)
            removed.append(entry)
    return removed


def _interrupted(signum: int) -> Interrupted:
    return Interrupted(f"Stopped by {signal.Signals(signum).name}; the partial output was removed.")


def _raise_interrupted(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    _received.append(signum)
    raise _interrupted(signum)


def stop_acknowledged() -> None:
    """Called where a run catches its interruption on purpose to keep what it finished (a series' dates):
    the commits that follow are the run winding down, not a swallowed signal. A new signal counts again."""
    _received.clear()


def raise_if_signalled() -> None:
    """Raise :class:`Interrupted` if a signal came during this run, even if its first raise was swallowed."""
    if _received:
        raise _interrupted(_received[0])


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """While a run writes, SIGINT/SIGTERM/SIGHUP raise :class:`Interrupted` so temporaries are removed.

    Python delivers signals to the main thread only; elsewhere (QGIS runs algorithms in
    worker threads) this does nothing and cancellation goes through the feedback instead.
    """
    global _depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with _lock:
        if _depth == 0:
            _received.clear()
            for sig in _SIGNALS:
                try:
                    _previous[sig] = signal.signal(sig, _raise_interrupted)
                except (ValueError, OSError):
                    pass
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _received.clear()  # a later run outside this one must not see this run's signal
                for sig, handler in _previous.items():
                    with contextlib.suppress(ValueError, OSError, TypeError):
                        signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
                _previous.clear()


def _existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path.cwd()


def is_immutable(path: Path) -> bool:
    """Whether ``path`` carries Linux's immutable or append-only attribute (chattr +i / +a)."""
    try:
        import fcntl
        import struct

        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except (ImportError, OSError):
        return False
    try:
        flags = struct.unpack("l", fcntl.ioctl(fd, 0x80086601, struct.pack("l", 0)))[0]  # FS_IOC_GETFLAGS
    except OSError:
        return False
    finally:
        os.close(fd)
    return bool(flags & (0x10 | 0x20))  # FS_IMMUTABLE_FL | FS_APPEND_FL


def describe_write_failure(path: Path, exc: OSError, outcome: str = "Nothing was written there.") -> str:
    """What went wrong writing ``path``, what the user can do about it, and ``outcome``: what the failure
    left (the default suits a single temporary that was removed)."""
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        with contextlib.suppress(OSError):
            free = shutil.disk_usage(_existing_ancestor(path.parent)).free
            return (f"{path}: the disk is full ({free / 2**20:.1f} MiB free). Free some space or choose a folder "
                    f"on another disk. {outcome}")
        return f"{path}: the disk is full. Free some space or choose another disk. {outcome}"
    if code == errno.EFBIG:
        return (f"{path}: the file system or a size limit refused a file this large. Choose another disk or "
                f"raise the limit. {outcome}")
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        for candidate in (path, path.parent):
            if candidate.exists() and is_immutable(candidate):
                return (f"{candidate}: is immutable (chattr +i), so it cannot be replaced or removed. Remove the "
                        f"attribute (chattr -i) or choose another folder. {outcome}")
        return (f"{path}: no permission to write in {path.parent}. Choose a folder you can write to. "
                f"{outcome}")
    reason = exc.strerror or str(exc)
    return f"{path}: writing failed ({reason}). {outcome}"


@contextlib.contextmanager
def write_errors(final: Path) -> Iterator[None]:
    """Turn operating-system write failures in the block into :class:`OutputError` about ``final``.

    Nested blocks (a file written inside a staged output folder) report the outermost
    destination: the one the user named, not a temporary inside it.
    """
    token = _destination.set(final) if _destination.get() is None else None
    target = _destination.get()
    try:
        yield
    except LSTFusionError:
        raise
    except OSError as exc:
        raise OutputError(describe_write_failure(target, exc)) from exc
    finally:
        if token is not None:
            _destination.reset(token)


def make_parent(final: Path) -> None:
    """Create the folder an output goes into, or say clearly why it cannot be."""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise OutputError(f"{final}: {exc.filename or final.parent} is a file, not a folder. "
                          "Choose an output in a folder.") from exc
    except OSError as exc:
        raise OutputError(describe_write_failure(final, exc)) from exc


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, verify: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield a temporary sibling of the file ``final``; move it into place only if the block succeeds.

    ``verify`` reads the finished temporary back (e.g. every raster block) before the
    rename, so a write error that the library only reported on stderr is still caught.
    On any failure, cancellation or signal the temporary is removed and ``final`` is left
    as it was. Call the output checks of :mod:`backend.io.outputs` first: this never deletes
    a folder, and replaces ``final`` only with a file.
    """
    with atomic_paths([final], verify) as (tmp,):
        yield tmp


def _sidecars(path: Path) -> tuple[Path, Path]:
    return Path(str(path) + ".aux.xml"), Path(str(path) + ".ovr")


@contextlib.contextmanager
def atomic_paths(finals: list[str | os.PathLike], verify: Callable[[Path], None] | None = None
                 ) -> Iterator[list[Path]]:
    """:func:`atomic_path` for files that belong together (a raster and its uncertainty): the block
    writes every temporary, then all of them replace their files, or (on any failure) none does."""
    finals = [Path(f) for f in finals]
    for final in finals:
        make_parent(final)
        remove_stale(final)
    tmps = [temporary_name(final) for final in finals]
    with stop_on_signals(), write_errors(finals[0]):
        try:
            yield tmps
            for tmp in tmps:
                if verify is not None:
                    verify(tmp)
            raise_if_signalled()
            replaced = _replace_all(tmps, finals)
        except BaseException:
            for tmp in tmps:
                remove_path(tmp)
                with contextlib.suppress(FileNotFoundError):
                    _sidecars(tmp)[0].unlink()
            raise
    for tmp, final in zip(tmps, finals):
        stale = _sidecars(final) if final in replaced else ()
        for sidecar in (_sidecars(tmp)[0], *stale):
            # GDAL's statistics of the old file or of the temporary describe nothing now.
            with contextlib.suppress(FileNotFoundError):
                sidecar.unlink()


def _replace_all(tmps: list[Path], finals: list[Path]) -> set[Path]:
    """Rename every temporary onto its final name; if one fails, put every earlier file back."""
    for final in finals:
        if final.is_dir() and not final.is_symlink():
            raise OutputError(f"{final}: is a folder; it was not replaced. Choose a file name.")
    replaced = {final for final in finals if final.exists() or final.is_symlink()}
    if len(finals) == 1:
        os.replace(tmps[0], finals[0])
        return replaced
    backups = {final: temporary_name(final.with_name(final.name + ".previous")) for final in replaced}
    done: list[int] = []
    try:
        for final, backup in backups.items():
            os.replace(final, backup)
        for k, (tmp, final) in enumerate(zip(tmps, finals)):
            os.replace(tmp, final)
            done.append(k)
    except BaseException:
        for k in reversed(done):
            with contextlib.suppress(OSError):
                os.replace(finals[k], tmps[k])
        for final, backup in backups.items():
            if backup.exists():
                with contextlib.suppress(OSError):
                    os.replace(backup, final)
        raise
    for backup in backups.values():
        remove_path(backup)
    return replaced
