"""The 'LST Fusion' Processing provider: the toolbox, modeler and qgis_process see this."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithms import ALGORITHMS
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
        for algorithm in ALGORITHMS:
            self.addAlgorithm(algorithm())
