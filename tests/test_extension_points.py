"""Extension points: a network is one module and one registry entry, with nothing else to edit."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from qgis.core import QgsProcessingFeedback

TINYNET = '''"""A contributor's network: one module, nothing in LST Fusion edited."""
from torch import nn

from models.contract import ROLES_ONE_REFERENCE, Contract
from models.recipe import Recipe


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 3, padding=1)

    def forward(self, x):
        return x[:, 1:2] + self.conv(x)  # the fine reference plus a learnt change


def build(references=1):
    return TinyNet()


def contract(references=1):
    if references != 1:
        raise ValueError("TinyNet uses one reference pair.")
    return Contract(ROLES_ONE_REFERENCE, size_multiple=1)


def _loss(net, modules, x, y, m):
    import torch.nn.functional as F

    from models.losses import keep_observed

    raw = net(x)
    pred = keep_observed(raw, y, m)
    return F.mse_loss(pred, y), pred, raw


RECIPE = Recipe(_loss, learning_rate=5e-3)
'''


@pytest.fixture()
def tinynet(tmp_path, monkeypatch):
    """TinyNet in a temporary package outside the project, registered with one call."""
    from models import registry

    package = tmp_path / "contrib"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tinynet.py").write_text(TINYNET)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "MODELS", dict(registry.MODELS))
    yield registry.register(registry.ModelSpec("tinynet", "TinyNet", "LST Fusion's tests", "contrib.tinynet",
                                               "a contributor, 2026"))
    for name in [m for m in sys.modules if m.startswith("contrib")]:
        del sys.modules[name]


def test_a_network_added_as_one_module_trains_resumes_exports_and_fuses(tinynet, provider, tiny_patches, tmp_path):
    import processing

    from backend.fusion.fuse import fuse
    from backend.fusion.onnx_model import OnnxParams
    from backend.io.readers import read_lst
    from backend.training.onnx_export import read_model_card

    algorithm = provider.algorithm("train").create()
    options = algorithm.parameterDefinition("MODEL").options()
    assert options[-1] == "TinyNet (a contributor, 2026)" and options[:3] == [
        "EDCSTFN (Tan et al., 2019)", "STTFN (Yin et al., 2020)", "MLFF-GAN (Song et al., 2022)"]
    params = {"DATASET": str(tiny_patches), "MODEL": len(options) - 1, "EPOCHS": 1, "BATCH_SIZE": 4,
              "MAX_BATCHES": 3, "OUTPUT_FOLDER": str(tmp_path / "run")}
    first = processing.run("lst_fusion:train", params, feedback=QgsProcessingFeedback())
    assert read_model_card(first["ONNX"]).training["epochs"] == 1
    resumed = processing.run("lst_fusion:train", {**params, "EPOCHS": 2, "RESUME": True},
                             feedback=QgsProcessingFeedback())
    card = read_model_card(resumed["ONNX"])
    assert card.model == "tinynet" and card.title == "TinyNet" and card.training["epochs"] == 2
    root = tiny_patches.parent
    fine = sorted(str(p) for p in (root / "landsat").glob("*_filled.tif"))
    coarse = sorted(str(p) for p in (root / "modis30").glob("*.tif"))
    fused = fuse("onnx", [(fine[1], coarse[1])], coarse[2], tmp_path / "fused.tif", OnnxParams(resumed["ONNX"]))
    data = read_lst(fused.path).data
    assert np.isfinite(data).mean() > 0.99 and 250 < np.nanmedian(data) < 340


def test_listing_the_models_imports_no_torch():
    """The plugin builds Train's MODEL choice when QGIS starts: that must not load torch."""
    import subprocess

    code = ("import sys; from models import registry; [s.label for s in registry.MODELS.values()]; "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    assert done.stdout.strip() == "False", done.stderr
