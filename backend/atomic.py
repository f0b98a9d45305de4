"""Write outputs under a temporary name and rename on success, so nothing partial is left."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path


def _remove(path: Path) -> None:
    """Remove a file or folder and any GDAL sidecar left next to it."""
    for p in (path, Path(str(path) + ".aux.xml"), Path(str(path) + ".ovr")):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``final``; move it into place only if the block succeeds.

    The temporary lives in the same folder so the rename is atomic on one file system.
    On any exception (cancellation included) the temporary is deleted and ``final`` is
    left as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    # A fresh name, not a file made by mkstemp, so GDAL creates it with the user's umask.
    tmp = final.with_name(f".{final.stem}.{uuid.uuid4().hex[:8]}.part{final.suffix}")
    if directory:
        tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    if directory and final.is_dir():
        shutil.rmtree(final)
    else:
        _remove(final)
    os.replace(tmp, final)
    with contextlib.suppress(FileNotFoundError):
        Path(str(tmp) + ".aux.xml").unlink()
