"""Processing algorithm: decode an LST product (MODIS, Landsat, float) to a float32 LST GeoTIFF."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterFile,
    QgsProcessingParameterRasterDestination,
)

from .base import LSTAlgorithm, backend_errors, lst_layer_name, progress_from, style_output
from .params import add_parameters, params_from


def _params():
    from backend.io.importer import ImportParams

    return ImportParams


class ImportLSTAlgorithm(LSTAlgorithm):
    NAME = "import_lst"
    DISPLAY = "Import LST product"
    GROUP = "data"
    HELP = (
        "Decodes a land surface temperature product to a float32 Cloud-Optimized GeoTIFF "
        "(NaN = nodata) with its date, unit and source in the metadata.\n\n"
        "MODIS MOD11A1/MYD11A1/MOD11A2/MOD21A1: HDF4 files or GeoTIFF exports; DN × 0.02 K, "
        "fill 0; pixels whose QC bits 0-1 say 'not produced' are masked (the QC_Day file "
        "is found next to an AppEEARS export).\n"
        "Landsat 8/9 Collection 2 Level-2 ST_B10: DN × 0.00341802 + 149 K (from the MTL "
        "when present), fill 0; fill, dilated cloud, cloud, shadow and snow masked from "
        "the QA_PIXEL file next to it.\n"
        "Float rasters: give the unit; a check refuses values that cannot be LST in it.\n\n"
        "The date comes from the file name (A2013077, doy2013077, LC08_..._20130318_...) "
        "or the DATE parameter."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterFile(
            "INPUT", "LST product file",
            fileFilter="LST products (*.hdf *.HDF *.tif *.TIF *.tiff *.TIFF);;All files (*)"))
        add_parameters(self, _params())
        self.addParameter(QgsProcessingParameterFile(
            "QUALITY", "Quality file, when not beside the product (Landsat QA_PIXEL, MODIS QC)", optional=True,
            fileFilter="Rasters (*.tif *.TIF *.tiff *.hdf);;All files (*)"))
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Decoded LST"))
        self.addOutput(QgsProcessingOutputString("DATE_OUT", "Acquisition date"))
        self.addOutput(QgsProcessingOutputNumber("VALID_FRACTION", "Fraction of valid pixels"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        with backend_errors():
            from backend.io.importer import import_lst

            params = params_from(self, _params(), parameters, context)
            output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
            result = import_lst(self.parameterAsFile(parameters, "INPUT", context), output, params,
                                quality=self.parameterAsFile(parameters, "QUALITY", context) or None,
                                progress=progress_from(feedback))
        date_text = result.date.isoformat() if result.date else ""
        style_output(context, output, lst_layer_name(f"{date_text} {result.product}", params.out_unit),
                     params.out_unit)
        return {"OUTPUT": output, "DATE_OUT": date_text, "VALID_FRACTION": result.valid_fraction}
