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
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

INSIDE_QGIS = textwrap.dedent("""
    import json, traceback
    from qgis.core import QgsApplication, QgsDateTimeRange, QgsInterval, QgsProject, QgsUnitTypes
    from qgis.PyQt.QtCore import QTimer
    from qgis.PyQt.QtWidgets import QDockWidget
    from qgis.utils import iface
    import processing

    state = {}

    def run():
        try:
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
            state["layers"] = [l.name() for l in layers]
            QTimer.singleShot(6000, shoot)
        except Exception:
            state["error"] = traceback.format_exc()
            finish()

    def shoot():
        iface.mainWindow().grab().save(PNG)
        finish()

    def finish():
        with open(RESULT, "w") as f:
            json.dump(state, f)
        QgsApplication.exit(0)

    iface.mainWindow().resize(1500, 900)
    QTimer.singleShot(3000, run)
""")


def prepare(root: Path) -> tuple[Path, Path]:
    from backend.preprocess.gapfill import gap_fill_series
    from backend.preprocess.resample import reference_grid, resample_series
    from backend.preprocess.sample_data import SampleSpec, generate_sample_dataset

    spec = SampleSpec(width=300, height=240, n_dates=8, start=dt.date(2020, 5, 1), end=dt.date(2020, 9, 15),
                      cloudiness=0.3, seed=3)
    generate_sample_dataset(root / "sample", spec)
    gap_fill_series([root / "sample"], root / "landsat", sensor="landsat", fill_never_observed=True)
    gap_fill_series([root / "sample"], root / "modis", sensor="modis", fill_never_observed=True)
    resample_series([root / "modis"], root / "modis30", reference_grid(root / "landsat"))
    return root / "landsat", root / "modis30"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "qgis_fused_series_celsius.png")
    args = parser.parse_args()
    if not shutil.which("xvfb-run") or not shutil.which("qgis"):
        print("needs qgis and xvfb-run (make install)", file=sys.stderr)
        return 1
    import build_plugin

    with tempfile.TemporaryDirectory(prefix="lst_screenshot_") as tmp:
        root = Path(tmp)
        fine, coarse = prepare(root)
        profiles = root / "profiles"
        profile = profiles / "profiles" / "default"
        build_plugin.stage(profile / "python" / "plugins", REPO / ".venv")
        (profile / "QGIS").mkdir(parents=True)
        (profile / "QGIS" / "QGIS3.ini").write_text("[PythonPlugins]\nlst_fusion_plugin=true\n")
        params = {"FINE": str(fine), "COARSE": str(coarse), "METHOD": 0, "OUTPUT_UNIT": 1, "LOAD_OUTPUTS": True,
                  "INCLUDE_PAIRED": True, "OUTPUT_FOLDER": str(root / "season_degC")}
        result = root / "result.json"
        script = root / "inside.py"
        script.write_text(f"PARAMS = {params!r}\nPNG = {str(args.out.resolve())!r}\nRESULT = {str(result)!r}\n"
                          + INSIDE_QGIS)
        env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "QGIS_PLUGINPATH",
                                                                  "QGIS_CUSTOM_CONFIG_PATH")}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        run = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1500x900x24", "qgis", "--profiles-path",
                              str(profiles), "--nologo", "--noversioncheck", "--code", str(script)],
                             env=env, capture_output=True, text=True, timeout=600)
        if not result.exists():
            print(run.stdout[-3000:] + run.stderr[-3000:], file=sys.stderr)
            return 1
        state = json.loads(result.read_text())
        if "error" in state:
            print(state["error"], file=sys.stderr)
            return 1
        print(f"{args.out}: QGIS with {len(state['layers'])} fused layers ({state['layers'][0]} …)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
