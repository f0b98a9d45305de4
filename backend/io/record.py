"""The record a folder output keeps of what its run wrote, signed so that it cannot be forged.

A folder output holds :data:`RECORD`. It names, relative to the folder, every file the run
wrote with its size and SHA-256, the folder it was written in, and an HMAC-SHA256 signature
made with a key only this user can read (created on first use, mode 0600). A later run
replaces or removes only files that the record names *and* that are still byte for byte
what was written; a record that is not ours, was edited, or names a path outside the folder
stops the run before anything is touched. A folder moved or copied with its record stays
usable: the record can only name files whose content is exactly what LST Fusion wrote.

Why a signature and not only checksums: anyone who can write into a folder can also write a
record whose checksums match the user's own files there. Only the user's key makes a record.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

from .. import __version__
from ..errors import OutputError
from .atomic import temporary_name

RECORD = "lst_fusion_output.json"
FORMAT = 2
KEY_ENV = "LST_FUSION_KEY_FILE"


def key_path() -> Path:
    """Where this user's record key lives: $LST_FUSION_KEY_FILE, else the XDG config folder."""
    if os.environ.get(KEY_ENV):
        return Path(os.environ[KEY_ENV]).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "lst_fusion" / "output-record.key"


def _key() -> bytes:
    path = key_path()
    with contextlib.suppress(FileNotFoundError):
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = temporary_name(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_hex(32).encode())
        with contextlib.suppress(FileExistsError):  # another run made it first: theirs is the key
            os.link(tmp, path)  # appears whole, never half-written
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes()


def _signature(body: Mapping) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hmac.new(_key(), text.encode(), hashlib.sha256).hexdigest()


def file_digest(path: Path) -> dict:
    """Size and SHA-256 of a file, as a record stores them."""
    with open(path, "rb") as f:
        sha = hashlib.file_digest(f, "sha256").hexdigest()
    return {"size": path.stat().st_size, "sha256": sha}


def safe_name(name: object) -> str | None:
    """``name`` if it is a plain relative path inside a folder ('a/b.tif'), else None."""
    if not isinstance(name, str) or not name or "\\" in name or "\0" in name:
        return None
    pure = PurePosixPath(name)
    if pure.is_absolute() or any(part in ("", ".", "..") for part in name.split("/")) or str(pure) != name:
        return None
    return name if name != RECORD else None


def write_record(folder: Path, algorithm: str, files: Mapping[str, dict], complete: bool = True,
                 pending: Iterable[str] = (), extra: Mapping | None = None) -> None:
    """Write (atomically) the signed record of ``folder``: ``files`` maps names to :func:`file_digest`;
    ``pending`` are names a stage that writes in place (training) may still write."""
    body = {"kind": "lst_fusion_output", "format": FORMAT, "algorithm": algorithm, "version": __version__,
            "written": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "complete": complete,
            "folder": str(folder.resolve()), "files": dict(sorted(files.items())),
            "pending": sorted(set(pending) - set(files)), **(extra or {})}
    for name in [*body["files"], *body["pending"]]:
        if safe_name(name) is None:
            raise OutputError(f"{folder}: refusing to record {name!r}, which is not a file inside the folder.")
    body["signature"] = _signature(body)
    target = folder / RECORD
    tmp = temporary_name(target)
    try:
        tmp.write_text(json.dumps(body, indent=2))
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def read_record(folder: Path) -> dict | None:
    """The record of ``folder`` as written (not verified: see :func:`verified_record`), or None."""
    try:
        record = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("kind") != "lst_fusion_output":
        return None
    return record


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def verified_record(folder: Path, parameter: str = "OUTPUT_FOLDER", check_files: bool = True) -> dict | None:
    """The record of ``folder`` once proven ours and true, or None when the folder has no record.

    Raises :class:`OutputError` (nothing touched) when the record is not LST Fusion's, is
    unsigned or edited, names anything outside the folder, or
    names a file that is no longer what the run wrote. (The folder it was written in is
    kept for information only: a moved folder stays its own.) ``check_files`` off skips the checksums
    (a first look before a long run; the commit checks them again).
    """
    path = folder / RECORD
    if not (path.exists() or path.is_symlink()):
        return None
    where = f"{parameter}: {folder}"
    record = None if path.is_symlink() or not path.is_file() else read_record(folder)
    if record is None:
        raise OutputError(f"{where} holds {RECORD}, which LST Fusion did not write; nothing in the folder was "
                          "touched. Choose another folder, or move that file away yourself.")
    body = {k: v for k, v in record.items() if k != "signature"}
    if record.get("format") != FORMAT or not hmac.compare_digest(str(record.get("signature", "")),
                                                                 _signature(body)):
        raise OutputError(f"{where}: its {RECORD} cannot be verified (written by another user, another computer, "
                          "an earlier version, or edited), so LST Fusion cannot tell which files in it are its own; "
                          "nothing was touched. Choose a new folder.")
    real = folder.resolve()
    files, pending = record.get("files"), record.get("pending", [])
    if not isinstance(files, dict) or not isinstance(pending, list):
        raise OutputError(f"{where}: its {RECORD} is malformed; nothing was touched. Choose a new folder.")
    for name in [*files, *pending]:
        if safe_name(name) is None or not _within((real / name).resolve(), real):
            raise OutputError(f"{where}: its {RECORD} names {name!r}, which is not a file inside the folder; "
                              "nothing was touched. Choose a new folder.")
    if record.get("interrupted_commit"):
        backup = record["interrupted_commit"]
        raise OutputError(f"{where}: an earlier run was stopped while it replaced its files here; the files it "
                          f"was replacing are in {folder / backup}. Put back what you need, remove that folder "
                          f"and {RECORD}, then run again; nothing was touched.")
    if check_files:
        changed = [name for name, digest in files.items() if (real / name).exists() and not _same(real / name, digest)]
        if changed:
            raise OutputError(f"{where}: {', '.join(changed[:3])} changed since LST Fusion wrote "
                              f"{'it' if len(changed) == 1 else 'them'} (edited, or replaced by another file); "
                              "nothing was touched. Move the changed file(s) away or choose a new folder.")
    return record


def _same(path: Path, digest: object) -> bool:
    if path.is_symlink() or not path.is_file() or not isinstance(digest, dict):
        return False
    if path.stat().st_size != digest.get("size"):
        return False
    return file_digest(path)["sha256"] == digest.get("sha256")
