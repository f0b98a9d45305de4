"""Processing algorithm: gap-fill a MODIS or Landsat LST time series."""

from __future__ import annotations

import json

from qgis.core import (
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
)

from .base import (
    LSTAlgorithm,
    add_advanced,
    add_folder_and_files,
    add_series_inputs,
    backend_errors,
    enum_value,
    folder_and_files,
    load_outputs,
    lst_layer_name,
    output_unit,
    output_unit_parameter,
    progress_from,
    series_inputs,
)

SENSORS = [("auto", "All files are one sensor"), ("landsat", "Landsat only"), ("modis", "MODIS only")]
_METHOD_LABELS = {"temporal_then_spatial": "Temporal, then spatial (default)", "temporal": "Temporal only",
                  "spatial": "Spatial only",
                  "modis_guided": "MODIS-guided: nearest clear date + MODIS's change (Landsat; needs GUIDE), "
                                  "then spatial"}
UNITS = [(None, "As stored in the files"), ("K", "Kelvin"), ("C", "Celsius")]
_QUALITY_LABELS = {"refuse": "Stop and name the files (default)",
                   "warn": "Use them without cloud masking (warn in the log)"}


def method_options() -> list[tuple[str, str]]:
    from backend.preprocess.gapfill import METHODS

    return [(value, _METHOD_LABELS.get(value, value)) for value in METHODS]


def missing_quality_options() -> list[tuple[str, str]]:
    from backend.io.series import MISSING_QUALITY

    return [(value, _QUALITY_LABELS[value]) for value in MISSING_QUALITY]


class GapFillAlgorithm(LSTAlgorithm):
    NAME = "gap_fill"
    DISPLAY = "Gap-fill LST time series"
    GROUP = "preprocessing"
    HELP = (
        "Fills cloud and nodata gaps in a time series of one sensor's LST rasters (raw MODIS or "
        "Landsat products, or decoded LST), all on one grid.\n\n"
        "Temporal: linear interpolation between the same pixel's valid observations before and after "
        "the date, when those are at most MAX_GAP_DAYS apart, corrected by how much warmer or cooler "
        "the date is than that interpolation around the gap.\n"
        "Spatial: normalised convolution from the nearest valid pixels (up to MAX_DISTANCE_PX away), "
        "applied to the date's departure from each pixel's mean, so edges such as rivers and roofs "
        "stay sharp and valid pixels are never changed.\n\n"
        "Pixels never observed in the series stay nodata unless FILL_NEVER_OBSERVED is set. A date "
        "with less valid data than MIN_VALID_FRACTION stops the run with its name. Each output "
        "MODIS-guided (for Landsat, with GUIDE = the MODIS series resampled onto the Landsat grid): a "
        "cloudy pixel takes its value on the nearest date it was clear plus the change MODIS saw there "
        "between the two dates, corrected like the temporal fill; it reaches across long gaps and "
        "follows the day's weather, where spatial filling only spreads the surroundings. Use it when "
        "Landsat dates are far apart.\n\n"
        "Each output *_filled.tif has a *_fillflags.tif: 0 observed, 1 filled in time, 2 in space, 3 from "
        "MODIS's change, 255 nodata; "
        "gapfill_report.json gives the fractions per date and the quality file that masked its clouds.\n\n"
        "A MODIS or Landsat product whose QC/QA_PIXEL file is not beside it would keep its clouds as data: "
        "the run stops and names it, unless MISSING_QUALITY says to use it unmasked."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        add_series_inputs(self, "LST series")
        self.addParameter(QgsProcessingParameterEnum("SENSOR", "Sensor", [s[1] for s in SENSORS], defaultValue=0))
        self.addParameter(QgsProcessingParameterEnum("METHOD", "Method", [m[1] for m in method_options()],
                                                     defaultValue=0))
        add_folder_and_files(self, "GUIDE", "MODIS series on the Landsat grid (MODIS-guided method)")
        self.addParameter(QgsProcessingParameterNumber(
            "MAX_GAP_DAYS", "Largest time between the observations bracketing a gap (days)",
            QgsProcessingParameterNumber.Double, 32.0, False, 1.0))
        self.addParameter(QgsProcessingParameterNumber(
            "MAX_DISTANCE_PX", "Largest distance for spatial filling (pixels)",
            QgsProcessingParameterNumber.Double, 100.0, False, 1.0))
        self.addParameter(QgsProcessingParameterBoolean(
            "FILL_NEVER_OBSERVED", "Also fill pixels never observed in the series (spatially)", False))
        self.addParameter(QgsProcessingParameterNumber(
            "MIN_VALID_FRACTION", "Refuse dates with less valid data than (0-1)",
            QgsProcessingParameterNumber.Double, 0.0, False, 0.0, 1.0))
        add_advanced(self, [
            QgsProcessingParameterEnum("UNIT", "Unit of float inputs", [u[1] for u in UNITS], defaultValue=0),
            QgsProcessingParameterEnum("MISSING_QUALITY", "Products without their QA_PIXEL/QC file",
                                       [q[1] for q in missing_quality_options()], defaultValue=0),
        ])
        self.addParameter(output_unit_parameter())
        self.addParameter(QgsProcessingParameterBoolean(
            "LOAD_OUTPUTS", "Open the filled rasters (and their fill flags)", False))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", "Gap-filled series"))
        self.addOutput(QgsProcessingOutputFile("REPORT", "Gap-fill report (JSON)"))
        self.addOutput(QgsProcessingOutputNumber("DATE_COUNT", "Number of dates"))
        self.addOutput(QgsProcessingOutputNumber("FILLED_FRACTION", "Mean fraction of pixels filled"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        with backend_errors():
            from backend.preprocess.gapfill import gap_fill_series

            folder = self.parameterAsString(parameters, "OUTPUT_FOLDER", context)
            report_path = gap_fill_series(
                series_inputs(self, parameters, context), folder,
                method=enum_value(self, parameters, "METHOD", context, method_options()),
                guide=folder_and_files(self, parameters, context, "GUIDE") or None,
                sensor=enum_value(self, parameters, "SENSOR", context, SENSORS),
                max_gap_days=self.parameterAsDouble(parameters, "MAX_GAP_DAYS", context),
                max_distance_px=self.parameterAsDouble(parameters, "MAX_DISTANCE_PX", context),
                fill_never_observed=self.parameterAsBool(parameters, "FILL_NEVER_OBSERVED", context),
                min_valid_fraction=self.parameterAsDouble(parameters, "MIN_VALID_FRACTION", context),
                unit=enum_value(self, parameters, "UNIT", context, UNITS),
                missing_quality=enum_value(self, parameters, "MISSING_QUALITY", context, missing_quality_options()),
                progress=progress_from(feedback),
                out_unit=output_unit(self, parameters, context),
            )
        report = json.loads(report_path.read_text())
        dates = report["dates"]
        if self.parameterAsBool(parameters, "LOAD_OUTPUTS", context):
            unit = report.get("unit", "K")
            load_outputs(context, [report_path.parent / d["output"] for d in dates], "Gap-filled", unit,
                         names=[lst_layer_name(f"{d['date']} gap-filled", unit) for d in dates],
                         dates=[d["date"] for d in dates])
            load_outputs(context, [report_path.parent / d["flags"] for d in dates], "Fill flags",
                         names=[f"Fill flags {d['date']}" for d in dates], dates=[d["date"] for d in dates],
                         style="flags")
        filled = sum(d["temporal_fraction"] + d["spatial_fraction"] + d["guided_fraction"] for d in dates) / len(dates)
        return {"OUTPUT_FOLDER": folder, "REPORT": str(report_path), "DATE_COUNT": len(dates),
                "FILLED_FRACTION": filled}
