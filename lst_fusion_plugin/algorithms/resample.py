"""Processing algorithm: resample MODIS LST onto the Landsat grid (or any grid)."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterCrs,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)

from .base import (
    LSTAlgorithm,
    add_series_inputs,
    backend_errors,
    load_outputs,
    progress_from,
    raster_source,
    series_inputs,
)
from .params import add_parameters, params_from


def _params():
    from backend.preprocess.resample import ResampleParams

    return ResampleParams


class ResampleAlgorithm(LSTAlgorithm):
    NAME = "resample"
    DISPLAY = "Resample to a reference grid"
    GROUP = "preprocessing"
    HELP = (
        "Reprojects and resamples LST rasters (by default the MODIS ones, from the sinusoidal grid) onto "
        "a reference grid: that of the REFERENCE raster (a Landsat scene), of the first Landsat raster "
        "in REFERENCE_FOLDER, or an explicit TARGET_CRS + RESOLUTION + EXTENT. The output grid equals the "
        "reference exactly (CRS, transform, size).\n\n"
        "Bicubic is the survey's choice. Nodata is left out of every kernel, so clouds and swath edges "
        "leave no cold or hot halo. Works in row blocks: memory stays small for any target size."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        add_series_inputs(self, "LST to resample")
        self.addParameter(QgsProcessingParameterRasterLayer(
            "REFERENCE", "Reference grid: a (Landsat) raster", optional=True))
        self.addParameter(QgsProcessingParameterFile(
            "REFERENCE_FOLDER", "…or a folder of Landsat rasters (the first date gives the grid)",
            behavior=QgsProcessingParameterFile.Folder, optional=True))
        advanced = [
            QgsProcessingParameterCrs("TARGET_CRS", "Target CRS (without reference)", optional=True),
            QgsProcessingParameterNumber("RESOLUTION", "Target resolution (CRS units, without reference)",
                                         QgsProcessingParameterNumber.Double, None, True, 0.0),
            QgsProcessingParameterExtent("EXTENT", "Target extent (without reference)", optional=True),
        ]
        add_parameters(self, _params(), advanced)
        self.addParameter(QgsProcessingParameterBoolean("LOAD_OUTPUTS", "Open the resampled rasters", False))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", "Resampled series"))
        self.addOutput(QgsProcessingOutputNumber("DATE_COUNT", "Number of rasters"))

    def _grid(self, parameters, context):
        from backend.io.grid import Grid
        from backend.preprocess.resample import reference_grid

        source = raster_source(self, parameters, "REFERENCE", context)
        if source:
            return reference_grid(source)
        folder = self.parameterAsString(parameters, "REFERENCE_FOLDER", context)
        if folder:
            return reference_grid(folder)
        crs = self.parameterAsCrs(parameters, "TARGET_CRS", context)
        given = {"TARGET_CRS": crs.isValid(), "RESOLUTION": parameters.get("RESOLUTION") not in (None, ""),
                 "EXTENT": parameters.get("EXTENT") not in (None, "")}
        if not all(given.values()):
            missing = ", ".join(name for name, ok in given.items() if not ok)
            raise QgsProcessingException(
                "Give a REFERENCE raster or REFERENCE_FOLDER, or TARGET_CRS, RESOLUTION and EXTENT together "
                f"(missing: {missing}).")
        resolution = self.parameterAsDouble(parameters, "RESOLUTION", context)
        if not resolution > 0:
            raise QgsProcessingException(
                f"RESOLUTION must be a positive pixel size in the units of TARGET_CRS, got {resolution:g}.")
        extent = self.parameterAsExtent(parameters, "EXTENT", context, crs)
        bounds = (extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum())
        return Grid.from_bounds(crs.toWkt(), resolution, bounds)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        with backend_errors():
            from backend.preprocess.resample import resample_series

            folder = self.parameterAsString(parameters, "OUTPUT_FOLDER", context)
            params = params_from(self, _params(), parameters, context)
            outputs = resample_series(series_inputs(self, parameters, context), folder,
                                      self._grid(parameters, context), params, progress=progress_from(feedback))
        if self.parameterAsBool(parameters, "LOAD_OUTPUTS", context):
            load_outputs(context, outputs, "Resampled", params.out_unit)
        return {"OUTPUT_FOLDER": folder, "DATE_COUNT": len(outputs)}
