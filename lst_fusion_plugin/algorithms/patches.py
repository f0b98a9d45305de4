"""Processing algorithm: dated triplets and training patches from aligned MODIS/Landsat series."""

from __future__ import annotations

import json

from qgis.core import (
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from .base import LSTAlgorithm, backend_errors, progress_from

REFERENCES = [(1, "One: the nearest earlier pair (t1)"), (2, "Two: the pairs before (t1) and after (t3)")]
INT, DOUBLE = QgsProcessingParameterNumber.Integer, QgsProcessingParameterNumber.Double


class BuildPatchesAlgorithm(LSTAlgorithm):
    NAME = "build_patches"
    DISPLAY = "Build training patches"
    GROUP = "preprocessing"
    HELP = (
        "Pairs Landsat (fine) and MODIS (coarse, already resampled to the Landsat grid) rasters by date, "
        "builds dated triplets — MODIS(t1), Landsat(t1), MODIS(t2) → Landsat(t2), t1 the nearest "
        "earlier pair, optionally with t3 after — and splits them by date into train, validation "
        "and test. No training or validation triplet uses a test date.\n\n"
        "Patches (95 × 95 px, stride 20 by default) whose nodata fraction exceeds MAX_NODATA are "
        "skipped. The dataset stores the aligned images once (memory-mapped) with an index of patches "
        "and a manifest (dates, grid, normalisation statistics from the training dates, counts) that "
        "the training stage reads lazily. The training patch order is shuffled from SEED."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterFile(
            "FINE", "Fine LST series (Landsat, gap-filled): folder", behavior=QgsProcessingParameterFile.Folder))
        self.addParameter(QgsProcessingParameterFile(
            "COARSE", "Coarse LST series (MODIS on the Landsat grid): folder",
            behavior=QgsProcessingParameterFile.Folder))
        self.addParameter(QgsProcessingParameterNumber("PATCH_SIZE", "Patch size (px)", INT, 95, False, 8))
        self.addParameter(QgsProcessingParameterNumber("STRIDE", "Stride (px)", INT, 20, False, 1))
        self.addParameter(QgsProcessingParameterNumber(
            "DATE_TOLERANCE", "Pair dates up to this many days apart", INT, 0, False, 0, 30))
        self.addParameter(QgsProcessingParameterEnum(
            "REFERENCES", "Reference pairs per triplet", [r[1] for r in REFERENCES], defaultValue=0))
        self.addParameter(QgsProcessingParameterString(
            "TEST_DATES", "Test dates (YYYY-MM-DD, comma-separated; empty = the latest ones)", "", optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            "TEST_FRACTION", "Test fraction of triplets (without test dates)", DOUBLE, 0.16, False, 0.0, 0.9))
        self.addParameter(QgsProcessingParameterNumber(
            "VAL_FRACTION", "Validation fraction of triplets", DOUBLE, 0.16, False, 0.0, 0.9))
        self.addParameter(QgsProcessingParameterNumber(
            "MAX_NODATA", "Largest nodata fraction in a patch", DOUBLE, 0.1, False, 0.0, 1.0))
        self.addParameter(QgsProcessingParameterNumber("SEED", "Random seed", INT, 0, False, 0))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", "Patch dataset"))
        self.addOutput(QgsProcessingOutputFile("MANIFEST", "Dataset manifest (JSON)"))
        for split in ("TRAIN", "VAL", "TEST"):
            self.addOutput(QgsProcessingOutputNumber(f"{split}_PATCHES", f"{split.title()} patches"))
        self.addOutput(QgsProcessingOutputNumber("TRIPLETS", "Triplets"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        with backend_errors():
            from backend.errors import InputError
            from backend.io.dates import parse_date
            from backend.preprocess.patches import build_patch_dataset

            text = self.parameterAsString(parameters, "TEST_DATES", context)
            try:
                test_dates = [parse_date(t) for t in text.replace(";", ",").split(",") if t.strip()]
            except ValueError as exc:
                raise InputError(f"TEST_DATES: {exc}") from exc
            folder = self.parameterAsString(parameters, "OUTPUT_FOLDER", context)
            manifest_path = build_patch_dataset(
                [self.parameterAsString(parameters, "FINE", context)],
                [self.parameterAsString(parameters, "COARSE", context)],
                folder,
                patch_size=self.parameterAsInt(parameters, "PATCH_SIZE", context),
                stride=self.parameterAsInt(parameters, "STRIDE", context),
                date_tolerance_days=self.parameterAsInt(parameters, "DATE_TOLERANCE", context),
                references=REFERENCES[self.parameterAsEnum(parameters, "REFERENCES", context)][0],
                test_dates=test_dates or None,
                test_fraction=self.parameterAsDouble(parameters, "TEST_FRACTION", context),
                val_fraction=self.parameterAsDouble(parameters, "VAL_FRACTION", context),
                max_nodata_fraction=self.parameterAsDouble(parameters, "MAX_NODATA", context),
                seed=self.parameterAsInt(parameters, "SEED", context),
                progress=progress_from(feedback),
            )
        counts = json.loads(manifest_path.read_text())["counts"]
        return {"OUTPUT_FOLDER": folder, "MANIFEST": str(manifest_path),
                "TRAIN_PATCHES": counts["train"]["patches"], "VAL_PATCHES": counts["val"]["patches"],
                "TEST_PATCHES": counts["test"]["patches"],
                "TRIPLETS": sum(c["triplets"] for c in counts.values())}
