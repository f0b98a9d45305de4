"""Processing algorithm: dated triplets and training patches from aligned MODIS/Landsat series."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
)

from .base import LSTAlgorithm, backend_errors, progress_from
from .params import add_parameters, params_from


def _params():
    from backend.preprocess.patches import PatchParams

    return PatchParams


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
        add_parameters(self, _params())
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", "Patch dataset"))
        self.addOutput(QgsProcessingOutputFile("MANIFEST", "Dataset manifest (JSON)"))
        for split in ("TRAIN", "VAL", "TEST"):
            self.addOutput(QgsProcessingOutputNumber(f"{split}_PATCHES", f"{split.title()} patches"))
        self.addOutput(QgsProcessingOutputNumber("TRIPLETS", "Triplets"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        with backend_errors():
            from backend.preprocess.patches import build_patch_dataset

            folder = self.parameterAsString(parameters, "OUTPUT_FOLDER", context)
            result = build_patch_dataset([self.parameterAsString(parameters, "FINE", context)],
                                         [self.parameterAsString(parameters, "COARSE", context)], folder,
                                         params_from(self, _params(), parameters, context),
                                         progress=progress_from(feedback))
        return {"OUTPUT_FOLDER": folder, "MANIFEST": str(result.manifest), "TRAIN_PATCHES": result.patches("train"),
                "VAL_PATCHES": result.patches("val"), "TEST_PATCHES": result.patches("test"),
                "TRIPLETS": result.triplets}
