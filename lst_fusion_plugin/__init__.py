"""QGIS entry point of LST Fusion: only glue; the work is done by ``backend``."""


def classFactory(iface):  # noqa: N802 (QGIS's name)
    from .plugin import LSTFusionPlugin

    return LSTFusionPlugin(iface)
