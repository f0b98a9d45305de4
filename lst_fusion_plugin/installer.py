"""Install the Python packages the plugin needs, with the Python that runs QGIS, into the QGIS profile.

Most users install the plugin from a zip and never open a terminal, so, as Deepness does for
its ONNX runtime, the plugin offers to install what is missing: ``pip install --target`` into
``<profile>/python/lst_fusion_packages-pyXY`` (one folder per Python version: compiled wheels
are built for one), pinned to the versions in ``requirements/``, torch from PyTorch's CPU
index. Nothing goes into QGIS's own Python. On every start the folder is put on ``sys.path``
(after a virtual environment, which takes precedence: see dependencies.py).

numpy is never taken from the folder: QGIS's GDAL bindings are built against the numpy QGIS
ships, so pip is pinned to that version and the copy pip puts into the folder is removed.

This module runs without QGIS too — the command headless users are shown is

    <python> <plugin>/installer.py [--group fusion] [--group training] [--target DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(os.path.abspath(__file__)).parent
REQUIREMENTS = HERE / "requirements"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
GROUPS = {"fusion": "fusion with STARFM/ESTARFM and trained models, Dask",
          "training": "training deep models (torch, CPU build) and ONNX export",
          "acquire": "downloading MODIS and Landsat LST from STAC archives"}
TARGET_ENV = "LST_FUSION_PACKAGES"  # where to install / look, outside QGIS or to override the profile folder


class InstallError(RuntimeError):
    """pip could not install the packages; the message says why and what to do."""


def requirements(group: str) -> list[str]:
    """The pinned requirements of ``group`` (requirements/<group>.txt, comments and blanks left out)."""
    lines = (REQUIREMENTS / f"{group}.txt").read_text().splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def module_of(requirement: str) -> str:
    """The module a requirement provides ('dask[distributed]==…' -> 'distributed')."""
    name = requirement.split(";")[0]
    for sep in ("==", ">=", "<=", "<", ">", "~=", "!="):
        name = name.split(sep)[0]
    name = name.strip()
    if "[" in name:
        extra = name.split("[", 1)[1].rstrip("]")
        return extra if extra == "distributed" else name.split("[")[0]
    return name.replace("-", "_")


def missing(groups: list[str]) -> list[str]:
    """The requirements of ``groups`` whose module cannot be imported here."""
    import importlib.util

    return [r for g in groups for r in requirements(g) if importlib.util.find_spec(module_of(r)) is None]


def folder_name() -> str:
    return f"lst_fusion_packages-py{sys.version_info.major}{sys.version_info.minor}"


def default_target() -> Path:
    """``$LST_FUSION_PACKAGES``, else the folder in the active QGIS profile (QGIS must be running)."""
    if os.environ.get(TARGET_ENV):
        return Path(os.environ[TARGET_ENV])
    from qgis.core import QgsApplication

    return Path(QgsApplication.qgisSettingsDirPath()) / "python" / folder_name()


def _same_python(candidate: str) -> bool:
    """Whether ``candidate`` is this Python (same installation and version), not another one on PATH."""
    try:
        run = subprocess.run([candidate, "-c", "import sys; print(sys.base_prefix); print(sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    lines = run.stdout.splitlines()
    return run.returncode == 0 and lines == [sys.base_prefix, str(sys.version_info[:2])]


def qgis_python() -> str:
    """The interpreter of the Python that runs QGIS (``sys.executable`` is often QGIS itself, or whatever
    ``python3`` comes first on PATH), checked to be the same installation and version."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [sys.executable] if Path(sys.executable).name.lower().startswith("python") else []
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix, sys.exec_prefix)):
        candidates += [str(Path(prefix) / "bin" / f"python{version}"), str(Path(prefix) / "bin" / "python3"),
                       str(Path(prefix) / "python3.exe"), str(Path(prefix) / "python.exe")]
    candidates += [c for c in (shutil.which(f"python{version}"), shutil.which("python3")) if c]
    for candidate in dict.fromkeys(candidates):
        if Path(candidate).is_file() and _same_python(candidate):
            return candidate
    raise InstallError(f"The Python that runs QGIS ({version}, {sys.base_prefix}) was not found; install the "
                       "packages by hand (see the README).")


def pip_commands(groups: list[str], target: Path, python: str | None = None,
                 torch_index: str | None = TORCH_CPU_INDEX, only: list[str] | None = None) -> list[list[str]]:
    """The pip runs that install ``groups`` (``only`` these of their requirements) into ``target``: one
    per group, torch's with PyTorch's CPU index."""
    python = python or qgis_python()
    try:
        import numpy

        pins = [f"numpy=={numpy.__version__}"]  # what QGIS's GDAL was built against
    except ImportError:
        pins = []
    runs = []
    for group in groups:
        wanted = [r for r in requirements(group) if only is None or r in only]
        if not wanted:
            continue
        cmd = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--upgrade",
               "--target", str(target), "--no-warn-script-location", *wanted, *pins]
        if group == "training" and torch_index:
            cmd += ["--extra-index-url", torch_index]
        runs.append(cmd)
    return runs


def _explain(log: str, returncode: int) -> str:
    tail = "\n".join(log.strip().splitlines()[-8:])
    lowered = log.lower()
    if "no module named pip" in lowered:
        why = ("this Python has no pip. On Debian/Ubuntu: sudo apt-get install python3-pip; elsewhere QGIS's own "
               "installer ships pip (OSGeo4W: the python3-pip package).")
    elif any(s in lowered for s in ("failed to establish a new connection", "temporary failure in name resolution",
                                    "connectionerror", "network is unreachable", "read timed out",
                                    "no matching distribution found", "could not find a version")):
        why = ("the package index could not be reached or does not offer these versions: check the network (or "
               "the proxy in pip's configuration) and try again.")
    else:
        why = f"pip stopped with exit status {returncode}."
    return f"Installing the packages failed: {why}\nThe end of pip's log:\n{tail}"


def install(groups: list[str], target: Path | None = None, on_line: Callable[[str], None] = print,
            python: str | None = None, torch_index: str | None = TORCH_CPU_INDEX,
            is_cancelled: Callable[[], bool] = lambda: False, only_missing: bool = True) -> Path:
    """Run pip for ``groups`` (only what cannot be imported yet, unless ``only_missing`` is False) into
    ``target``, streaming its output to ``on_line``; return ``target``.

    Raises InstallError with the reason (no pip, no network, a failed build) and pip's last lines.
    """
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise InstallError(f"Unknown package group(s) {', '.join(unknown)}: choose from {', '.join(GROUPS)}.")
    target = Path(target or default_target())
    target.mkdir(parents=True, exist_ok=True)
    only = missing(groups) if only_missing else None
    if only == []:
        on_line("Every package of " + ", ".join(groups) + " is already installed.")
        return target
    existing = _numpy_entries(target)  # a folder someone else filled keeps its own numpy
    for cmd in pip_commands(groups, target, python, torch_index, only):
        on_line("$ " + " ".join(cmd))
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        log = []
        assert proc.stdout is not None
        for line in proc.stdout:
            log.append(line)
            on_line(line.rstrip())
            if is_cancelled():
                proc.terminate()
                proc.wait()
                raise InstallError("Installation cancelled; run it again to finish (pip resumes where it can).")
        if proc.wait() != 0:
            raise InstallError(_explain("".join(log), proc.returncode))
    for path in _numpy_entries(target) - existing:
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    on_line(f"Installed into {target}. Restart QGIS to use them.")
    return target


def _numpy_entries(target: Path) -> set[Path]:
    """numpy's files in ``target``: those pip adds as a dependency are removed after the install, so that
    QGIS's own numpy (GDAL is built against it) stays the one imported."""
    patterns = ("numpy", "numpy-*.dist-info", "numpy.libs", "bin/f2py*")
    return {path for pattern in patterns for path in target.glob(pattern)}


def command_line(groups: list[str], target: Path | None = None) -> str:
    """The one command a headless user runs to install ``groups``."""
    python = qgis_python()
    where = f" --target {_quote(str(target))}" if target else ""
    return f"{_quote(python)} {_quote(str(HERE / 'installer.py'))}" + "".join(f" --group {g}" for g in groups) + where


def _quote(text: str) -> str:
    return f'"{text}"' if any(c in text for c in " '()") else text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Install LST Fusion's Python packages for QGIS.")
    parser.add_argument("--group", action="append", choices=sorted(GROUPS),
                        help="package group (repeatable; default: fusion and training)")
    parser.add_argument("--target", type=Path, help=f"folder to install into (default: ${TARGET_ENV}, or "
                        "python/<lst_fusion_packages-pyXY> in the default QGIS profile)")
    parser.add_argument("--torch-index", default=TORCH_CPU_INDEX,
                        help="extra package index for torch (default: PyTorch's CPU builds; '' for PyPI's)")
    args = parser.parse_args(argv)
    target = args.target or (Path(os.environ[TARGET_ENV]) if os.environ.get(TARGET_ENV) else _default_profile())
    try:
        install(args.group or list(GROUPS), target, torch_index=args.torch_index or None)
    except InstallError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def _default_profile() -> Path:
    """The default QGIS profile's folder, found the way QGIS finds it, without starting QGIS."""
    if os.environ.get("QGIS_CUSTOM_CONFIG_PATH"):
        base = Path(os.environ["QGIS_CUSTOM_CONFIG_PATH"])
    elif sys.platform.startswith("win"):
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "QGIS" / "QGIS3"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support" / "QGIS" / "QGIS3"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "QGIS" / "QGIS3"
    return base / "profiles" / "default" / "python" / folder_name()


if __name__ == "__main__":
    sys.exit(main())
