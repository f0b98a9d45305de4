#!/usr/bin/env python3
"""Assemble the installable plugin folder: metadata, the QGIS glue, backend and models.

``stage``   build/plugins/lst_fusion_plugin/ made of symlinks to the sources (edits show
            at once; QGIS_PLUGINPATH=build/plugins), plus venv_path.txt naming .venv.
``package`` dist/lst_fusion_plugin.zip with real files, for "Install from ZIP".
``deploy``  copy the packaged plugin into a QGIS profile's python/plugins folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
NAME = "lst_fusion_plugin"
GLUE = REPO / NAME
EXTRA = ("backend", "models")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "*.part*")


def _entries() -> list[tuple[Path, str]]:
    """(source, name inside the plugin folder) for everything the plugin ships."""
    items = [(REPO / "metadata.txt", "metadata.txt"), (REPO / "LICENSE", "LICENSE")]
    items += [(p, p.name) for p in sorted(GLUE.iterdir()) if p.name != "__pycache__"]
    items += [(REPO / d, d) for d in EXTRA]
    return [(src, name) for src, name in items if src.exists()]


def stage(dest: Path, venv: Path | None) -> Path:
    target = dest / NAME
    if target.exists() or target.is_symlink():
        shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
    target.mkdir(parents=True)
    for src, name in _entries():
        (target / name).symlink_to(src)
    if venv is not None and venv.exists():
        (target / "venv_path.txt").write_text(str(venv.resolve()) + "\n")
    return target


def package(zip_path: Path, publication: dict[str, str] | None = None) -> Path:
    """The zip QGIS installs; ``publication`` (email, repository, tracker, homepage) goes into its
    metadata.txt with the changelog, and when given the metadata must pass the repository's checks."""
    import plugin_metadata

    publication = {k: v for k, v in (publication or {}).items() if v}
    meta = plugin_metadata.packaged((REPO / "metadata.txt").read_text(encoding="utf-8"), publication)
    if publication:
        found = plugin_metadata.problems(plugin_metadata.parse(meta), GLUE, upload=True)
        if found:
            raise SystemExit("Not packaged: " + "; ".join(found))
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = zip_path.with_suffix(".part.zip")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for src, name in _entries():
            if name == "metadata.txt":
                zf.writestr(str(Path(NAME) / name), meta)
                continue
            files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
            for f in files:
                rel = f.relative_to(src) if src.is_dir() else Path()
                if "__pycache__" in rel.parts or f.suffix == ".pyc":
                    continue
                zf.write(f, str(Path(NAME) / name / rel))
    os.replace(tmp, zip_path)
    return zip_path


def deploy(zip_path: Path, profile_dir: Path) -> Path:
    plugins = profile_dir / "python" / "plugins"
    target = plugins / NAME
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        shutil.rmtree(target)
    plugins.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(plugins)
    return target


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("stage", "package", "deploy"))
    parser.add_argument("--dest", type=Path, default=REPO / "build" / "plugins")
    parser.add_argument("--zip", type=Path, default=REPO / "dist" / f"{NAME}.zip")
    parser.add_argument("--venv", type=Path, default=REPO / ".venv")
    for field in ("email", "repository", "tracker", "homepage"):
        parser.add_argument(f"--{field}", default=os.environ.get(field.upper(), ""),
                            help=f"the plugin's {field}, for the plugin repository (env {field.upper()})")
    parser.add_argument(
        "--profile", type=Path,
        default=Path.home() / ".local/share/QGIS/QGIS3/profiles/default",
        help="QGIS profile folder for deploy",
    )
    args = parser.parse_args(argv)
    if args.command == "stage":  # the staged copy only: make test and make demo never touch a QGIS profile
        print(f"staged {stage(args.dest, args.venv)}")
        return 0
    publication = {f: getattr(args, f) for f in ("email", "repository", "tracker", "homepage")}
    if args.command == "package":
        print(f"packaged {package(args.zip, publication)}")
    else:
        zip_path = package(args.zip, publication)
        target = deploy(zip_path, args.profile)
        if args.venv.exists():
            (target / "venv_path.txt").write_text(str(args.venv.resolve()) + "\n")
        print(f"deployed {target} (enable 'LST Fusion' in Plugins > Manage and Install Plugins)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
