"""Processing algorithm: generate the sample MODIS + Landsat LST dataset."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputFile,
    QgsProcessingOutputFolder,
    QgsProcessingOutputNumber,
    QgsProcessingOutputRasterLayer,
    QgsProcessingParameterFolderDestination,
)

from .base import LSTAlgorithm, backend_errors, progress_from
from .params import add_parameters, params_from


def _params():
    from backend.preprocess.sample_data import SampleSpec

    return SampleSpec


class GenerateSampleDatasetAlgorithm(LSTAlgorithm):
    NAME = "generate_sample_dataset"
    DISPLAY = "Generate sample dataset"
    GROUP = "data"
    HELP = (
        "Writes a realistic, seeded MODIS + Landsat land surface temperature time series "
        "in the real product formats: Landsat 8 Collection 2 Level-2 ST_B10 + QA_PIXEL + "
        "MTL.json (UTM, 30 m) and MOD11A1 LST_Day_1km + QC_Day GeoTIFF exports (MODIS "
        "sinusoidal, 926.6 m), with clouds, MODIS's point-spread, bias and noise. The "
        "landscape is Orléans-like: the Loire, a city, a forest, crops with a season, bare "
        "soil. The cloud-free 30 m truth and the land cover go to truth/ for scoring.\n\n"
        "Defaults match the survey's STF-LST dataset: 51 dates 2013-2024, 950 × 950 px. "
        "Use small sizes for quick tests. The same seed gives the same files.\n\n"
        "DIFFICULT_FRACTION of the dates (never the first or last) get what makes fusion fail: a heat "
        "wave or cold spell (the whole scene changes by 5-10 K), crop parcels switching state "
        "(irrigated −8 K, harvested +6 K), or MODIS disagreeing with Landsat by 3.5-5 K. The manifest "
        "lists them; Evaluate fusion reports them apart."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        add_parameters(self, _params())
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", "Sample dataset folder"))
        self.addOutput(QgsProcessingOutputFile("MANIFEST", "Manifest (JSON)"))
        self.addOutput(QgsProcessingOutputNumber("DATE_COUNT", "Number of dates"))
        self.addOutput(QgsProcessingOutputFolder("TRUTH_FOLDER", "Cloud-free fine truth (to evaluate against)"))
        self.addOutput(QgsProcessingOutputRasterLayer("LANDCOVER", "Land-cover classes"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        with backend_errors():
            from backend.preprocess.sample_data import generate_sample_dataset

            folder = self.parameterAsString(parameters, "OUTPUT_FOLDER", context)
            result = generate_sample_dataset(folder, params_from(self, _params(), parameters, context),
                                             progress_from(feedback))
        return {"OUTPUT_FOLDER": folder, "MANIFEST": str(result.manifest), "DATE_COUNT": len(result.dates),
                "TRUTH_FOLDER": str(result.truth), "LANDCOVER": str(result.landcover)}
