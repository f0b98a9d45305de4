"""Results checked before they are written: broken models, edited cards, implausible predictions.

Each broken model is a small ONNX graph made here (onnx.helper) and sealed with a real model
card, as a user's file would be: the fusion must refuse it with a message naming it, before
any output appears.
"""

from __future__ import annotations

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
