"""Results checked before they are written: broken models, edited cards, implausible predictions.

Each broken model is a small ONNX graph made here (onnx.helper) and sealed with a real model
card, as a user's file would be: the fusion must refuse it with a message naming it, before
any output appears.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
import rasterio
from onnx import TensorProto, helper

from backend.errors import InputError
from backend.fusion.fuse import Plausibility, fuse
from backend.fusion.onnx_model import OnnxParams
from backend.io.readers import read_lst
from backend.training.onnx_export import LEGACY_DIGEST_KEY, read_model_card, set_card
from models.card import CARD_KEY, ModelCard

ROLES = ("coarse_t1", "fine_t1", "coarse_t2")
STATS = {"fine": {"mean": 295.0, "std": 6.0}, "coarse": {"mean": 294.0, "std": 4.0}}


def _card(roles=ROLES) -> ModelCard:
    return ModelCard(model="sttfn", title="Test graph", paper="-", model_version="1", package_version="test",
                     roles=roles, size_multiple=1, units="K", normalisation=STATS, parameters=0)


def _graph(path: Path, body: str, shift: float = 0.0, scale: float = 1.0, offset: float = 0.0,
           roles=ROLES) -> Path:
    """A model over the card's channels: 'fine' = (fine_t1 - shift) * scale + offset; 'all' = every channel;
    'half' = fine_t1 at half the size."""
    fine = roles.index("fine_t1")
    const = [helper.make_tensor(n, TensorProto.FLOAT, [], [v]) for n, v in
             (("shift", shift), ("scale", scale), ("offset", offset))]
    idx = [helper.make_tensor(n, TensorProto.INT64, [1], [v]) for n, v in
           (("start", fine), ("end", fine + 1), ("axis", 1))]
    nodes = [helper.make_node("Slice", ["inputs", "start", "end", "axis"], ["f"])]
    if body == "fine":
        nodes += [helper.make_node("Sub", ["f", "shift"], ["a"]), helper.make_node("Mul", ["a", "scale"], ["b"]),
                  helper.make_node("Add", ["b", "offset"], ["lst"])]
    elif body == "all":
        nodes += [helper.make_node("Identity", ["inputs"], ["lst"])]
    else:
        nodes += [helper.make_node("MaxPool", ["f"], ["lst"], kernel_shape=[2, 2], strides=[2, 2])]
    graph = helper.make_graph(
        nodes, "test", [helper.make_tensor_value_info("inputs", TensorProto.FLOAT, ["n", len(roles), "h", "w"])],
        [helper.make_tensor_value_info("lst", TensorProto.FLOAT, ["n", "c", "oh", "ow"])], initializer=[*const, *idx])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    set_card(proto, _card(roles).to_json())
    onnx.save(proto, str(path))
    return path


@pytest.fixture(scope="module")
def chain(tiny_patches):
    root = tiny_patches.parent
    fine = sorted(str(p) for p in (root / "landsat").glob("*_filled.tif"))
    coarse = sorted(str(p) for p in (root / "modis30").glob("*.tif"))
    return [(fine[1], coarse[1])], coarse[2]


def _fuse(model: Path, out: Path, chain, **options):
    pairs, target = chain
    return fuse("onnx", pairs, target, out, OnnxParams(str(model), **options))


def test_a_plain_graph_fuses(chain, tmp_path):
    """The control: the same kind of graph, passing fine_t1 through, is a valid model."""
    result = _fuse(_graph(tmp_path / "copy.onnx", "fine"), tmp_path / "out.tif", chain, coarse_consistency=False)
    assert np.nanmedian(read_lst(result.path).data) == pytest.approx(np.nanmedian(read_lst(chain[0][0][0]).data),
                                                                      abs=1e-3)


@pytest.mark.parametrize("body, message", [
    ("all", r"returns an array of shape \(1, 3, 32, 32\) for a 32 × 32 px tile; its card promises one LST"),
    ("half", r"returns an array of shape \(1, 1, 16, 16\)"),
], ids=["every-channel", "half-size"])
def test_a_model_that_breaks_its_card_is_refused_before_tiling(body, message, chain, tmp_path):
    model = _graph(tmp_path / f"{body}.onnx", body)
    with pytest.raises(InputError, match=rf"MODEL: {body}.onnx {message}"):
        _fuse(model, tmp_path / "out.tif", chain)
    assert list(tmp_path.iterdir()) == [model]


@pytest.mark.parametrize("kind, graph, message", [
    ("hot", dict(scale=0.0, offset=1000.0), r"hot.onnx predicts 1000 K on typical inputs"),
    ("huge", dict(scale=1e9), r"huge.onnx predicts 2.95e\+11 K on typical inputs"),
    ("nan", dict(offset=float("nan")), r"nan.onnx predicts NaN or infinite values"),
], ids=["1000K", "1e11K", "NaN"])
def test_a_model_predicting_what_is_not_lst_is_refused(kind, graph, message, chain, tmp_path):
    model = _graph(tmp_path / f"{kind}.onnx", "fine", **graph)
    with pytest.raises(InputError, match=rf"MODEL: {message}"):
        _fuse(model, tmp_path / "out.tif", chain)
    assert not (tmp_path / "out.tif").exists()


def test_an_implausible_prediction_is_not_written_unless_allowed(chain, tmp_path):
    """Right on typical inputs, wild on real ones: the written values are checked too."""
    model = _graph(tmp_path / "wild.onnx", "fine", shift=295.0, scale=1e6, offset=295.0)
    with pytest.raises(InputError, match=r": Trained deep model \(wild.onnx\): the prediction is not land surface "
                                         r"temperature .* set ALLOW_IMPLAUSIBLE to write it anyway"):
        _fuse(model, tmp_path / "out.tif", chain, coarse_consistency=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wild.onnx"]
    written = _fuse(model, tmp_path / "out.tif", chain, coarse_consistency=False, allow_implausible=True)
    with rasterio.open(written.path) as src:  # our readers refuse it as an input, as they should
        assert np.nanmax(np.abs(src.read(1))) > 1e5
    hot = _graph(tmp_path / "hot.onnx", "fine", scale=0.0, offset=1000.0)
    allowed = _fuse(hot, tmp_path / "hot.tif", chain, coarse_consistency=False, allow_implausible=True)
    with rasterio.open(allowed.path) as src:
        assert np.nanmedian(src.read(1)) == pytest.approx(1000.0)


def test_plausibility_tally():
    tally = Plausibility()
    tally.add(np.full((10, 10), 300.0, np.float32))
    tally.check("ok")
    tally.add(np.full((10, 1), 5000.0, np.float32))  # 9 % of the pixels: a broken part of the scene
    with pytest.raises(InputError, match=r"bad: the prediction is not land surface temperature .* 9% of pixels"):
        tally.check("bad")


def _edit_card(path: Path, edit) -> None:
    import json

    proto = onnx.load(str(path))
    for entry in proto.metadata_props:
        if entry.key == CARD_KEY:
            card = json.loads(entry.value)
            edit(card)
            entry.value = json.dumps(card, sort_keys=True)
    onnx.save(proto, str(path))


@pytest.mark.parametrize("edit", [
    lambda c: c.__setitem__("roles", ["fine_t1", "coarse_t1", "coarse_t2"]),
    lambda c: c["normalisation"]["fine"].__setitem__("mean", 290.0),
    lambda c: c.__setitem__("title", "Renamed"),
], ids=["roles-swapped", "normalisation", "title"])
def test_a_card_edited_in_place_is_refused(edit, chain, tmp_path):
    model = _graph(tmp_path / "edited.onnx", "fine")
    assert read_model_card(model).roles == ROLES
    _edit_card(model, edit)
    with pytest.raises(InputError, match=r"edited.onnx: its weights, graph or model card were modified after "
                                         r"export \(checksum mismatch\)"):
        read_model_card(model)
    with pytest.raises(InputError, match="model card were modified"):
        _fuse(model, tmp_path / "out.tif", chain)


def test_a_model_sealed_by_the_old_checksum_is_refused(tmp_path):
    model = _graph(tmp_path / "old.onnx", "fine")
    proto = onnx.load(str(model))
    for entry in proto.metadata_props:
        if entry.key == "lst_fusion_sha256":
            entry.key = LEGACY_DIGEST_KEY
    onnx.save(proto, str(model))
    with pytest.raises(InputError, match=r"old.onnx: exported by LST Fusion 0.2, whose checksum does not cover the "
                                         r"model card"):
        read_model_card(model)


# ------------------------------------------------------------------ training

def _config(**extra):
    from backend.training.train import TrainConfig

    return TrainConfig(**{"model": "sttfn", "epochs": 2, "batch_size": 4, "max_batches": 3, **extra})


@pytest.mark.parametrize("bad, message", [
    (float("nan"), r"the loss is not a number"),
    (1e9, r"the loss is 1e\+09, \d+× the first"),
], ids=["nan", "exploding"])
def test_training_that_diverges_stops_and_exports_nothing(bad, message, tiny_patches, tmp_path, monkeypatch):
    from backend.errors import TrainingDiverged
    from backend.training import train as training

    real, calls = training._Trainer.step, {"n": 0}

    def step(self, x, y, m):
        calls["n"] += 1
        loss = real(self, x, y, m)
        return bad if calls["n"] == 5 else loss  # the second batch of the second epoch

    monkeypatch.setattr(training._Trainer, "step", step)
    with pytest.raises(TrainingDiverged, match=rf"Training diverged in epoch 2, batch 2: {message}\. Nothing was "
                                               r"exported; .*last.pt keeps the last good epoch"):
        training.train(tiny_patches, tmp_path / "run", _config())
    assert not list((tmp_path / "run").glob("*.onnx"))
    assert training.load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["cursor"]["epoch"] == 1


def test_a_dataset_without_validation_patches_says_so(provider, tiny_patches, tmp_path):
    from backend.preprocess.patches import build_patch_dataset
    from backend.progress import Progress
    from backend.training.train import train

    root = tiny_patches.parent
    build_patch_dataset([root / "landsat"], [root / "modis30"], tmp_path / "patches", patch_size=32, stride=16,
                        test_fraction=0.0, val_fraction=0.0)
    warnings: list[str] = []
    result = train(tmp_path / "patches", tmp_path / "run", _config(epochs=1),
                   progress=Progress(on_warning=warnings.append))
    assert any("no validation patches" in w and "VAL_RMSE is NaN" in w for w in warnings), warnings
    assert result.best_val_rmse is None
    card = read_model_card(result.onnx)
    assert card.validation["rmse_k"] is None and card.training["validation_dates"] == []
    import processing
    from qgis.core import QgsProcessingFeedback

    feedback = QgsProcessingFeedback()
    said: list[str] = []
    feedback.pushWarning = said.append
    res = processing.run("lst_fusion:train", {"DATASET": str(tmp_path / "patches"), "MODEL": 1, "EPOCHS": 1,
                                              "BATCH_SIZE": 4, "MAX_BATCHES": 2,
                                              "OUTPUT_FOLDER": str(tmp_path / "run2")}, feedback=feedback)
    assert np.isnan(res["VAL_RMSE"]) and any("no validation patches" in w for w in said)


def _damage(folder: Path, how: str) -> None:
    if how == "truncated-images":
        data = (folder / "images.npy").read_bytes()
        (folder / "images.npy").write_bytes(data[: len(data) // 3])
    elif how == "missing-observed":
        (folder / "observed.npy").unlink()
    elif how == "broken-manifest":
        (folder / "manifest.json").write_text((folder / "manifest.json").read_text()[:200])
    elif how == "index-outside":
        index = np.load(folder / "index_train.npy")
        index[0, 1] = 10_000
        np.save(folder / "index_train.npy", index)


@pytest.mark.parametrize("how", ["truncated-images", "missing-observed", "broken-manifest", "index-outside"])
def test_a_damaged_patch_folder_gives_one_clear_message(how, provider, tiny_patches, tmp_path):
    import shutil

    import processing
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    damaged = tmp_path / "patches"
    shutil.copytree(tiny_patches, damaged)
    _damage(damaged, how)
    with pytest.raises(QgsProcessingException) as err:
        processing.run("lst_fusion:train", {"DATASET": str(damaged), "EPOCHS": 1, "OUTPUT_FOLDER":
                                            str(tmp_path / "run")}, feedback=QgsProcessingFeedback())
    message = str(err.value)
    assert re.search(r"patches: the patch dataset is damaged \(.*\); a file is missing, truncated or edited\. Run "
                     r"'Build patches' again", message), message
    assert "Traceback" not in message and not (tmp_path / "run").exists()
