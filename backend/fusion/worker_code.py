"""LST Fusion's own code, shipped to Dask workers that do not have it.

Workers started as the Dask docs say (``dask scheduler``, ``dask worker ADDRESS``) run in
a Python that has numpy and rasterio but not this plugin. The client therefore registers
:class:`ShipCode`, a worker plugin carrying ``backend/`` and ``models/`` as a zip: every
worker, and every worker that joins later (a restarted one), unpacks it into its local
folder and puts it first on ``sys.path``; :class:`ShipCodeToScheduler` does the same on the
scheduler, which unpickles the task graph. This module is pickled *by value* (it must load
on a worker before our code is there), so it imports nothing of ours at module level.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import zipfile
from pathlib import Path

from distributed import SchedulerPlugin, WorkerPlugin

PACKAGES = ("backend", "models")
SKIP_SUFFIXES = (".pyc", ".nbi", ".nbc", ".onnx")


def code_archive(root: Path) -> bytes:
    """A zip of the Python sources of :data:`PACKAGES` under ``root`` (no caches, no weights)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for package in PACKAGES:
            for path in sorted((root / package).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix not in SKIP_SUFFIXES:
                    archive.write(path, path.relative_to(root).as_posix())
    return buffer.getvalue()


def install(directory: str, archive: bytes, version: str, digest: str) -> None:
    """Unpack ``archive`` under ``directory`` and import our code from there, unless this Python already
    has LST Fusion ``version`` (its own, or this very archive)."""
    import importlib

    try:
        import backend

        if getattr(backend, "__version__", None) == version and getattr(backend, "SHIPPED", "") in ("", digest):
            return
    except ImportError:
        pass
    target = os.path.join(directory, f"lst_fusion_code_{digest[:12]}")
    if not os.path.isdir(target):
        partial = f"{target}.{os.getpid()}.part"
        with zipfile.ZipFile(io.BytesIO(archive)) as unpacked:
            unpacked.extractall(partial)
        try:
            os.replace(partial, target)
        except OSError:  # another process of this worker unpacked the same archive first
            if not os.path.isdir(target):
                raise
            shutil.rmtree(partial, ignore_errors=True)  # our own unpacked copy, not needed
    for name in [m for m in sys.modules if m.split(".")[0] in PACKAGES]:
        del sys.modules[name]  # another version imported before: load ours instead
    sys.path.insert(0, target)
    importlib.invalidate_caches()
    import backend

    backend.SHIPPED = digest


class ShipCode(WorkerPlugin):
    """Our code on every worker, present and future."""

    name = "lst-fusion-code"

    def __init__(self, archive: bytes, version: str, digest: str):
        self.archive, self.version, self.digest = archive, version, digest

    def setup(self, worker) -> None:
        install(worker.local_directory, self.archive, self.version, self.digest)


class ShipCodeToScheduler(SchedulerPlugin):
    """Our code on the scheduler too: it unpickles the task graph, which names our functions."""

    name = "lst-fusion-code-scheduler"

    def __init__(self, archive: bytes, version: str, digest: str):
        self.archive, self.version, self.digest = archive, version, digest

    async def start(self, scheduler) -> None:
        install(scheduler.local_directory, self.archive, self.version, self.digest)


def probe(modules: tuple[str, ...]) -> dict:
    """On a worker: LST Fusion's version there and the modules it cannot import."""
    import importlib

    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - any failure to import is what the user must hear
            missing.append(f"{name} ({type(exc).__name__}: {exc})")
    try:
        import backend

        version = getattr(backend, "__version__", None)
    except ImportError:
        version = None
    return {"version": version, "missing": missing, "python": sys.version.split()[0]}
