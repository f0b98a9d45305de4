"""Run Python inside QGIS desktop under Xvfb, in a throw-away profile: what the tests and scripts share.

The code given defines ``main(out, finish)``: it fills the dict ``out`` and calls ``finish(out)``
(at once, or from a timer) to write it to a JSON file and quit QGIS. An exception in ``main``
ends QGIS with ``out["error"]`` holding the traceback. Values given as keyword arguments are
the script's globals.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

WRAPPER = """
import json, traceback
from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QTimer


def _finish(out):
    with open(RESULT, "w") as f:
        json.dump(out, f)
    QgsApplication.exit(0)


def _start():
    out = {}
    try:
        main(out, _finish)
    except Exception:
        out["error"] = traceback.format_exc()
        _finish(out)


QTimer.singleShot(DELAY_MS, _start)
"""


def available() -> bool:
    return bool(shutil.which("xvfb-run") and shutil.which("qgis"))


def enable_plugin(profile: Path) -> None:
    """Mark the plugin enabled in ``profile`` (``<profiles>/profiles/<name>``), as the plugin manager does."""
    ini = profile / "QGIS" / "QGIS3.ini"
    ini.parent.mkdir(parents=True, exist_ok=True)
    ini.write_text("[PythonPlugins]\nlst_fusion_plugin=true\n")


def run(profiles: Path, code: str, work: Path, env: dict[str, str] | None = None, screen: str = "1280x1024",
        delay_ms: int = 2000, timeout: int = 300, **values) -> tuple[dict | None, str]:
    """Start QGIS on ``profiles`` under Xvfb with ``code``; (what ``main`` put in ``out`` or None, QGIS's log)."""
    result = work / "qgis_result.json"
    script = work / "qgis_code.py"
    script.write_text("".join(f"{k} = {v!r}\n" for k, v in {**values, "RESULT": str(result),
                                                             "DELAY_MS": delay_ms}.items()) + code + WRAPPER)
    env = {k: v for k, v in (env or os.environ).items()
           if k not in ("QT_QPA_PLATFORM", "QGIS_PLUGINPATH", "QGIS_CUSTOM_CONFIG_PATH")}
    run_ = subprocess.run(["xvfb-run", "-a", "-s", f"-screen 0 {screen}x24", "qgis", "--profiles-path", str(profiles),
                           "--nologo", "--noversioncheck", "--code", str(script)],
                          env=env, capture_output=True, text=True, timeout=timeout)
    log = run_.stdout[-3000:] + run_.stderr[-3000:]
    return (json.loads(result.read_text()) if result.exists() else None), log
