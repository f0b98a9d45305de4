"""'Train STF model' in QGIS: each model trains through processing.run and qgis_process (CPU smoke runs)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from qgis.core import QgsProcessingException, QgsProcessingFeedback

from backend.training.onnx_export import read_model_card

REPO = Path(__file__).resolve().parents[1]



def test_train_through_processing_run(provider, tiny_patches, tmp_path):
    import processing

    algorithm = provider.algorithm("train")
    assert algorithm.group() == "3 · Training" and "checkpoint" in algorithm.shortHelpString()
    res = processing.run("lst_fusion:train", {"DATASET": str(tiny_patches), "MODEL": 1, "EPOCHS": 2,
                                              "BATCH_SIZE": 8, "OUTPUT_FOLDER": str(tmp_path / "run")},
                         feedback=QgsProcessingFeedback())
    assert read_model_card(res["ONNX"]).model == "sttfn"
    assert Path(res["REPORT"]).exists() and (Path(res["CHECKPOINTS"]) / "last.pt").exists()
    resumed = processing.run("lst_fusion:train", {"DATASET": str(tiny_patches), "MODEL": 1, "EPOCHS": 3,
                                                  "BATCH_SIZE": 8, "RESUME": True,
                                                  "OUTPUT_FOLDER": str(tmp_path / "run")},
                             feedback=QgsProcessingFeedback())
    assert read_model_card(resumed["ONNX"]).training["epochs"] == 3
    with pytest.raises(QgsProcessingException, match="no checkpoints/last.pt"):
        processing.run("lst_fusion:train", {"DATASET": str(tiny_patches), "RESUME": True,
                                            "OUTPUT_FOLDER": str(tmp_path / "empty")},
                       feedback=QgsProcessingFeedback())
    with pytest.raises(QgsProcessingException, match="not a patch dataset"):
        processing.run("lst_fusion:train", {"DATASET": str(tmp_path), "OUTPUT_FOLDER": str(tmp_path / "x")},
                       feedback=QgsProcessingFeedback())


@pytest.mark.slow
@pytest.mark.parametrize(("index", "name"), [(0, "edcstfn"), (1, "sttfn"), (2, "mlffgan")])
def test_cpu_smoke_training_through_qgis_process(tiny_patches, tmp_path, index, name):
    env = dict(os.environ, QGIS_CUSTOM_CONFIG_PATH=str(tmp_path / "cfg"), QT_QPA_PLATFORM="offscreen")
    env.pop("QGIS_PLUGINPATH", None)
    run = subprocess.run([str(REPO / "scripts" / "qgis_process"), "run", "lst_fusion:train", "--json", "--",
                          f"DATASET={tiny_patches}", f"MODEL={index}", "EPOCHS=1", "BATCH_SIZE=8", "DEVICE=1",
                          f"OUTPUT_FOLDER={tmp_path / 'out'}"], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    results = json.loads(run.stdout[run.stdout.index("{"):])["results"]
    card = read_model_card(results["ONNX"])
    assert card.model == name and card.training["device"] == "cpu"
    import numpy as np
    import onnxruntime as ort

    size = 32 if card.size_multiple > 1 else 33
    x = np.full((1, len(card.roles), size, size), 295.0, np.float32)
    session = ort.InferenceSession(results["ONNX"])
    feeds = {"inputs": x}
    if card.scene_moments:  # MLFF-GAN: the image's own moments first, then the prediction with them
        feeds.update(moment_weights=np.ones((1, 1, size, size), np.float32),
                     scene_moments=np.zeros(card.scene_moments, np.float32))
        feeds["scene_moments"] = session.run(["moments"], feeds)[0]
    out = session.run(["lst"], feeds)[0]
    assert out.shape == (1, 1, size, size) and np.isfinite(out).all() and 250 < float(out.mean()) < 340
