"""Output folders of the stages: never clobber a folder the user did not make with us."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InputError


def prepare_output_folder(path: str | os.PathLike, marker: str) -> Path:
    """Check ``path`` may receive a stage's output folder; return it.

    A new folder, an empty one, or one holding an earlier output of the same stage
    (it has ``marker``) are fine; those are replaced atomically on success. Anything
    else is refused, so a run never deletes files it did not write.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is a file; choose a folder for the output.")
    if out.exists() and any(out.iterdir()) and not (out / marker).exists():
        raise InputError(f"{out}: folder is not empty. Choose an empty or new folder for the output.")
    if out.exists() and not any(out.iterdir()):
        out.rmdir()
    return out
