"""Processing algorithm: download MODIS and Landsat LST of an area and period from a STAC archive."""

from __future__ import annotations

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessingOutputFile,
    QgsProcessingOutputFolder,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFolderDestination,
)

from .base import LSTAlgorithm, backend_errors, progress_from
from .params import add_parameters, params_from


def _params():
    from backend.acquire.download import DownloadParams

    return DownloadParams


class DownloadLSTAlgorithm(LSTAlgorithm):
    NAME = "download_lst"
    DISPLAY = "Download MODIS and Landsat LST"
    GROUP = "data"
    HELP = (
        "Finds the Landsat 8/9 Collection 2 Level-2 surface temperature scenes (with QA_PIXEL) and the MODIS "
        "MOD11A1/MYD11A1 v061 days (with QC) over an area and period in a STAC archive, and downloads only the "
        "area's pixels of each cloud-optimised file (HTTP range reads), no account needed for the Planetary "
        "Computer.\n\n"
        "As the survey built its dataset: Landsat dates with at least MIN_LANDSAT_VALID (80 %) of the area "
        "clear after QA_PIXEL and MODIS days with at least MIN_MODIS_VALID (90 %) after QC are kept; scenes of "
        "one day are mosaicked (rows of a path, neighbouring MODIS tiles). Each product keeps its native grid "
        "and encoding: landsat/…_ST_B10.TIF with _QA_PIXEL.TIF and an _MTL.json holding the item's scale, "
        "modis/MOD11A1.A<yyyyddd>…_LST_Day_1km.tif with _QC_Day.tif. Give the two folders to Gap-fill (then "
        "Resample, Fuse time series) as they are.\n\n"
        "acquire_manifest.json lists every date with what it has (same-day pair, MODIS only, Landsat only), "
        "its valid fractions, and every dropped scene with the reason. A rerun into the same folder keeps the "
        "dates already complete and fetches the rest; a cancelled run keeps the dates it finished.\n\n"
        "SOURCE_URL and the collection names point it at any other STAC API (e.g. a local mirror)."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterExtent("EXTENT", "Area (any CRS: canvas, layer or typed)"))
        add_parameters(self, _params())
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", "Downloaded LST"))
        self.addOutput(QgsProcessingOutputFile("MANIFEST", "Dates, pairs and dropped scenes (JSON)"))
        self.addOutput(QgsProcessingOutputFolder("LANDSAT_FOLDER", "Landsat scenes"))
        self.addOutput(QgsProcessingOutputFolder("MODIS_FOLDER", "MODIS days"))
        self.addOutput(QgsProcessingOutputNumber("LANDSAT_COUNT", "Landsat dates kept"))
        self.addOutput(QgsProcessingOutputNumber("MODIS_COUNT", "MODIS days kept"))
        self.addOutput(QgsProcessingOutputString("PAIRS", "Same-day pairs (dates)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        with backend_errors():
            from backend.acquire.download import download_lst
            from backend.errors import InputError

            wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
            extent = self.parameterAsExtent(parameters, "EXTENT", context, wgs84)
            if extent.isNull() or extent.isEmpty():
                raise InputError("EXTENT: give the area to download (draw it on the canvas, take a layer's extent, "
                                 "or type xmin,xmax,ymin,ymax [EPSG:…]).")
            folder = self.parameterAsString(parameters, "OUTPUT_FOLDER", context)
            result = download_lst(folder, (extent.xMinimum(), extent.yMinimum(), extent.xMaximum(),
                                           extent.yMaximum()), params_from(self, _params(), parameters, context),
                                  progress=progress_from(feedback))
        return {"OUTPUT_FOLDER": str(result.folder), "MANIFEST": str(result.manifest),
                "LANDSAT_FOLDER": str(result.folder / "landsat"), "MODIS_FOLDER": str(result.folder / "modis"),
                "LANDSAT_COUNT": len(result.landsat), "MODIS_COUNT": len(result.modis),
                "PAIRS": ",".join(result.pairs)}
