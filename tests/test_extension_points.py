"""Extension points: a network is one module and one registry entry, with nothing else to edit."""

from __future__ import annotations

import sys
from pathlib import Path

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
def contrib(tmp_path, monkeypatch):
    """write(module, source): a module of a temporary package ``contrib`` outside the project, importable."""
    package = tmp_path / "contrib"
    package.mkdir()
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield lambda module, source: (package / f"{module}.py").write_text(source)
    for name in [m for m in sys.modules if m == "contrib" or m.startswith("contrib.")]:
        del sys.modules[name]


@pytest.fixture()
def tinynet(contrib, monkeypatch):
    """TinyNet in the contributor's package, registered with one call."""
    from models import registry

    contrib("tinynet", TINYNET)
    monkeypatch.setattr(registry, "MODELS", dict(registry.MODELS))
    return registry.register(registry.ModelSpec("tinynet", "TinyNet", "LST Fusion's tests", "contrib.tinynet",
                                                "a contributor, 2026", "one convolution on the change."))


def test_a_network_added_as_one_module_trains_resumes_exports_and_fuses(tinynet, provider, tiny_patches, tmp_path):
    import processing

    from backend.fusion.fuse import fuse
    from backend.fusion.onnx_model import OnnxParams
    from backend.io.readers import read_lst
    from backend.training.onnx_export import read_model_card

    algorithm = provider.algorithm("train").create()
    model = algorithm.parameterDefinition("MODEL")
    options = model.options()  # static strings: the registry's names, the newest last
    assert options[-1] == "tinynet" and options[:3] == ["edcstfn", "sttfn", "mlffgan"]
    assert "tinynet: TinyNet (a contributor, 2026)" in model.help()
    assert "TinyNet: one convolution on the change." in algorithm.shortHelpString()
    params = {"DATASET": str(tiny_patches), "MODEL": "tinynet", "EPOCHS": 1, "BATCH_SIZE": 4,
              "MAX_BATCHES": 3, "OUTPUT_FOLDER": str(tmp_path / "run")}
    first = processing.run("lst_fusion:train", params, feedback=QgsProcessingFeedback())
    assert read_model_card(first["ONNX"]).training["epochs"] == 1
    # by index, as saved models and scripts of earlier versions choose
    resumed = processing.run("lst_fusion:train", {**params, "MODEL": len(options) - 1, "EPOCHS": 2,
                                                  "RESUME": True}, feedback=QgsProcessingFeedback())
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


CHANGE = '''"""A contributor's fusion method: the fine reference plus MODIS's change, nothing else."""
from dataclasses import dataclass

from backend.fusion.methods import FusionMethod
from backend.parameters import param


@dataclass(frozen=True)
class ChangeParams:
    gain: float = param(1.0, "GAIN", "Share of MODIS's change passed on", 0.0, 2.0)
    uncertainty: bool = param(False, "UNCERTAINTY", "Also write a per-pixel uncertainty raster")

    def validate(self):
        pass


def _kernel(arrays, tile, params, state):
    change = arrays["coarse_t2"] - arrays["coarse_t1"]
    return (arrays["fine_t1"] + params.gain * change)[tile.inner]


def method(name, uncertainty=None):
    return FusionMethod(name, f"{name} (fine reference + MODIS change)", ChangeParams, lambda p: 1,
                        lambda inputs, p, progress, cache: None, lambda p: 0, _kernel, label=name.upper(),
                        help=f"{name.upper()}: the fine reference plus GAIN times MODIS's change.",
                        uncertainty=uncertainty)
'''


@pytest.fixture()
def change_methods(contrib, monkeypatch):
    """Two methods from the contributor's package: one without uncertainty coefficients, one with."""
    import importlib

    from backend.fusion import methods

    contrib("change", CHANGE)
    monkeypatch.setattr(methods, "METHODS", dict(methods.METHODS))
    change = importlib.import_module("contrib.change")
    return methods.register(change.method("change")), methods.register(change.method("change2", (1.8, 0.1, 0.4)))


def test_a_fusion_method_added_as_one_module(change_methods, provider, tiny_patches, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    root = tiny_patches.parent
    fine = sorted(str(p) for p in (root / "landsat").glob("*_filled.tif"))
    coarse = sorted(str(p) for p in (root / "modis30").glob("*.tif"))
    for alg_id in ("fuse", "fuse_series"):
        algorithm = provider.algorithm(alg_id).create()
        method = algorithm.parameterDefinition("METHOD")
        assert method.options()[-2:] == ["change", "change2"]  # by name (static strings), the newest last
        assert method.options()[:3] == ["starfm", "estarfm", "onnx"]  # saved models keep their METHOD numbers
        assert "change2: change2 (fine reference + MODIS change)" in method.help()
        assert algorithm.parameterDefinition("GAIN") is not None
        assert "CHANGE: the fine reference plus GAIN times MODIS" in algorithm.shortHelpString()
    params = {"METHOD": "change", "GAIN": 0.5, "FINE_T1": fine[0], "COARSE_T1": coarse[0], "COARSE_T2": coarse[1],
              "OUTPUT": str(tmp_path / "fused.tif")}
    res = processing.run("lst_fusion:fuse", params, feedback=QgsProcessingFeedback())
    from backend.io.readers import read_lst

    expected = read_lst(fine[0]).data + 0.5 * (read_lst(coarse[1]).data - read_lst(coarse[0]).data)
    np.testing.assert_allclose(read_lst(res["OUTPUT"]).data, expected, atol=1e-4)
    series = processing.run("lst_fusion:fuse_series", {"FINE_FILES": fine[:2], "COARSE_FILES": coarse[:3],
                                                        "METHOD": 3, "LOAD_OUTPUTS": False,
                                                        "OUTPUT_FOLDER": str(tmp_path / "season")},
                            feedback=QgsProcessingFeedback())
    assert series["DATE_COUNT"] == 1
    # Without coefficients, UNCERTAINTY is refused before anything is written.
    with pytest.raises(QgsProcessingException, match=r"UNCERTAINTY: CHANGE has no calibrated uncertainty model"):
        processing.run("lst_fusion:fuse", {**params, "UNCERTAINTY": True, "OUTPUT": str(tmp_path / "u.tif")},
                       feedback=QgsProcessingFeedback())
    assert not list(tmp_path.glob("u*.tif"))
    # With them, the σ raster is written beside the prediction.
    res = processing.run("lst_fusion:fuse", {**params, "METHOD": "change2", "UNCERTAINTY": True,
                                             "OUTPUT": str(tmp_path / "u.tif")}, feedback=QgsProcessingFeedback())
    assert Path(res["UNCERTAINTY"]).name == "u_uncertainty.tif"


def test_a_saved_model_keeps_its_method_when_the_registry_changes(change_methods, provider, tiny_patches,
                                                                  tmp_path, monkeypatch):
    """A .model3 saved with METHOD by name runs the same method after a later version inserts a method before
    it and appends one after it (by index it would now run another one)."""
    import dataclasses

    import processing
    from qgis.core import (
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelOutput,
    )

    from backend.fusion import methods
    from backend.io.readers import read_lst

    root = tiny_patches.parent
    fine = sorted(str(p) for p in (root / "landsat").glob("*_filled.tif"))
    coarse = sorted(str(p) for p in (root / "modis30").glob("*.tif"))
    model = QgsProcessingModelAlgorithm("saved", "tests")
    child = QgsProcessingModelChildAlgorithm("lst_fusion:fuse")
    child.setChildId("fuse")
    saved_values = {"METHOD": "change", "GAIN": 0.5, "FINE_T1": fine[0], "COARSE_T1": coarse[0],
                    "COARSE_T2": coarse[1]}
    for name, value in saved_values.items():
        child.addParameterSources(name, [QgsProcessingModelChildParameterSource.fromStaticValue(value)])
    output = QgsProcessingModelOutput("fused", "Fused LST")
    output.setChildId("fuse")
    output.setChildOutputName("OUTPUT")
    child.setModelOutputs({"fused": output})
    model.addChildAlgorithm(child)
    saved = tmp_path / "saved.model3"
    assert model.toFile(str(saved))
    index_then = list(methods.METHODS).index("change")

    def keep_fine(arrays, tile, params, state):
        return arrays["fine_t1"][tile.inner]

    change = change_methods[0]
    inserted = dataclasses.replace(change, name="inserted", title="inserted (the fine reference)", label="INSERTED",
                                   kernel=keep_fine)
    appended = dataclasses.replace(inserted, name="appended", title="appended (the fine reference)",
                                   label="APPENDED")
    monkeypatch.setattr(methods, "METHODS", {"inserted": inserted, **methods.METHODS, "appended": appended})
    assert list(methods.METHODS).index("change") != index_then  # a saved index would now pick another method

    reopened = QgsProcessingModelAlgorithm()
    assert reopened.fromFile(str(saved))
    (destination,) = [p.name() for p in reopened.destinationParameterDefinitions()]  # QGIS names it by version
    res = processing.run(reopened, {destination: str(tmp_path / "fused.tif")}, feedback=QgsProcessingFeedback())
    expected = read_lst(fine[0]).data + 0.5 * (read_lst(coarse[1]).data - read_lst(coarse[0]).data)
    np.testing.assert_allclose(read_lst(res[destination]).data, expected, atol=1e-4)


def test_a_parameter_the_method_does_not_use_is_reported(provider, tiny_patches, tmp_path):
    import processing

    root = tiny_patches.parent
    fine = sorted(str(p) for p in (root / "landsat").glob("*_filled.tif"))
    coarse = sorted(str(p) for p in (root / "modis30").glob("*.tif"))
    feedback = QgsProcessingFeedback()
    said: list[str] = []
    feedback.pushWarning = said.append
    processing.run("lst_fusion:fuse", {"METHOD": 0, "WINDOW": 11, "TILE": 128, "MIN_COARSE_CHANGE": 2.0,
                                       "FINE_T1": fine[0], "COARSE_T1": coarse[0], "COARSE_T2": coarse[1],
                                       "OUTPUT": str(tmp_path / "fused.tif")}, feedback=feedback)
    assert "TILE is not a parameter of STARFM; its value was not used." in said
    assert not any("MIN_COARSE_CHANGE" in w for w in said)  # left at its default: nothing to say


def test_no_method_or_model_name_is_compared_outside_the_registries():
    """Everything keyed by a method or a model lives on its registry entry: no code compares a registered
    name, or keys a table by one, anywhere else in backend/, models/ or the plugin."""
    import re

    from backend.fusion.methods import METHODS
    from models.registry import MODELS

    repo = Path(__file__).resolve().parents[1]
    names = "|".join(sorted({*METHODS, *MODELS}))
    pattern = re.compile(rf"""(==|!=|\bin)\s*\(?["']({names})["']|["']({names})["']\s*(==|!=|:(?!\S))""")
    registries = {repo / "backend" / "fusion" / "methods.py", repo / "models" / "registry.py"}
    found = [f"{path.relative_to(repo)}:{n}: {line.strip()}"
             for folder in ("backend", "models", "lst_fusion_plugin") for path in sorted((repo / folder).rglob("*.py"))
             if path not in registries
             for n, line in enumerate(path.read_text().splitlines(), start=1) if pattern.search(line)]
    assert found == [], "\n".join(found)
    assert pattern.search('if spec.name == "edcstfn":') and pattern.search('LR = {"mlffgan": 2e-4}')
