"""Processing algorithm: generate the sample MODIS + Landsat LST dataset."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputFile,
    QgsProcessingOutputFolder,
    QgsProcessingOutputNumber,
    QgsProcessingOutputRasterLayer,
    QgsProcessingParameterCrs,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from .base import LSTAlgorithm, add_advanced, backend_errors, progress_from

DOUBLE = QgsProcessingParameterNumber.Double


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
        from backend.preprocess.sample_data import SampleSpec

        self.addParameter(QgsProcessingParameterNumber(
            "WIDTH", "Width (Landsat pixels)", QgsProcessingParameterNumber.Integer, 950, False, 16, 5000))
        self.addParameter(QgsProcessingParameterNumber(
            "HEIGHT", "Height (Landsat pixels)", QgsProcessingParameterNumber.Integer, 950, False, 16, 5000))
        self.addParameter(QgsProcessingParameterNumber(
            "N_DATES", "Number of dated MODIS/Landsat pairs", QgsProcessingParameterNumber.Integer, 51, False, 1, 300))
        self.addParameter(QgsProcessingParameterString("START_DATE", "First date (YYYY-MM-DD)", "2013-03-18"))
        self.addParameter(QgsProcessingParameterString("END_DATE", "Last date (YYYY-MM-DD)", "2024-10-15"))
        self.addParameter(QgsProcessingParameterNumber(
            "CLOUDINESS", "Mean cloudiness (0-1)", QgsProcessingParameterNumber.Double, 0.25, False, 0.0, 1.0))
        self.addParameter(QgsProcessingParameterNumber(
            "SEED", "Random seed", QgsProcessingParameterNumber.Integer, 0, False, 0))
        self.addParameter(QgsProcessingParameterNumber(
            "DIFFICULT_FRACTION", "Fraction of difficult dates (heat wave, cold spell, field switch, sensor "
            "disagreement)", DOUBLE, SampleSpec.difficult_fraction, False, 0.0, 1.0))
        advanced = [
            QgsProcessingParameterCrs(
                "CRS", "Landsat grid CRS (UTM; default EPSG:32631)", "EPSG:32631", optional=True),
            QgsProcessingParameterNumber("PIXEL_SIZE", "Landsat pixel size (m)", DOUBLE, 30.0, False, 1.0, 1000.0),
            QgsProcessingParameterNumber("CENTER_LON", "Centre longitude (°)", DOUBLE, 1.909, False, -180.0, 180.0),
            QgsProcessingParameterNumber("CENTER_LAT", "Centre latitude (°)", DOUBLE, 47.902, False, -85.0, 85.0),
        ]
        add_advanced(self, advanced)
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", "Sample dataset folder"))
        self.addOutput(QgsProcessingOutputFile("MANIFEST", "Manifest (JSON)"))
        self.addOutput(QgsProcessingOutputNumber("DATE_COUNT", "Number of dates"))
        self.addOutput(QgsProcessingOutputFolder("TRUTH_FOLDER", "Cloud-free fine truth (to evaluate against)"))
        self.addOutput(QgsProcessingOutputRasterLayer("LANDCOVER", "Land-cover classes"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        with backend_errors():
            from backend.errors import InputError
            from backend.io.dates import parse_date
            from backend.preprocess.sample_data import SampleSpec, generate_sample_dataset

            try:
                start = parse_date(self.parameterAsString(parameters, "START_DATE", context))
                end = parse_date(self.parameterAsString(parameters, "END_DATE", context))
            except ValueError as exc:
                raise InputError(f"START_DATE/END_DATE: {exc}") from exc
            crs = self.parameterAsCrs(parameters, "CRS", context)
            spec = SampleSpec(
                width=self.parameterAsInt(parameters, "WIDTH", context),
                height=self.parameterAsInt(parameters, "HEIGHT", context),
                n_dates=self.parameterAsInt(parameters, "N_DATES", context),
                start=start,
                end=end,
                cloudiness=self.parameterAsDouble(parameters, "CLOUDINESS", context),
                difficult_fraction=self.parameterAsDouble(parameters, "DIFFICULT_FRACTION", context),
                seed=self.parameterAsInt(parameters, "SEED", context),
                crs=(crs.authid() or crs.toWkt()) if crs.isValid() else "EPSG:32631",
                pixel_size=self.parameterAsDouble(parameters, "PIXEL_SIZE", context),
                center_lon=self.parameterAsDouble(parameters, "CENTER_LON", context),
                center_lat=self.parameterAsDouble(parameters, "CENTER_LAT", context),
            )
            folder = self.parameterAsString(parameters, "OUTPUT_FOLDER", context)
            manifest = generate_sample_dataset(folder, spec, progress_from(feedback))
        import json

        content = json.loads(manifest.read_text())
        root = manifest.parent
        return {"OUTPUT_FOLDER": folder, "MANIFEST": str(manifest), "DATE_COUNT": len(content["dates"]),
                "TRUTH_FOLDER": str(root / "truth"), "LANDCOVER": str(root / content["landcover"])}
