"""Fusion with trained ONNX models: seamless tiles, parity with torch, model-card checks, Processing."""

from __future__ import annotations

import json
import os
import subprocess
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from qgis.core import QgsProcessingFeedback, QgsProject

from backend.errors import InputError
from backend.fusion.fuse import fuse
from backend.fusion.methods import METHODS
from backend.fusion.onnx_model import OnnxParams
from backend.io.readers import read_lst
from backend.training.onnx_export import export_onnx
from models import registry
from models.card import ModelCard
from models.contract import KelvinModel, Normalise, PaddedModel, exportable

REPO = Path(__file__).resolve().parents[1]
STATS = {"fine": {"mean": 295.0, "std": 6.0}, "coarse": {"mean": 294.0, "std": 4.0}}
MODELS = [("sttfn", 1), ("sttfn", 2), ("edcstfn", 1), ("edcstfn", 2), ("mlffgan", 1)]


def _export(name: str, refs: int, path: Path) -> tuple[Path, torch.nn.Module]:
    spec = registry.get(name)
    contract = spec.contract(refs)
    torch.manual_seed(3)
    network = spec.build(refs).eval()
    kelvin = exportable(network, Normalise(contract, STATS))
    card = ModelCard(model=name, title=spec.title, paper=spec.paper, model_version=spec.version,
                     package_version="test", roles=contract.roles, size_multiple=contract.size_multiple, units="K",
                     normalisation=STATS, parameters=registry.parameter_count(network),
                     scene_moments=kelvin.scene_moments)
    reference = kelvin if kelvin.scene_moments else KelvinModel(PaddedModel(network, contract),
                                                                Normalise(contract, STATS))
    return export_onnx(kelvin, card, path), reference


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[tuple[str, int], tuple[Path, torch.nn.Module]]:
    root = tmp_path_factory.mktemp("onnx_models")
    return {(n, r): _export(n, r, root / f"{n}_{r}.onnx") for n, r in MODELS}


@pytest.fixture(scope="module")
def chain(tiny_patches) -> tuple[list[str], list[str]]:
    """Gap-filled Landsat and resampled MODIS of the tiny series (96 × 96 px, 6 dates)."""
    root = tiny_patches.parent
    return (sorted(str(p) for p in (root / "landsat").glob("*_filled.tif")),
            sorted(str(p) for p in (root / "modis30").glob("*.tif")))


def _pairs(chain, refs):
    fine, coarse = chain
    return [(fine[1], coarse[1])] + ([(fine[3], coarse[3])] if refs == 2 else []), coarse[2]


@pytest.mark.parametrize(("name", "refs"), MODELS)
def test_tiled_equals_untiled_and_torch(name, refs, models, chain, tmp_path):
    """With the default options (the coarse-consistency correction on, run after blending) and without."""
    path, torch_model = models[(name, refs)]
    pairs, target = _pairs(chain, refs)
    whole = fuse("onnx", pairs, target, tmp_path / "whole.tif", OnnxParams(str(path), tile=512, overlap=0))
    tiled = fuse("onnx", pairs, target, tmp_path / "tiled.tif", OnnxParams(str(path), tile=64, overlap=16))
    a, b = read_lst(whole.path).data, read_lst(tiled.path).data
    raw = fuse("onnx", pairs, target, tmp_path / "raw.tif",
               OnnxParams(str(path), tile=512, overlap=0, coarse_consistency=False))
    raw_tiled = fuse("onnx", pairs, target, tmp_path / "raw_tiled.tif",
                     OnnxParams(str(path), tile=64, overlap=16, coarse_consistency=False))
    assert OnnxParams(str(path)).coarse_consistency
    assert np.isfinite(a).mean() > 0.99 and np.array_equal(np.isfinite(a), np.isfinite(b))
    inner = (slice(16, -16), slice(16, -16))  # away from the scene's borders
    # MLFF-GAN's AdaIN takes the scene's statistics from a first pass, so its tiles agree too.
    assert np.nanmax(np.abs(a - b)[inner]) < 0.01, name
    r = read_lst(raw.path).data
    assert np.nanmax(np.abs(r - read_lst(raw_tiled.path).data)[inner]) < 0.01, name
    assert not np.allclose(a, r, equal_nan=True)  # the correction did something
    a = r
    # The untiled ONNX Runtime result is the torch model's, in Kelvin.
    arrays = {"fine_t1": pairs[0][0], "coarse_t1": pairs[0][1], "coarse_t2": target}
    if refs == 2:
        arrays.update(fine_t3=pairs[1][0], coarse_t3=pairs[1][1])
    roles = registry.get(name).contract(refs).roles
    x = np.stack([read_lst(arrays[r]).data for r in roles])[None]
    ok = np.isfinite(x).all(axis=(0, 1))
    xt = torch.from_numpy(np.nan_to_num(x, nan=295.0))
    with torch.no_grad():
        if torch_model.scene_moments:  # the scene's statistics over the valid pixels, as fusion's first pass
            weight = torch.from_numpy(ok.astype(np.float32))[None, None]
            moments = torch_model(xt, weight, torch.zeros(torch_model.scene_moments))[1]
            expected = torch_model(xt, weight, moments)[0].numpy()[0, 0]
        else:
            expected = torch_model(xt).numpy()[0, 0]
    assert np.abs(a - expected)[ok].max() < 1e-3


def test_mlffgan_records_its_scene_statistics_and_an_older_export_still_runs(models, chain, tmp_path):
    """The card says how many scene moments the graph takes; a model exported before (no moments, each tile
    its own AdaIN statistics) still fuses, with a warning that says what to do."""
    from backend.progress import Progress
    from backend.training.onnx_export import read_model_card

    path, _ = models[("mlffgan", 1)]
    assert read_model_card(path).scene_moments == registry.get("mlffgan").build(1).MOMENTS > 0
    assert read_model_card(models[("sttfn", 1)][0]).scene_moments == 0
    spec = registry.get("mlffgan")
    contract = spec.contract(1)
    torch.manual_seed(3)
    network = spec.build(1).eval()
    card = ModelCard(model="mlffgan", title=spec.title, paper=spec.paper, model_version=spec.version,
                     package_version="0.5", roles=contract.roles, size_multiple=contract.size_multiple, units="K",
                     normalisation=STATS, parameters=registry.parameter_count(network))
    old = export_onnx(KelvinModel(network, Normalise(contract, STATS)), card, tmp_path / "old.onnx")
    warnings = []
    pairs, target = _pairs(chain, 1)
    result = fuse("onnx", pairs, target, tmp_path / "old.tif", OnnxParams(str(old)),
                  progress=Progress(on_warning=warnings.append))
    assert np.isfinite(read_lst(result.path).data).mean() > 0.99
    assert any("without scene statistics" in w and "export it again" in w for w in warnings), warnings


def test_model_for_other_inputs_is_refused(models, chain, tmp_path):
    two, _ = models[("sttfn", 2)]
    one, _ = models[("sttfn", 1)]
    pairs, target = _pairs(chain, 1)
    with pytest.raises(InputError, match=r"Trained deep model uses 2 reference pair\(s\).*1 given.*FINE_T3"):
        fuse("onnx", pairs, target, tmp_path / "x.tif", OnnxParams(str(two)))
    pairs2, _ = _pairs(chain, 2)
    with pytest.raises(InputError, match=r"uses 1 reference pair\(s\).*2 given"):
        fuse("onnx", pairs2, target, tmp_path / "x.tif", OnnxParams(str(one)))
    assert not (tmp_path / "x.tif").exists()


def test_bad_model_files_are_refused(models, chain, tmp_path):
    pairs, target = _pairs(chain, 1)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(os.urandom(4096))
    plain = tmp_path / "plain.onnx"
    proto = onnx.load(str(models[("sttfn", 1)][0]))
    del proto.metadata_props[:]
    onnx.save(proto, str(plain))
    tampered = tmp_path / "tampered.onnx"
    proto = onnx.load(str(models[("sttfn", 1)][0]))
    weights = onnx.numpy_helper.to_array(proto.graph.initializer[0]).copy()
    proto.graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(weights * 1.01, proto.graph.initializer[0].name))
    onnx.save(proto, str(tampered))
    cases = {corrupt: "corrupt.onnx: not a readable ONNX model", Path(target): "not a readable ONNX model",
             plain: "plain.onnx: an ONNX model without an LST Fusion model card",
             tampered: "tampered.onnx: its weights, graph or model card were modified",
             tmp_path / "missing.onnx": "MODEL: .*missing.onnx not found"}
    for model, message in cases.items():
        with pytest.raises(InputError, match=message):
            fuse("onnx", pairs, target, tmp_path / "x.tif", OnnxParams(str(model)))
    with pytest.raises(InputError, match="MODEL: give the .onnx file"):
        fuse("onnx", pairs, target, tmp_path / "x.tif", OnnxParams(""))
    with pytest.raises(InputError, match="TILE_OVERLAP must lie between 0 and less than half of TILE"):
        fuse("onnx", pairs, target, tmp_path / "x.tif", OnnxParams(str(plain), tile=64, overlap=32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.onnx", "plain.onnx", "tampered.onnx"]



class _WideReach(torch.nn.Module):
    """The fine reference plus MODIS's change averaged over 25 × 25 px: reaches 12 px."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        change = torch.nn.functional.avg_pool2d(z[:, 2:3] - z[:, 0:1], 25, stride=1, padding=12,
                                                count_include_pad=False)
        return z[:, 1:2] + change


def test_the_default_overlap_covers_the_networks_reach_and_a_wider_one_is_named(models, chain, tmp_path):
    """Blending weighs the outer half of the overlap zero, so tiles equal the whole scene where the model's
    reach is within it: the registry's networks reach no further than the default overlap covers; a model
    reaching 12 px is named with the overlap it needs, and with that overlap its tiles equal the whole."""
    import onnxruntime as ort

    from backend.fusion.onnx_model import model_card, reach
    from backend.progress import LSTWarning

    for (name, refs), (path, _) in models.items():
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert 0 < reach(session, model_card(path)) <= OnnxParams().overlap // 2, (name, refs)
    stats = {"fine": {"mean": 295.0, "std": 5.0}, "coarse": {"mean": 295.0, "std": 5.0}}
    contract = registry.get("sttfn").contract(1)
    card = ModelCard(model="wide", title="Wide reach", paper="", model_version="1", package_version="test",
                     roles=contract.roles, size_multiple=1, units="K", normalisation=stats, parameters=0)
    wide = export_onnx(KelvinModel(_WideReach(), Normalise(contract, stats)), card, tmp_path / "wide.onnx")
    assert reach(ort.InferenceSession(str(wide), providers=["CPUExecutionProvider"]), model_card(wide)) == 12
    pairs, target = _pairs(chain, 1)
    with pytest.warns(LSTWarning, match="TILE_OVERLAP: wide.onnx's output depends on inputs up to 12 px away, "
                                        "more than half of the 16 px overlap.*set TILE_OVERLAP to 24 px"):
        fuse("onnx", pairs, target, tmp_path / "narrow.tif", OnnxParams(str(wide), tile=64, overlap=16,
                                                                         coarse_consistency=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error", LSTWarning)  # neither a scene in one tile nor the overlap it needs warns
        whole = fuse("onnx", pairs, target, tmp_path / "whole.tif", OnnxParams(str(wide), tile=512, overlap=0,
                                                                               coarse_consistency=False))
        tiled = fuse("onnx", pairs, target, tmp_path / "tiled.tif", OnnxParams(str(wide), tile=64, overlap=24,
                                                                               coarse_consistency=False))
    a, b = read_lst(whole.path).data, read_lst(tiled.path).data
    assert np.nanmax(np.abs(a - b)[12:-12, 12:-12]) < 1e-3
    assert np.nanmax(np.abs(a - read_lst(tmp_path / "narrow.tif").data)[12:-12, 12:-12]) > 1e-3


def test_released_session_predicts_the_same(models, chain):
    """After a date's tiles the fusion asks ONNX Runtime to give its memory arena back; the session (kept for
    the next date of a series) must predict exactly as before."""
    from backend.fusion.inputs import load_fusion_inputs
    from backend.fusion.methods import get
    from backend.fusion.onnx_model import predict, release
    from backend.progress import Progress

    for key in (("sttfn", 1), ("mlffgan", 1)):
        path, _ = models[key]
        pairs, target = _pairs(chain, 1)
        inputs = load_fusion_inputs(pairs, target, 1)
        state = get("onnx").prepare(inputs, OnnxParams(str(path)), Progress(), {})
        arrays = {"fine_t1": read_lst(pairs[0][0]).data, "coarse_t1": read_lst(pairs[0][1]).data,
                  "coarse_t2": read_lst(target).data}
        before = predict(arrays, state)
        release(state)
        np.testing.assert_array_equal(predict(arrays, state), before)


def test_fuse_algorithm_with_a_model_file(provider, models, chain, tmp_path):
    import processing

    path, _ = models[("sttfn", 1)]
    pairs, target = _pairs(chain, 1)
    QgsProject.instance().removeAllMapLayers()
    res = processing.runAndLoadResults("lst_fusion:fuse", {
        "METHOD": list(METHODS).index("onnx"), "MODEL": str(path), "TILE": 64, "TILE_OVERLAP": 16,
        "FINE_T1": pairs[0][0], "COARSE_T1": pairs[0][1], "COARSE_T2": target,
        "OUTPUT": str(tmp_path / "deep.tif")}, feedback=QgsProcessingFeedback())
    date = res["DATE"]
    layer = QgsProject.instance().mapLayersByName(f"LST {date} sttfn_1 (K)")[0]
    assert layer.renderer().type() == "singlebandpseudocolor"
    assert read_lst(tmp_path / "deep.tif").product == "ONNX fusion"
    QgsProject.instance().removeAllMapLayers()


@pytest.mark.slow
def test_fuse_with_a_model_through_qgis_process(models, chain, tmp_path):
    path, _ = models[("edcstfn", 2)]
    pairs, target = _pairs(chain, 2)
    env = {**os.environ, "QGIS_CUSTOM_CONFIG_PATH": str(tmp_path / "cfg"), "QT_QPA_PLATFORM": "offscreen"}
    env.pop("QGIS_PLUGINPATH", None)
    run = subprocess.run([str(REPO / "scripts" / "qgis_process"), "run", "lst_fusion:fuse", "--json", "--",
                          f"METHOD={list(METHODS).index('onnx')}", f"MODEL={path}",
                          f"FINE_T1={pairs[0][0]}", f"COARSE_T1={pairs[0][1]}",
                          f"FINE_T3={pairs[1][0]}", f"COARSE_T3={pairs[1][1]}", f"COARSE_T2={target}",
                          f"OUTPUT={tmp_path / 'deep.tif'}"], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    results = json.loads(run.stdout[run.stdout.index("{"):])["results"]
    assert results["VALID_FRACTION"] > 0.99 and Path(results["OUTPUT"]).exists()


def test_shipped_model_is_small_and_says_what_it_is():
    from backend.fusion.onnx_model import SHIPPED, model_card, shipped_models

    assert shipped_models(), "a pretrained model ships in models/shipped/"
    for name in shipped_models():
        path = SHIPPED / f"{name}.onnx"
        assert path.stat().st_size < 5 * 2**20
        card = model_card(path)
        assert "SYNTHETIC" in card.training["notes"] and card.training["train_dates"]
        test = card.validation["test"]["mean"]
        assert test["rmse_k"] < test["modis_rmse_k"]  # it adds something over resampled MODIS, on its own data
        assert abs(test["shifted_8k_rmse_k"] - test["rmse_k"]) < 0.3  # it learned changes, not levels


def test_shipped_model_follows_a_change_of_level(chain, tmp_path):
    """Warm every input by 8 K (another region, another season): the prediction warms by 8 K."""
    import rasterio

    from backend.fusion.onnx_model import shipped_models

    pairs, target = _pairs(chain, 1)
    shifted = []
    for path in (pairs[0][0], pairs[0][1], target):
        out = tmp_path / Path(path).name
        with rasterio.open(path) as src:
            profile, data, tags = src.profile, src.read(1), src.tags()
        with rasterio.open(out, "w", **profile) as dst:
            dst.write(data + 8.0, 1)
            dst.update_tags(**tags)
        shifted.append(str(out))
    params = OnnxParams(shipped=shipped_models()[0])
    base = read_lst(fuse("onnx", pairs, target, tmp_path / "a.tif", params).path).data
    warm = read_lst(fuse("onnx", [(shifted[0], shifted[1])], shifted[2], tmp_path / "b.tif", params).path).data
    assert abs(float(np.nanmean(warm - base)) - 8.0) < 0.5


def test_fuse_algorithm_with_the_shipped_model(provider, chain, tmp_path):
    import processing

    from backend.fusion.onnx_model import shipped_models

    pairs, target = _pairs(chain, 1)
    QgsProject.instance().removeAllMapLayers()
    res = processing.runAndLoadResults("lst_fusion:fuse", {
        "METHOD": list(METHODS).index("onnx"), "SHIPPED_MODEL": 1, "FINE_T1": pairs[0][0],
        "COARSE_T1": pairs[0][1], "COARSE_T2": target, "OUTPUT": str(tmp_path / "deep.tif")},
        feedback=QgsProcessingFeedback())
    name = f"LST {res['DATE']} {shipped_models()[0]} (K)"
    assert QgsProject.instance().mapLayersByName(name)
    QgsProject.instance().removeAllMapLayers()


@pytest.mark.slow
def test_fuse_with_the_shipped_model_through_qgis_process(chain, tmp_path):
    pairs, target = _pairs(chain, 1)
    env = {**os.environ, "QGIS_CUSTOM_CONFIG_PATH": str(tmp_path / "cfg"), "QT_QPA_PLATFORM": "offscreen"}
    env.pop("QGIS_PLUGINPATH", None)
    run = subprocess.run([str(REPO / "scripts" / "qgis_process"), "run", "lst_fusion:fuse", "--json", "--",
                          f"METHOD={list(METHODS).index('onnx')}", "SHIPPED_MODEL=1", f"FINE_T1={pairs[0][0]}",
                          f"COARSE_T1={pairs[0][1]}", f"COARSE_T2={target}", f"OUTPUT={tmp_path / 'deep.tif'}"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert json.loads(run.stdout[run.stdout.index("{"):])["results"]["VALID_FRACTION"] > 0.99
    assert "sttfn_synthetic_orleans.onnx" in run.stdout  # the log names the model it ran


def test_the_consistency_pass_leaves_nothing_when_it_fails_and_a_killed_runs_scratch_is_cleaned(
        chain, tmp_path, monkeypatch):
    """The networks' second pass writes a scratch raster beside the run's own temporary output: a failure
    removes it with the output, and one left by a killed run is a stale temporary the next run removes."""
    from backend.fusion import consistency
    from backend.fusion.onnx_model import shipped_models
    from backend.io.atomic import remove_stale

    pairs, target = _pairs(chain, 1)
    out = tmp_path / "out" / "fused.tif"
    out.parent.mkdir()
    (out.parent / "mine.tif").write_bytes(b"a user's file")
    seen = []

    def fail(prediction, arrays, sigma):
        seen.extend(p.name for p in out.parent.iterdir())
        raise RuntimeError("disk gone")

    monkeypatch.setattr(consistency, "correct", fail)
    with pytest.raises(Exception, match="disk gone"):
        fuse("onnx", pairs, target, out, OnnxParams(shipped=shipped_models()[0]))
    scratch = [name for name in seen if name.endswith(".pass1.tif")]
    assert len(scratch) == 1 and scratch[0].startswith(f".{out.name}.")
    assert sorted(p.name for p in out.parent.iterdir()) == ["mine.tif"]  # nothing of the run is left
    left = out.parent / scratch[0].replace(f"-{os.getpid()}-", "-4194305-")  # as if its process was killed
    left.write_bytes(b"partial")
    assert left in remove_stale(out) and not left.exists()
    assert (out.parent / "mine.tif").read_bytes() == b"a user's file"
