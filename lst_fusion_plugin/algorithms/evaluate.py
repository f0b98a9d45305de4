"""Processing algorithm: score fused LST against a reference, beside the MODIS and persistence baselines."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputFile,
    QgsProcessingOutputHtml,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from .base import (
    LSTAlgorithm,
    add_advanced,
    add_folder_and_files,
    add_renamed,
    backend_errors,
    folder_and_files,
    load_outputs,
    progress_from,
    raster_source,
    renamed_value,
)
from .params import parameter_for, parameter_values


def _fields():
    from backend.evaluation.evaluate import EvaluateParams
    from backend.parameters import exposed

    return exposed(EvaluateParams)


class EvaluateAlgorithm(LSTAlgorithm):
    NAME = "evaluate"
    DISPLAY = "Evaluate fusion"
    GROUP = "evaluation"
    HELP = (
        "Scores fused LST against a reference (Landsat of the same date, or the sample data's truth) with "
        "RMSE, SSIM, PSNR, SAM, CC and ERGAS (the survey's metrics) plus MAE, bias, unbiased RMSE and R², "
        "and writes an HTML report (opens in the Results Viewer), metrics.csv, metrics.json and one error "
        "raster (prediction − reference) per method and date.\n\n"
        "PREDICTIONS: fused rasters, or the folders Fuse LST time series wrote; each is labelled with the "
        "method it records, or with LABELS (comma-separated, one per prediction input: the folder first, "
        "then the files). REFERENCE: the rasters to compare with, matched by date.\n\n"
        "Baselines are computed for every date and shown beside the methods: MODIS on the fine grid "
        "(COARSE, the series the fusion used) and persistence — the nearest earlier Landsat (FINE; the "
        "reference series when not given). Every entry of a date is scored on the same pixels. Dates "
        "whose reference changed strongly since the last Landsat are 'difficult' and averaged apart.\n\n"
        "LAND_COVER (a land-cover raster of class codes on the same grid; CLASSES before 0.5) gives figures "
        "per class; the gap-fill flags of a gap-filled reference (found beside it, or FLAGS) give them for "
        "observed and filled reference pixels. SSIM, SAM and ERGAS depend on the temperature scale: "
        "METRIC_UNIT sets it (the survey's tables are in °C)."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        add_folder_and_files(self, "PREDICTIONS", "Predictions (fused rasters or fused-series folders)")
        self.addParameter(QgsProcessingParameterString(
            "LABELS", "Method labels, comma-separated (empty = the method each file records)", "", optional=True))
        add_folder_and_files(self, "REFERENCE", "Reference LST (Landsat or truth at the predicted dates)")
        add_folder_and_files(self, "COARSE", "MODIS on the fine grid (MODIS baseline)")
        add_folder_and_files(self, "FINE", "Landsat series the fusion used (persistence baseline)")
        # Named CLASSES before 0.5, which in Fuse is a number of classes: one name, one meaning.
        add_renamed(self, QgsProcessingParameterRasterLayer(
            "LAND_COVER", "Land-cover classes (categorical raster on the same grid)", optional=True), "CLASSES")
        fields = _fields()
        for field, info in fields:
            if not info.advanced:
                self.addParameter(parameter_for(field, info))
        add_folder_and_files(self, "FLAGS", "Gap-fill flags of the reference (when not beside it)")
        advanced = [parameter_for(field, info) for field, info in fields if info.advanced]
        add_advanced(self, advanced)
        self.addParameter(QgsProcessingParameterBoolean("LOAD_OUTPUTS", "Open the error rasters", True))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", "Evaluation"))
        self.addOutput(QgsProcessingOutputHtml("OUTPUT_HTML", "Evaluation report"))
        self.addOutput(QgsProcessingOutputFile("METRICS_JSON", "Metrics (JSON)"))
        self.addOutput(QgsProcessingOutputFile("METRICS_CSV", "Metrics (CSV)"))
        self.addOutput(QgsProcessingOutputNumber("DATE_COUNT", "Dates evaluated"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        with backend_errors():
            from backend.errors import InputError
            from backend.evaluation.evaluate import EvaluateParams, evaluate
            from backend.parameters import build

            predictions = folder_and_files(self, parameters, context, "PREDICTIONS")
            reference = folder_and_files(self, parameters, context, "REFERENCE")
            if not predictions or not reference:
                raise InputError("Give the predictions (PREDICTIONS or PREDICTIONS_FILES) and the reference "
                                 "(REFERENCE or REFERENCE_FILES).")
            text = self.parameterAsString(parameters, "LABELS", context) or ""
            labels = [t.strip() for t in text.split(",")] if text.strip() else None
            classes = raster_source(self, renamed_value(parameters, "LAND_COVER", "CLASSES", feedback),
                                    "LAND_COVER", context)
            params = build(EvaluateParams, parameter_values(self, parameters, context, _fields()))
            folder = self.parameterAsString(parameters, "OUTPUT_FOLDER", context)
            result = evaluate(predictions, reference, folder,
                              coarse=folder_and_files(self, parameters, context, "COARSE") or None,
                              fine_series=folder_and_files(self, parameters, context, "FINE") or None,
                              classes=classes,
                              flags=folder_and_files(self, parameters, context, "FLAGS") or None,
                              labels=labels, params=params, progress=progress_from(feedback))
        if self.parameterAsBool(parameters, "LOAD_OUTPUTS", context):
            load_outputs(context, [p for _, _, p in result.errors], "error",
                         names=[f"Error {d} {label}" for d, label, _ in result.errors],
                         dates=[d for d, _, _ in result.errors], style="error")
        return {"OUTPUT_FOLDER": folder, "OUTPUT_HTML": str(result.html), "METRICS_JSON": str(result.json),
                "METRICS_CSV": str(result.csv), "DATE_COUNT": len(result.dates)}
