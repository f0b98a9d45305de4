#!/usr/bin/env python3
"""A screenshot of an algorithm's dialog in QGIS desktop (under Xvfb): its parameters and its help.

Starts QGIS with the plugin in a throw-away profile, opens the algorithm's Processing dialog as
the toolbox does (the help is the panel beside the parameters) and saves the dialog. The QGIS
version goes into the file name's default, so pictures from several releases sit side by side.

    .venv/bin/python scripts/help_screenshot.py [--algorithm fuse] [--out docs/...png]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

INSIDE_QGIS = textwrap.dedent("""
    from qgis.core import Qgis
    from qgis.PyQt.QtCore import QTimer
    from qgis.utils import iface
    import processing


    def main(out, finish):
        dialog = processing.createAlgorithmDialog(ALGORITHM)
        dialog.resize(1200, 860)
        dialog.show()
        out["qgis"] = Qgis.version()

        def shoot():
            dialog.grab().save(PNG)
            dialog.close()
            finish(out)

        QTimer.singleShot(4000, shoot)
""")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algorithm", default="fuse", help="an LST Fusion algorithm's name (default: fuse)")
    parser.add_argument("--out", type=Path, help="the PNG (default: docs/qgis<version>_<algorithm>_help.png)")
    args = parser.parse_args()
    import build_plugin
    import qgis_desktop
    from qgis.core import Qgis

    if not qgis_desktop.available():
        print("needs qgis and xvfb-run (make install)", file=sys.stderr)
        return 1
    version = "".join(Qgis.QGIS_VERSION.split(".")[:2])
    out = (args.out or REPO / "docs" / f"qgis{version}_{args.algorithm}_help.png").resolve()
    with tempfile.TemporaryDirectory(prefix="lst_help_") as tmp:
        root = Path(tmp)
        profiles = root / "profiles"
        profile = profiles / "profiles" / "default"
        build_plugin.stage(profile / "python" / "plugins", REPO / ".venv")
        qgis_desktop.enable_plugin(profile)
        out.parent.mkdir(parents=True, exist_ok=True)
        state, log = qgis_desktop.run(profiles, INSIDE_QGIS, root, screen="1400x1000", delay_ms=3000, timeout=300,
                                      ALGORITHM=f"lst_fusion:{args.algorithm}", PNG=str(out))
        if state is None or "error" in state or not out.exists():
            print(state["error"] if state and "error" in state else log, file=sys.stderr)
            return 1
        print(f"{out}: the {args.algorithm} dialog in QGIS {state['qgis']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
