"""Processing algorithm: train a deep STF model on a patch dataset and export it to ONNX."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputFile,
    QgsProcessingOutputFolder,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
)

from .base import LSTAlgorithm, backend_errors, progress_from
from .params import add_parameters, params_from


def _params():
    from backend.training.train import TrainConfig

    return TrainConfig


class TrainAlgorithm(LSTAlgorithm):
    NAME = "train"
    DISPLAY = "Train STF model"
    GROUP = "training"
    HELP = (
        "Trains a deep spatio-temporal fusion network on a patch dataset (Build training patches) and "
        "exports it to ONNX with its model card (inputs, normalisation, units, training dates, validation "
        "metrics) embedded.\n\n"
        "Uses a CUDA GPU when present, else all CPU cores. A checkpoint is written after every epoch; "
        "RESUME continues an interrupted run exactly. CLOUD_AWARE ignores target pixels that were "
        "gap-filled instead of observed. Cancelling stops between batches and keeps the last checkpoint. "
        "The HTML report shows the loss curves and validation RMSE."
    )

    def help_text(self) -> str:
        from models import registry

        models = " ".join(f"{spec.title}: {spec.summary}" for spec in registry.MODELS.values() if spec.summary)
        head, _, rest = self.HELP.partition("\n\n")
        return f"{head}\n\n{models}\n\n{rest}"

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterFile(
            "DATASET", "Patch dataset (folder)", behavior=QgsProcessingParameterFile.Folder))
        add_parameters(self, _params())
        self.addParameter(QgsProcessingParameterBoolean("RESUME", "Resume the run in the output folder", False))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", "Training outputs"))
        self.addOutput(QgsProcessingOutputFile("ONNX", "ONNX model"))
        self.addOutput(QgsProcessingOutputFolder("CHECKPOINTS", "Checkpoint folder"))
        self.addOutput(QgsProcessingOutputFile("REPORT", "Training report (HTML)"))
        self.addOutput(QgsProcessingOutputNumber("BEST_EPOCH", "Best epoch"))
        self.addOutput(QgsProcessingOutputNumber("VAL_RMSE", "Validation RMSE (K)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        with backend_errors():
            from backend.training.train import train

            config = params_from(self, _params(), parameters, context)
            folder = self.parameterAsString(parameters, "OUTPUT_FOLDER", context)
            result = train(self.parameterAsString(parameters, "DATASET", context), folder, config,
                           resume=self.parameterAsBool(parameters, "RESUME", context),
                           progress=progress_from(feedback))
        return {"OUTPUT_FOLDER": folder, "ONNX": str(result.onnx), "CHECKPOINTS": str(result.checkpoints),
                "REPORT": str(result.report), "BEST_EPOCH": result.best_epoch,
                "VAL_RMSE": result.best_val_rmse if result.best_val_rmse is not None else float("nan")}
