"""LST styling of raster layers: a continuous thermal ramp stretched to the data."""

from __future__ import annotations

from qgis.core import (
    QgsColorRampShader,
    QgsDateTimeRange,
    QgsMapLayer,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterBandStats,
    QgsRasterLayerTemporalProperties,
    QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
    QgsStyle,
)
from qgis.PyQt.QtCore import QDate, QDateTime, QTime

RAMP_NAMES = ("Turbo", "Spectral")


def _ramp():
    style = QgsStyle.defaultStyle()
    for name in RAMP_NAMES:
        ramp = style.colorRamp(name)
        if ramp is not None:
            if name == "Spectral":
                ramp.invert()  # blue = cool, red = hot
            return ramp
    return None


def apply_lst_style(layer: QgsMapLayer, unit: str = "K", classes: int = 11) -> bool:
    """Pseudocolor the layer's band 1 from its 2nd to 98th percentile; False if not a raster."""
    if layer is None or layer.type() != QgsMapLayer.RasterLayer or not layer.isValid():
        return False
    provider = layer.dataProvider()
    stats = provider.bandStatistics(1, QgsRasterBandStats.Min | QgsRasterBandStats.Max)
    lo, hi = provider.cumulativeCut(1, 0.02, 0.98) if hasattr(provider, "cumulativeCut") else (None, None)
    if lo is None or hi is None or not hi > lo:
        lo, hi = stats.minimumValue, stats.maximumValue
    if not hi > lo:
        hi = lo + 1.0
    shader_fn = QgsColorRampShader(lo, hi)
    shader_fn.setColorRampType(QgsColorRampShader.Interpolated)
    ramp = _ramp()
    if ramp is not None:
        shader_fn.setSourceColorRamp(ramp)
    shader_fn.classifyColorRamp(classes, -1)
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(shader_fn)
    renderer = QgsSingleBandPseudoColorRenderer(provider, 1, shader)
    renderer.setClassificationMin(lo)
    renderer.setClassificationMax(hi)
    layer.setRenderer(renderer)
    layer.setCustomProperty("lst_fusion/unit", unit)
    layer.triggerRepaint()
    return True


def apply_error_style(layer: QgsMapLayer, classes: int = 11) -> bool:
    """Diverging blue-white-red ramp centred on 0 (red: prediction too warm), ± the 98th percentile of |error|."""
    if layer is None or layer.type() != QgsMapLayer.RasterLayer or not layer.isValid():
        return False
    provider = layer.dataProvider()
    lo, hi = provider.cumulativeCut(1, 0.02, 0.98)
    lim = max(abs(lo), abs(hi)) if lo == lo and hi == hi else 1.0
    lim = lim if lim > 0 else 1.0
    shader_fn = QgsColorRampShader(-lim, lim)
    shader_fn.setColorRampType(QgsColorRampShader.Interpolated)
    ramp = QgsStyle.defaultStyle().colorRamp("RdBu")
    if ramp is not None:
        ramp.invert()  # blue = too cold, red = too warm
        shader_fn.setSourceColorRamp(ramp)
    shader_fn.classifyColorRamp(classes, -1)
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(shader_fn)
    renderer = QgsSingleBandPseudoColorRenderer(provider, 1, shader)
    renderer.setClassificationMin(-lim)
    renderer.setClassificationMax(lim)
    layer.setRenderer(renderer)
    layer.setCustomProperty("lst_fusion/unit", "K")
    layer.triggerRepaint()
    return True


STYLES = {"lst": apply_lst_style, "error": lambda layer, unit="K": apply_error_style(layer)}


class LSTStyler(QgsProcessingLayerPostProcessorInterface):
    """Styles an output layer when Processing loads it into the project."""

    _alive: list[LSTStyler] = []  # Processing keeps no reference; we must.

    def __init__(self, unit: str = "K", name: str | None = None, date: str | None = None, style: str = "lst"):
        super().__init__()
        self.unit = unit
        self.name = name
        self.date = date
        self.style = style

    @classmethod
    def create(cls, unit: str = "K", name: str | None = None, date: str | None = None,
               style: str = "lst") -> LSTStyler:
        styler = cls(unit, name, date, style)
        cls._alive = cls._alive[-500:] + [styler]
        return styler

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        STYLES[self.style](layer, self.unit)
        if self.name:
            layer.setName(self.name)
        if self.date:
            set_date(layer, self.date)


def set_date(layer: QgsMapLayer, date: str) -> None:
    """Give a raster layer its acquisition day in QGIS's temporal framework (Temporal Controller)."""
    day = QDate.fromString(date, "yyyy-MM-dd")
    if not day.isValid() or layer.type() != QgsMapLayer.RasterLayer:
        return
    temporal = layer.temporalProperties()
    temporal.setMode(QgsRasterLayerTemporalProperties.ModeFixedTemporalRange)
    temporal.setFixedTemporalRange(QgsDateTimeRange(QDateTime(day, QTime(0, 0)), QDateTime(day, QTime(23, 59, 59))))
    temporal.setIsActive(True)
