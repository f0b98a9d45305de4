#!/usr/bin/env python3
"""A screenshot of QGIS desktop (under Xvfb) with a fused season in °C: legend and Temporal Controller.

Makes a small sample season, gap-fills and resamples it here, then starts QGIS with the plugin
in a throw-away profile; inside QGIS, "Fuse LST time series" runs from the Processing registry
with OUTPUT_UNIT = °C and loads its layers the way the toolbox does (styled, one colour range,
each on its day), the Temporal Controller is opened on the season, and the window is saved.

    .venv/bin/python scripts/desktop_screenshot.py [--out docs/qgis_fused_series_celsius.png]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

INSIDE_QGIS = textwrap.dedent("""
    from qgis.core import QgsDateTimeRange, QgsInterval, QgsProject, QgsUnitTypes
    from qgis.PyQt.QtCore import QTimer
    from qgis.PyQt.QtWidgets import QDockWidget
    from qgis.utils import iface
    import processing

    iface.mainWindow().resize(1500, 900)


    def main(out, finish):
        processing.runAndLoadResults("lst_fusion:fuse_series", PARAMS)
        layers = [l for l in QgsProject.instance().mapLayers().values() if l.name().startswith("LST ")]
        layers.sort(key=lambda l: l.name())
        ranges = [l.temporalProperties().fixedTemporalRange() for l in layers]
        begin = min(r.begin() for r in ranges)
        end = max(r.end() for r in ranges)
        canvas = iface.mapCanvas()
        canvas.setExtent(layers[0].extent())
        for dock in iface.mainWindow().findChildren(QDockWidget):
            if "Temporal" in dock.objectName() or "Temporal" in dock.windowTitle():
                dock.show()
                dock.raise_()
            elif dock.objectName() == "Browser":
                dock.hide()  # room for the layers and their legend
        root = QgsProject.instance().layerTreeRoot()
        for node in root.findLayers():
            node.setExpanded(node.layer() is layers[-1])
        nav = canvas.temporalController()
        nav.setTemporalExtents(QgsDateTimeRange(begin, end))
        nav.setFrameDuration(QgsInterval(1, QgsUnitTypes.TemporalDays))
        nav.setNavigationMode(nav.Animated)
        nav.setCurrentFrameNumber(begin.daysTo(ranges[len(ranges) // 2].begin()))
        canvas.refresh()
        out["layers"] = [l.name() for l in layers]

        def shoot():
            iface.mainWindow().grab().save(PNG)
            finish(out)

        QTimer.singleShot(6000, shoot)
""")


def prepare(root: Path) -> tuple[Path, Path]:
    from backend.preprocess.sample_data import SampleSpec
    from backend.preprocess.sample_season import prepare_sample_season

    spec = SampleSpec(width=300, height=240, n_dates=8, start=dt.date(2020, 5, 1), end=dt.date(2020, 9, 15),
                      cloudiness=0.3, seed=3)
    prepare_sample_season(root, spec)
    return root / "landsat", root / "modis30"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "qgis_fused_series_celsius.png")
    args = parser.parse_args()
    import build_plugin
    import qgis_desktop

    if not qgis_desktop.available():
        print("needs qgis and xvfb-run (make install)", file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory(prefix="lst_screenshot_") as tmp:
        root = Path(tmp)
        fine, coarse = prepare(root)
        profiles = root / "profiles"
        profile = profiles / "profiles" / "default"
        build_plugin.stage(profile / "python" / "plugins", REPO / ".venv")
        qgis_desktop.enable_plugin(profile)
        params = {"FINE": str(fine), "COARSE": str(coarse), "METHOD": 0, "OUTPUT_UNIT": 1, "LOAD_OUTPUTS": True,
                  "INCLUDE_PAIRED": True, "OUTPUT_FOLDER": str(root / "season_degC")}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        state, log = qgis_desktop.run(profiles, INSIDE_QGIS, root, screen="1500x900", delay_ms=3000, timeout=600,
                                      PARAMS=params, PNG=str(args.out.resolve()))
        if state is None or "error" in state:
            print(state["error"] if state else log, file=sys.stderr)
            return 1
        print(f"{args.out}: QGIS with {len(state['layers'])} fused layers ({state['layers'][0]} …)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
