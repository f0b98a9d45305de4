"""Make the backend's Python packages importable inside QGIS, and say clearly what is missing.

QGIS runs its own Python, not the project's virtual environment, so on load the plugin adds,
in this order of precedence:

1. the site-packages of a venv it is told about: the ``LST_FUSION_VENV`` environment
   variable, the plugin setting ``lst_fusion/venv_path``, or the ``venv_path.txt`` that
   ``make stage``/``make deploy`` write;
2. the packages folder its installer fills in the QGIS profile (installer.py);
3. QGIS's own Python.

It also puts its own folder on ``sys.path`` so the bundled ``backend`` and ``models`` import.
"""

from __future__ import annotations

import importlib.util
import os
import site
import sys
from pathlib import Path

from . import installer

# Not resolved: a staged plugin is a folder of symlinks, and its own folder is what counts.
PLUGIN_DIR = Path(os.path.abspath(__file__)).parent
SETTINGS_KEY = "lst_fusion/venv_path"
ENV_VAR = "LST_FUSION_VENV"

# module -> (pip requirement, Debian package or "", what needs it). QGIS ships numpy; rasterio
# must use QGIS's GDAL, so it comes from the system's packages, not from pip.
REQUIRED = {
    "numpy": ("numpy", "python3-numpy", "every stage"),
    "rasterio": ("rasterio", "python3-rasterio", "every stage"),
    "scipy": ("scipy", "python3-scipy", "gap-filling, ESTARFM and the LST options"),
}
# What the installer can add, from its pinned lists (requirements/<group>.txt).
OPTIONAL = {installer.module_of(req): (req, "", what) for group, what in installer.GROUPS.items()
            for req in installer.requirements(group)}


def plugin_version() -> str:
    """The version in metadata.txt (inside the installed plugin, or at the source root)."""
    for meta in (PLUGIN_DIR / "metadata.txt", PLUGIN_DIR.parent / "metadata.txt"):
        if meta.exists():
            for line in meta.read_text().splitlines():
                if line.startswith("version="):
                    return line.split("=", 1)[1].strip()
    return "unknown"


def _site_packages(venv: Path) -> list[Path]:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return [p for p in (venv / "lib" / version / "site-packages",) if p.is_dir()]


def venv_candidates(setting: str | None = None) -> list[Path]:
    """Venv folders to use, most specific first."""
    found = []
    if os.environ.get(ENV_VAR):
        found += [Path(p) for p in os.environ[ENV_VAR].split(os.pathsep) if p]
    if setting:
        found.append(Path(setting))
    marker = PLUGIN_DIR / "venv_path.txt"
    if marker.exists():
        found.append(Path(marker.read_text().strip()))
    return found


def add_paths(setting: str | None = None) -> list[Path]:
    """Put the bundled packages and the venv's site-packages on ``sys.path``; return what was added."""
    added = []
    if (PLUGIN_DIR / "backend").is_dir() and str(PLUGIN_DIR) not in sys.path:
        sys.path.insert(0, str(PLUGIN_DIR))
        added.append(PLUGIN_DIR)
    for venv in venv_candidates(setting):
        for sp in _site_packages(venv):
            if str(sp) not in sys.path:
                # Ahead of the system's packages, as inside the venv itself; the venv holds
                # no numpy or GDAL (make install keeps Debian's), so QGIS keeps its own.
                before = list(sys.path)
                site.addsitedir(str(sp))
                sys.path[:] = [p for p in sys.path if p not in before] + before
                added.append(sp)
    folder = add_packages_folder(setting)
    return added + ([folder] if folder else [])


def missing(modules: dict[str, tuple[str, str]]) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def packages_folder() -> Path | None:
    """The installer's folder in the active QGIS profile (or ``$LST_FUSION_PACKAGES``), if QGIS is up."""
    try:
        return installer.default_target()
    except ImportError:
        return None


def add_packages_folder(setting: str | None = None) -> Path | None:
    """Put the installer's folder on ``sys.path``, after any venv (which takes precedence), before QGIS's own."""
    folder = packages_folder()
    if folder is None or not folder.is_dir() or str(folder) in sys.path:
        return None
    venv_paths = {str(sp) for venv in venv_candidates(setting) for sp in _site_packages(venv)}
    after = [i for i, entry in enumerate(sys.path) if entry in venv_paths or entry == str(PLUGIN_DIR)]
    sys.path.insert(max(after) + 1 if after else 0, str(folder))
    importlib.invalidate_caches()
    return folder


def installable(mods: list[str]) -> list[str]:
    """The installer's groups that hold ``mods``."""
    return [g for g in installer.GROUPS if any(OPTIONAL.get(m, ("",))[0] in installer.requirements(g) for m in mods)]


def install_hint(mods: list[str], table: dict[str, tuple[str, str, str]]) -> str:
    """What each missing package is for, and the one command that installs it (never a prompt: this is
    what headless runs print)."""
    lines = [f"- {m} (for {table[m][2]})" for m in mods]
    apt = " ".join(table[m][1] for m in mods if table[m][1])
    groups = installable([m for m in mods if not table[m][1]])
    if groups:
        try:
            command = installer.command_line(groups, packages_folder())
        except installer.InstallError as exc:
            command = str(exc)
        lines.append(f"Install with: {command}")
        lines.append("(in QGIS: Plugins ▸ LST Fusion ▸ Install Python packages… does the same, with a log)")
    if apt:
        lines.append(f"Install with: sudo apt-get install {apt}  (Debian/Ubuntu; keeps QGIS's own GDAL)")
    lines.append(
        "Or run 'make install' in the LST Fusion source folder, which builds a virtual "
        f"environment the plugin finds; another one can be named in the {ENV_VAR} "
        f"variable or the plugin setting {SETTINGS_KEY}. Restart QGIS afterwards."
    )
    return "\n".join(lines)


def check_backend_import() -> None:
    """Fail clearly if another plugin's top-level ``backend`` shadows ours."""
    mod = sys.modules.get("backend")
    if mod is not None and not getattr(mod, "LST_FUSION", False):
        raise ImportError(
            f"Another Python package named 'backend' is loaded ({getattr(mod, '__file__', '?')}); "
            "it hides LST Fusion's. Disable the plugin that provides it."
        )


def backend_problem() -> str | None:
    """None when the backend can run, else a message naming what to install."""
    gone = missing(REQUIRED)
    if gone:
        return "LST Fusion cannot run: missing Python packages.\n" + install_hint(gone, REQUIRED)
    try:
        check_backend_import()
    except ImportError as exc:
        return str(exc)
    return None
