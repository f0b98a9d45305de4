"""Styles of the plugin's rasters: LST, differences and gap-fill flags.

- LST: "Inferno", a perceptually uniform ramp (lightness rises with temperature, so a
  greyscale print and colour-blind readers keep the order; rainbow ramps such as Turbo
  invent edges), stretched to the 2nd–98th percentile — of the whole set of layers a run
  loads, so that the dates of a series compare by colour. The legend says "LST (K)" or
  "LST (°C)" (the band description) and its labels carry the unit.
- Differences and errors: RdBu reversed, centred on 0 (red: warmer than the reference).
- Gap-fill flags: one labelled colour per flag value, from the backend's flag table.
"""

from __future__ import annotations

from qgis.core import (
    QgsBasicNumericFormat,
    QgsColorRampShader,
    QgsDateTimeRange,
    QgsMapLayer,
    QgsPalettedRasterRenderer,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterLayerTemporalProperties,
    QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
    QgsStyle,
)
from qgis.PyQt.QtCore import QDate, QDateTime, QTime
from qgis.PyQt.QtGui import QColor

LST_RAMP = "Inferno"
ERROR_RAMP = "RdBu"
FLAG_COLOURS = {"observed": "#d9d9d9", "filled in time": "#4393c3", "filled in space": "#f4a582",
                "filled from another date plus MODIS's change": "#5aae61", "nodata": "#000000"}


def _is_raster(layer) -> bool:
    return layer is not None and layer.type() == QgsMapLayer.RasterLayer and layer.isValid()


def _percentiles(layer, symmetric: bool = False) -> tuple[float, float]:
    provider = layer.dataProvider()
    lo, hi = provider.cumulativeCut(1, 0.02, 0.98)
    if symmetric:
        limit = max(abs(lo), abs(hi)) if lo == lo and hi == hi else 1.0
        return -(limit or 1.0), limit or 1.0
    return (lo, hi) if hi > lo else (lo - 0.5, lo + 0.5)


def _pseudocolor(layer, ramp_name: str, lo: float, hi: float, suffix: str, invert: bool, classes: int) -> None:
    shader_fn = QgsColorRampShader(lo, hi)
    shader_fn.setColorRampType(QgsColorRampShader.Interpolated)
    ramp = QgsStyle.defaultStyle().colorRamp(ramp_name)
    if ramp is not None:
        if invert:
            ramp.invert()
        shader_fn.setSourceColorRamp(ramp)
    shader_fn.classifyColorRamp(classes, -1)
    legend = shader_fn.legendSettings()
    legend.setSuffix(suffix)
    legend.setDirection(legend.MinimumToMaximum)  # QGIS draws this one warm at the top, as on a thermometer
    number = QgsBasicNumericFormat()
    number.setNumberDecimalPlaces(1)
    number.setShowTrailingZeros(True)
    legend.setNumericFormat(number)
    shader_fn.setLegendSettings(legend)
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(shader_fn)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
    renderer.setClassificationMin(lo)
    renderer.setClassificationMax(hi)
    layer.setRenderer(renderer)


def apply_lst_style(layer: QgsMapLayer, unit: str = "K", value_range: tuple[float, float] | None = None,
                    classes: int = 11) -> bool:
    """The LST ramp over ``value_range`` (else the layer's 2nd–98th percentile); False if not a raster."""
    if not _is_raster(layer):
        return False
    from backend.io.writers import unit_symbol

    lo, hi = value_range or _percentiles(layer)
    _pseudocolor(layer, LST_RAMP, lo, hi, f" {unit_symbol(unit)}", False, classes)
    layer.setCustomProperty("lst_fusion/unit", unit)
    layer.triggerRepaint()
    return True


def apply_error_style(layer: QgsMapLayer, unit: str = "K", value_range: tuple[float, float] | None = None,
                      classes: int = 11) -> bool:
    """Diverging ramp centred on 0 (blue: too cold, red: too warm) over ± a limit; differences are in K (= °C)."""
    if not _is_raster(layer):
        return False
    if value_range is None:
        value_range = _percentiles(layer, symmetric=True)
    limit = max(abs(value_range[0]), abs(value_range[1])) or 1.0
    _pseudocolor(layer, ERROR_RAMP, -limit, limit, " K", True, classes)
    layer.setCustomProperty("lst_fusion/unit", "K")
    layer.triggerRepaint()
    return True


def apply_flag_style(layer: QgsMapLayer, unit: str = "", value_range=None) -> bool:
    """One labelled colour per gap-fill flag (observed, filled in time / in space / from MODIS, nodata)."""
    if not _is_raster(layer):
        return False
    from backend.io.fill_flags import FLAG_MEANING

    classes = [QgsPalettedRasterRenderer.Class(value, QColor(FLAG_COLOURS.get(meaning, "#ff00ff")), meaning)
               for value, meaning in FLAG_MEANING.items()]
    layer.setRenderer(QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes))
    layer.triggerRepaint()
    return True


STYLES = {"lst": apply_lst_style, "error": apply_error_style, "flags": apply_flag_style}


class LSTStyler(QgsProcessingLayerPostProcessorInterface):
    """Styles an output layer when Processing loads it into the project."""

    _alive: list[LSTStyler] = []  # Processing keeps no reference; we must.

    def __init__(self, unit: str = "K", name: str | None = None, date: str | None = None, style: str = "lst",
                 value_range: tuple[float, float] | None = None):
        super().__init__()
        self.unit = unit
        self.name = name
        self.date = date
        self.style = style
        self.value_range = value_range

    @classmethod
    def create(cls, unit: str = "K", name: str | None = None, date: str | None = None,
               style: str = "lst", value_range: tuple[float, float] | None = None) -> LSTStyler:
        styler = cls(unit, name, date, style, value_range)
        cls._alive = cls._alive[-500:] + [styler]
        return styler

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        STYLES[self.style](layer, self.unit, self.value_range)
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
