#!/usr/bin/env python3
"""Check metadata.txt against what the QGIS plugin repository requires, and write the packaged one.

The repository (plugins.qgis.org) needs name, qgisMinimumVersion, description, about, version,
author, and — to accept an upload — email, repository and tracker. The project does not invent
the last three: metadata.txt leaves them out and ``make package`` adds them when the publisher
gives them (``REPOSITORY=… TRACKER=… EMAIL=…``, see the Makefile); ``--upload`` checks that a
packaged metadata.txt is complete. The changelog comes from CHANGELOG.md, once.

    .venv/bin/python scripts/plugin_metadata.py [metadata.txt] [--upload]
"""

from __future__ import annotations

import argparse
import configparser
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REQUIRED = ("name", "qgisMinimumVersion", "description", "about", "version", "author")
FOR_UPLOAD = ("email", "repository", "tracker")
URL_FIELDS = ("homepage", "repository", "tracker")
PLACEHOLDERS = re.compile(r"example\.(org|com|net)|localhost|todo|fixme|your[_ -]?name|changeme", re.I)
CATEGORIES = {"Raster", "Vector", "Database", "Web", "Mesh", "Analysis", "Plugins"}


def parse(text: str) -> dict[str, str]:
    """The [general] fields of a metadata.txt's text."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys keep their case (qgisMinimumVersion)
    parser.read_string(text)
    return dict(parser["general"])


def read(path: Path) -> dict[str, str]:
    return parse(path.read_text(encoding="utf-8"))


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def changelog_entries(changelog: Path, count: int = 3) -> list[tuple[str, str]]:
    """(version, text) of the newest ``count`` entries of CHANGELOG.md."""
    entries = re.findall(r"^## (\S+)[^\n]*\n(.*?)(?=^## |\Z)", changelog.read_text(encoding="utf-8"), re.M | re.S)
    return [(v, " ".join(body.split())) for v, body in entries[:count]]


def problems(meta: dict[str, str], plugin_dir: Path, upload: bool = False,
             changelog: Path | None = REPO / "CHANGELOG.md") -> list[str]:
    """What keeps ``meta`` from passing the repository's checks (empty when it passes)."""
    return [*_missing(meta, upload), *_malformed(meta), *_qgis_range(meta), *_plugin_fields(meta, plugin_dir),
            *_changelog_problems(meta, changelog)]


def _missing(meta: dict[str, str], upload: bool) -> list[str]:
    return [f"{key} is missing" + (" (the publisher gives it when packaging)" if key in FOR_UPLOAD else "")
            for key in REQUIRED + (FOR_UPLOAD if upload else ()) if not meta.get(key, "").strip()]


def _malformed(meta: dict[str, str]) -> list[str]:
    """Placeholders, and addresses or a version that do not have their form."""
    found = [f"{key} is a placeholder: {value!r}" for key, value in meta.items()
             if PLACEHOLDERS.search(value) and key != "about"]
    found += [f"{key} is not a web address: {meta[key]!r}" for key in URL_FIELDS
              if meta.get(key) and not re.match(r"https?://[\w.-]+\.\w+(/\S*)?$", meta[key])]
    if meta.get("email") and not re.match(r"[^@\s]+@[\w-]+(\.[\w-]+)+$", meta["email"]):
        found.append(f"email is not an address: {meta['email']!r}")
    if not re.match(r"\d+\.\d+(\.\d+)?$", meta.get("version", "")):
        found.append(f"version must be like 1.2.3: {meta.get('version')!r}")
    return found


def _qgis_range(meta: dict[str, str]) -> list[str]:
    low, high = meta.get("qgisMinimumVersion", ""), meta.get("qgisMaximumVersion", "")
    if not high:
        return ["qgisMaximumVersion is missing (4.99: every QGIS 3 and 4)"]
    if low and _version(low) > _version(high):
        return [f"qgisMinimumVersion {low} is above qgisMaximumVersion {high}"]
    return []


def _plugin_fields(meta: dict[str, str], plugin_dir: Path) -> list[str]:
    """The one-line description, the category, the True/False flags and the icon."""
    found = ["description must be one line"] if "\n" in meta.get("description", "") else []
    if meta.get("category") and meta["category"] not in CATEGORIES:
        found.append(f"category {meta['category']!r} is not one of {', '.join(sorted(CATEGORIES))}")
    found += [f"{key} must be True or False" for key in ("experimental", "deprecated", "supportsQt6")
              if meta.get(key, "False") not in ("True", "False")]
    if not meta.get("icon") or not (plugin_dir / meta["icon"]).is_file():
        found.append(f"icon {meta.get('icon')!r} is not a file of the plugin")
    return found


def _changelog_problems(meta: dict[str, str], changelog: Path | None) -> list[str]:
    if changelog is None or not changelog.exists():
        return []
    versions = [v for v, _ in changelog_entries(changelog)]
    if meta.get("version") not in versions[:1]:
        return [f"CHANGELOG.md's newest entry ({versions[:1]}) is not version {meta.get('version')}"]
    return []


def packaged(meta_text: str, publication: dict[str, str], changelog: Path = REPO / "CHANGELOG.md") -> str:
    """metadata.txt for the zip: the source's, plus the publisher's addresses and the changelog."""
    lines = [line for line in meta_text.rstrip("\n").splitlines() if not line.startswith("changelog=")]
    lines += [f"{key}={value}" for key, value in publication.items() if value]
    entries = changelog_entries(changelog)
    if entries:
        lines.append("changelog=" + "\n    ".join(f"{v}: {text}" for v, text in entries))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metadata", type=Path, nargs="?", default=REPO / "metadata.txt")
    parser.add_argument("--upload", action="store_true", help="also require what an upload needs")
    args = parser.parse_args(argv)
    plugin_dir = args.metadata.parent if (args.metadata.parent / "__init__.py").exists() else REPO / "lst_fusion_plugin"
    found = problems(read(args.metadata), plugin_dir, args.upload,
                     None if args.metadata.parent != REPO else REPO / "CHANGELOG.md")
    for line in found:
        print(f"metadata.txt: {line}")
    if not found:
        print(f"{args.metadata}: ready for {'upload' if args.upload else 'packaging'}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
