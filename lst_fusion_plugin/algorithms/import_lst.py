"""Processing algorithm: decode an LST product (MODIS, Landsat, float) to a float32 LST GeoTIFF."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
)

from .base import (
    LSTAlgorithm,
    backend_errors,
    lst_layer_name,
    output_unit,
    output_unit_parameter,
    progress_from,
    style_output,
)

PRODUCTS = [("auto", "Detect from file name and metadata"), ("modis", "MODIS MOD11/MYD11/MOD21 LST"),
            ("landsat", "Landsat 8/9 Collection 2 Level-2 ST_B10"), ("float", "Float LST raster (K or °C)")]
INPUT_UNITS = [(None, "As stored in the file (LST Fusion outputs)"), ("K", "Kelvin"), ("C", "Celsius")]
MODIS_LAYERS = [("LST_Day_1km", "Day (LST_Day_1km; MOD21: LST_1KM)"), ("LST_Night_1km", "Night (LST_Night_1km)")]


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
        self.addParameter(QgsProcessingParameterEnum("PRODUCT", "Product", [p[1] for p in PRODUCTS], defaultValue=0))
        self.addParameter(QgsProcessingParameterEnum(
            "UNIT", "Unit of a float input", [u[1] for u in INPUT_UNITS], defaultValue=0))
        self.addParameter(QgsProcessingParameterEnum(
            "MODIS_LAYER", "MODIS layer (HDF files)", [m[1] for m in MODIS_LAYERS], defaultValue=0))
        self.addParameter(QgsProcessingParameterFile(
            "QUALITY", "Quality file, when not beside the product (Landsat QA_PIXEL, MODIS QC)", optional=True,
            fileFilter="Rasters (*.tif *.TIF *.tiff *.hdf);;All files (*)"))
        self.addParameter(QgsProcessingParameterString(
            "DATE", "Acquisition date (YYYY-MM-DD; empty = from the file name)", "", optional=True))
        self.addParameter(output_unit_parameter())
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Decoded LST"))
        self.addOutput(QgsProcessingOutputString("DATE_OUT", "Acquisition date"))
        self.addOutput(QgsProcessingOutputNumber("VALID_FRACTION", "Fraction of valid pixels"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        with backend_errors():
            from backend.errors import InputError
            from backend.io.outputs import check_raster_output
            from backend.io.readers import read_lst
            from backend.io.writers import write_lst

            source = self.parameterAsFile(parameters, "INPUT", context)
            product = PRODUCTS[self.parameterAsEnum(parameters, "PRODUCT", context)][0]
            unit = INPUT_UNITS[self.parameterAsEnum(parameters, "UNIT", context)][0]
            out_unit = output_unit(self, parameters, context)
            modis_layer = MODIS_LAYERS[self.parameterAsEnum(parameters, "MODIS_LAYER", context)][0]
            date = self.parameterAsString(parameters, "DATE", context) or None
            quality = self.parameterAsFile(parameters, "QUALITY", context) or None
            output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
            check_raster_output(output, [source, quality], algorithm="import_lst")
            progress = progress_from(feedback)
            try:
                raster = read_lst(source, product=product, unit=unit, date=date, progress=progress.sub(0, 0.5),
                                  modis_layer=modis_layer, quality_path=quality)
            except ValueError as exc:
                if isinstance(exc, InputError):
                    raise
                raise InputError(f"DATE: {exc}") from exc
            if raster.date is None:
                progress.warn(f"{source}: no acquisition date in its name or metadata. Give DATE (YYYY-MM-DD): "
                              "the series and fusion algorithms need it.")
            write_lst(raster, output, unit=out_unit, progress=progress.sub(0.5, 1.0), inputs=(source, quality),
                      algorithm="import_lst")
        date_text = raster.date.isoformat() if raster.date else ""
        style_output(context, output, lst_layer_name(f"{date_text} {raster.product}", out_unit), out_unit)
        return {"OUTPUT": output, "DATE_OUT": date_text, "VALID_FRACTION": raster.valid_fraction}
