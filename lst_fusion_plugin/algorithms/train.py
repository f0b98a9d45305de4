"""Processing algorithm: train a deep STF model on a patch dataset and export it to ONNX."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputFile,
    QgsProcessingOutputFolder,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
)

from .base import LSTAlgorithm, add_advanced, backend_errors, enum_value, progress_from


def model_choices() -> list[tuple[str, str]]:
    """(name, label) of every model in the registry, in its order: the indices saved models and scripts use
    (the registry names its modules, so listing them imports no torch)."""
    from models import registry

    return [(name, spec.label) for name, spec in registry.MODELS.items()]


DEVICES = [("auto", "Automatic (CUDA when present)"), ("cpu", "CPU"), ("cuda", "CUDA GPU")]
INT, DOUBLE = QgsProcessingParameterNumber.Integer, QgsProcessingParameterNumber.Double


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
        self.addParameter(QgsProcessingParameterEnum("MODEL", "Model", [m[1] for m in model_choices()], defaultValue=0))
        self.addParameter(QgsProcessingParameterNumber("EPOCHS", "Epochs", INT, 30, False, 1, 10000))
        self.addParameter(QgsProcessingParameterNumber("BATCH_SIZE", "Batch size", INT, 16, False, 1, 4096))
        self.addParameter(QgsProcessingParameterNumber(
            "LEARNING_RATE", "Learning rate (0 = the model's published default)", DOUBLE, 0.0, False, 0.0, 1.0))
        self.addParameter(QgsProcessingParameterEnum("DEVICE", "Device", [d[1] for d in DEVICES], defaultValue=0))
        self.addParameter(QgsProcessingParameterBoolean("RESUME", "Resume the run in the output folder", False))
        self.addParameter(QgsProcessingParameterBoolean(
            "CLOUD_AWARE", "Cloud-aware loss (ignore gap-filled target pixels)", False))
        advanced = [
            QgsProcessingParameterBoolean("AUGMENT", "Augment with flips and rotations", True),
            QgsProcessingParameterNumber("SEED", "Random seed", INT, 0, False, 0),
            QgsProcessingParameterNumber("PATIENCE", "Early stopping patience (epochs)", INT, 6, False, 1),
            QgsProcessingParameterNumber("MAX_BATCHES", "Batches per epoch (0 = all)", INT, 0, False, 0),
            QgsProcessingParameterNumber(
                "LEVEL_SHIFT", "Level-shift augmentation (± K; > 0 makes the model transferable to other "
                "regions and seasons)", DOUBLE, 0.0, False, 0.0, 100.0),
            QgsProcessingParameterNumber(
                "CONSISTENCY_WEIGHT", "Weight of the physics-informed loss (the prediction at MODIS's scale "
                "changes as MODIS did; 0 = published loss only)", DOUBLE, 0.0, False, 0.0, 100.0),
        ]
        add_advanced(self, advanced)
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", "Training outputs"))
        self.addOutput(QgsProcessingOutputFile("ONNX", "ONNX model"))
        self.addOutput(QgsProcessingOutputFolder("CHECKPOINTS", "Checkpoint folder"))
        self.addOutput(QgsProcessingOutputFile("REPORT", "Training report (HTML)"))
        self.addOutput(QgsProcessingOutputNumber("BEST_EPOCH", "Best epoch"))
        self.addOutput(QgsProcessingOutputNumber("VAL_RMSE", "Validation RMSE (K)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        with backend_errors():
            from backend.training.train import TrainConfig, train

            lr = self.parameterAsDouble(parameters, "LEARNING_RATE", context)
            config = TrainConfig(
                model=enum_value(self, parameters, "MODEL", context, model_choices()),
                epochs=self.parameterAsInt(parameters, "EPOCHS", context),
                batch_size=self.parameterAsInt(parameters, "BATCH_SIZE", context),
                learning_rate=lr or None,
                device=enum_value(self, parameters, "DEVICE", context, DEVICES),
                cloud_aware=self.parameterAsBool(parameters, "CLOUD_AWARE", context),
                augment=self.parameterAsBool(parameters, "AUGMENT", context),
                seed=self.parameterAsInt(parameters, "SEED", context),
                patience=self.parameterAsInt(parameters, "PATIENCE", context),
                max_batches=self.parameterAsInt(parameters, "MAX_BATCHES", context) or None,
                level_shift_k=self.parameterAsDouble(parameters, "LEVEL_SHIFT", context),
                consistency_weight=self.parameterAsDouble(parameters, "CONSISTENCY_WEIGHT", context),
            )
            folder = self.parameterAsString(parameters, "OUTPUT_FOLDER", context)
            result = train(self.parameterAsString(parameters, "DATASET", context), folder, config,
                           resume=self.parameterAsBool(parameters, "RESUME", context),
                           progress=progress_from(feedback))
        return {"OUTPUT_FOLDER": folder, "ONNX": str(result.onnx), "CHECKPOINTS": str(result.checkpoints),
                "REPORT": str(result.report), "BEST_EPOCH": result.best_epoch,
                "VAL_RMSE": result.best_val_rmse if result.best_val_rmse is not None else float("nan")}
