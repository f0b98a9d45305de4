"""Processing algorithm: gap-fill a MODIS or Landsat LST time series."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFolderDestination,
)

from .base import (
    LSTAlgorithm,
    add_folder_and_files,
    add_series_inputs,
    backend_errors,
    folder_and_files,
    load_outputs,
    lst_layer_name,
    progress_from,
    series_inputs,
)
from .params import add_parameters, params_from


def _params():
    from backend.preprocess.gapfill import GapFillParams

    return GapFillParams


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
        add_parameters(self, _params())
        add_folder_and_files(self, "GUIDE", "MODIS series on the Landsat grid (MODIS-guided method)")
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
            result = gap_fill_series(series_inputs(self, parameters, context), folder,
                                     params_from(self, _params(), parameters, context),
                                     guide=folder_and_files(self, parameters, context, "GUIDE") or None,
                                     progress=progress_from(feedback))
        if self.parameterAsBool(parameters, "LOAD_OUTPUTS", context):
            dates = [d.date for d in result.dates]
            load_outputs(context, [result.folder / d.output for d in result.dates], "Gap-filled", result.unit,
                         names=[lst_layer_name(f"{d} gap-filled", result.unit) for d in dates], dates=dates)
            load_outputs(context, [result.folder / d.flags for d in result.dates], "Fill flags",
                         names=[f"Fill flags {d}" for d in dates], dates=dates, style="flags")
        return {"OUTPUT_FOLDER": folder, "REPORT": str(result.report), "DATE_COUNT": len(result.dates),
                "FILLED_FRACTION": result.filled_fraction}
