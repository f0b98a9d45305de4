"""The 'LST Fusion' Processing provider: the toolbox, modeler and qgis_process see this."""

from __future__ import annotations

from qgis.core import QgsApplication, QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithms import ALGORITHMS
from .algorithms.base import pam_off_for_process
from .dependencies import PLUGIN_DIR, plugin_version

ICON = PLUGIN_DIR / "icons" / "lst_fusion.svg"


class LSTFusionProvider(QgsProcessingProvider):
    def id(self) -> str:
        return "lst_fusion"

    def name(self) -> str:
        return "LST Fusion"

    def longName(self) -> str:  # noqa: N802
        return f"LST Fusion {plugin_version()} — MODIS/Landsat land surface temperature fusion"

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def svgIconPath(self) -> str:  # noqa: N802
        return str(ICON)

    def loadAlgorithms(self) -> None:  # noqa: N802
        if QgsApplication.platform() == "qgis_process":
            pam_off_for_process()  # no .aux.xml beside the inputs it opens (algorithms/base.py)
        for algorithm in ALGORITHMS:
            self.addAlgorithm(algorithm())
