"""Processing algorithm: adapt a trained or shipped model to the user's season (fine-tuning within a time budget)."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterFileDestination,
)

from .base import LSTAlgorithm, add_folder_and_files, backend_errors, fine_and_coarse_series, progress_from
from .params import add_parameters, params_from


def _params():
    from backend.training.adapt import AdaptParams

    return AdaptParams


class AdaptModelAlgorithm(LSTAlgorithm):
    NAME = "adapt_model"
    DISPLAY = "Adapt a model to a season"
    GROUP = "training"
    HELP = (
        "Fine-tunes a deep fusion model (a MODEL file written by 'Train STF model', or a SHIPPED_MODEL) on "
        "the season's own Landsat + MODIS pairs, so a network trained elsewhere learns how this region's "
        "surfaces answer MODIS's changes.\n\n"
        "FINE: the Landsat series (gap-filled); COARSE: the MODIS series on the Landsat grid. Each pair is "
        "predicted from the previous one (or the ones around it, for two-pair models); the latest quarter "
        "of these triplets validates, the rest trains, with the cloud-aware loss (only observed Landsat "
        "pixels count) and the level-shift augmentation. EXCLUDE_DATES leaves out the dates you will "
        "predict. Training stops when TIME_BUDGET is spent (about 10 minutes on 2 CPU cores for a "
        "1,000 × 1,000 px season; a CUDA GPU does more in the same time) and the epoch that validated "
        "best is kept — the unadapted weights when none did better.\n\n"
        "OUTPUT is an ONNX model for Fuse and Fuse time series; its card records the base model, the "
        "dates adapted on and the validation RMSE before and after. A stopped run writes no model."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        add_folder_and_files(self, "FINE", "Fine LST series (Landsat)")
        add_folder_and_files(self, "COARSE", "Coarse LST series (MODIS on the Landsat grid)")
        add_parameters(self, _params())
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT", "Adapted model",
                                                                "ONNX models (*.onnx)"))
        self.addOutput(QgsProcessingOutputNumber("BASE_VAL_RMSE", "Validation RMSE before adaptation (K)"))
        self.addOutput(QgsProcessingOutputNumber("VAL_RMSE", "Validation RMSE of the adapted model (K)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        with backend_errors():
            from backend.training.adapt import adapt_model

            fine, coarse = fine_and_coarse_series(self, parameters, context)
            output = self.parameterAsFileOutput(parameters, "OUTPUT", context)
            result = adapt_model(fine, coarse, output, params_from(self, _params(), parameters, context),
                                 progress=progress_from(feedback))
        nan = float("nan")
        return {"OUTPUT": str(result.model),
                "BASE_VAL_RMSE": result.base_rmse_k if result.base_rmse_k is not None else nan,
                "VAL_RMSE": result.rmse_k if result.rmse_k is not None else nan}
