"""Processing algorithm: fuse every MODIS-only date of a season, with any registered method."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterString,
)

from .base import (
    LSTAlgorithm,
    add_folder_and_files,
    backend_errors,
    fine_and_coarse_series,
    load_outputs,
    lst_layer_name,
    progress_from,
)
from .method_params import OPTIONS_HELP, add_method_parameters, method_and_params, methods_help, output_label
from .params import (
    fields_of,
    input_unit,
    input_unit_parameter,
    output_unit,
    output_unit_parameter,
    parameter_for,
    params_from,
)


def _options():
    from backend.fusion.series import SeriesOptions

    return SeriesOptions


def _dates(alg, parameters, name: str, context) -> list | None:
    from backend.parameters import parse_dates

    return parse_dates(name, alg.parameterAsString(parameters, name, context) or "")


class FuseSeriesAlgorithm(LSTAlgorithm):
    NAME = "fuse_series"
    DISPLAY = "Fuse LST time series"
    GROUP = "fusion"
    HELP = (
        "Predicts fine LST on every MODIS date that has no Landsat — a whole season in one run — with "
        "STARFM, ESTARFM or a trained deep model.\n\n"
        "FINE: the Landsat series (decoded or gap-filled); COARSE: the MODIS series on the Landsat grid "
        "(Resample to a reference grid). Dates with both are the reference pairs; each other MODIS date "
        "is predicted from the nearest pair (one-pair methods), the nearest pairs before and after it "
        "(two-pair methods) or every other pair (the season regression). DATES limits the run to the dates "
        "listed; REFERENCE_DATES fixes the "
        "reference pair(s) for every date. The statistics of each pair are computed once.\n\n"
        "Writes lst_YYYYMMDD_METHOD.tif per date (…_degC.tif in Celsius, OUTPUT_UNIT), lst_stack_METHOD.vrt "
        "(one band per date, the date as band description) and fuse_series.json. Loaded layers share one "
        "colour range and carry their date, so the "
        "Temporal Controller animates the season. Cancelling keeps the dates already finished and, in a "
        "folder it wrote before, every earlier date they did not replace.\n\n"
        "SCHEDULER runs the dates as tasks on a Dask cluster (dask.distributed); LST Fusion sends its code to "
        "the workers, a worker that is lost is replaced and its date run again, and a cluster left without "
        "workers stops the run with the finished dates kept.\n\n"
        "ADAPT_MINUTES > 0 first fine-tunes a deep model on the season's own pairs (the dates being predicted "
        "left out) within that many minutes, writes it as adapted_MODEL.onnx beside the dates and fuses with "
        "it (see 'Adapt a model to a season').\n\n"
        + OPTIONS_HELP
    )

    def help_text(self) -> str:
        return f"{self.HELP}\n\n{methods_help()}"

    def initAlgorithm(self, config=None):  # noqa: N802
        add_folder_and_files(self, "FINE", "Fine LST series (Landsat)")
        add_folder_and_files(self, "COARSE", "Coarse LST series (MODIS on the Landsat grid)")
        self.addParameter(QgsProcessingParameterString(
            "DATES", "Dates to predict (YYYY-MM-DD, comma-separated; empty = every MODIS-only date)", "",
            optional=True))
        self.addParameter(QgsProcessingParameterString(
            "REFERENCE_DATES", "Fixed reference dates (empty = the nearest pair(s) for each date)", "",
            optional=True))
        add_method_parameters(self, [
            input_unit_parameter(),
            QgsProcessingParameterString(
                "SCHEDULER", "Dask scheduler address (e.g. tcp://10.0.0.5:8786; empty = this computer; the "
                "output folder must be on storage the workers share)", "", optional=True)])
        for field, info in fields_of(_options()):
            self.addParameter(parameter_for(field, info))
        self.addParameter(QgsProcessingParameterBoolean(
            "INCLUDE_PAIRED", "Also predict the dates that have Landsat, from the other pairs (to validate)",
            False))
        self.addParameter(output_unit_parameter())
        self.addParameter(QgsProcessingParameterBoolean("LOAD_OUTPUTS", "Open the fused rasters", True))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", "Fused series"))
        self.addOutput(QgsProcessingOutputNumber("DATE_COUNT", "Dates fused"))
        self.addOutput(QgsProcessingOutputFile("STACK", "Multi-date stack (VRT)"))
        self.addOutput(QgsProcessingOutputFile("REPORT", "Series report (JSON)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        with backend_errors():
            from backend.fusion.series import fuse_series

            fine, coarse = fine_and_coarse_series(self, parameters, context)
            spec, params = method_and_params(self, parameters, context, feedback)
            folder = self.parameterAsString(parameters, "OUTPUT_FOLDER", context)
            result = fuse_series(spec.name, fine, coarse, folder, params,
                                 dates=_dates(self, parameters, "DATES", context),
                                 reference_dates=_dates(self, parameters, "REFERENCE_DATES", context),
                                 unit=input_unit(self, parameters, context),
                                 scheduler=self.parameterAsString(parameters, "SCHEDULER", context).strip() or None,
                                 include_paired=self.parameterAsBool(parameters, "INCLUDE_PAIRED", context),
                                 progress=progress_from(feedback), out_unit=output_unit(self, parameters, context),
                                 adapt_minutes=params_from(self, _options(), parameters, context).adapt_minutes)
        if self.parameterAsBool(parameters, "LOAD_OUTPUTS", context):
            label, unit = output_label(spec, params), output_unit(self, parameters, context)
            load_outputs(context, [r.path for r in result.outputs], label, unit,
                         names=[lst_layer_name(f"{r.target_date} {label}", unit) for r in result.outputs],
                         dates=[r.target_date for r in result.outputs])
        return {"OUTPUT_FOLDER": folder, "DATE_COUNT": len(result.outputs),
                "STACK": str(result.stack) if result.stack else "", "REPORT": str(result.report)}
