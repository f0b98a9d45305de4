"""Training runs: outputs, reports, kill-and-resume, cancellation, refusing bad files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.errors import Cancelled, InputError
from backend.progress import Progress
from backend.training.onnx_export import read_model_card
from backend.training.train import TrainConfig, load_checkpoint, train

REPO = Path(__file__).resolve().parents[1]


def test_training_writes_onnx_card_checkpoints_and_report(tiny_patches, tmp_path):
    result = train(tiny_patches, tmp_path / "run", TrainConfig(model="sttfn", epochs=2, batch_size=8,
                                                               cloud_aware=True))
    card = read_model_card(result.onnx)
    assert card.model == "sttfn" and card.units == "K" and card.roles == ("coarse_t1", "fine_t1", "coarse_t2")
    assert card.training["cloud_aware"] and card.training["epochs"] == 2 and card.training["train_dates"]
    assert card.validation["rmse_k"] == pytest.approx(result.best_val_rmse)
    assert 0 < result.best_val_rmse < 20
    assert {p.name for p in result.checkpoints.iterdir()} == {"best.pt", "last.pt"}
    assert load_checkpoint(result.checkpoints / "last.pt")["cursor"]["epoch"] == 2
    html = result.report.read_text()
    assert "data:image/png;base64," in html and "validation RMSE" in html
    assert len(json.loads((tmp_path / "run" / "history.json").read_text())) == 2


def test_refuses_bad_checkpoints_and_models(tiny_patches, tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    torch.save({"format": "lst_fusion_checkpoint", "payload": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(InputError, match="not a valid LST Fusion checkpoint.*nothing in it was run"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    with pytest.raises(InputError, match="not a valid LST Fusion checkpoint"):
        load_checkpoint(tmp_path / "notes.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="not an LST Fusion checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    result = train(tiny_patches, tmp_path / "run", TrainConfig(model="edcstfn", epochs=1, batch_size=8,
                                                               pretrain_epochs=1))
    data = bytearray(result.onnx.read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = b"\x00" * 64  # still parses: only the checksum tells
    (tmp_path / "tampered.onnx").write_bytes(bytes(data))
    with pytest.raises(InputError, match="tampered.onnx: its weights, graph or model card were modified"):
        read_model_card(tmp_path / "tampered.onnx")
    (tmp_path / "truncated.onnx").write_bytes(result.onnx.read_bytes()[:1000])
    with pytest.raises(InputError, match="truncated.onnx: not a readable ONNX model"):
        read_model_card(tmp_path / "truncated.onnx")
    (tmp_path / "notes.onnx").write_text("hello")
    with pytest.raises(InputError, match="notes.onnx: not a readable ONNX model"):
        read_model_card(tmp_path / "notes.onnx")
    import onnx

    proto = onnx.load(str(result.onnx))
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "bare.onnx"))
    with pytest.raises(InputError, match="without an LST Fusion model card"):
        read_model_card(tmp_path / "bare.onnx")
    with pytest.raises(InputError, match="RESUME"):
        train(tiny_patches, tmp_path / "run", TrainConfig(model="edcstfn", epochs=1))
    with pytest.raises(InputError, match="resume it with the same model"):
        train(tiny_patches, tmp_path / "run", TrainConfig(model="sttfn", epochs=2), resume=True)


def test_cancel_between_batches_keeps_the_last_checkpoint(tiny_patches, tmp_path):
    updates = {"n": 0}

    def on_progress(_):
        updates["n"] += 1

    config = TrainConfig(model="sttfn", epochs=3, batch_size=4)
    with pytest.raises(Cancelled):
        train(tiny_patches, tmp_path / "run", config,
              progress=Progress(on_progress=on_progress, is_cancelled=lambda: updates["n"] > 25))
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["cursor"]["epoch"] >= 1
    assert not list((tmp_path / "run").rglob("*.part*"))
    resumed = train(tiny_patches, tmp_path / "run", config, resume=True)
    assert read_model_card(resumed.onnx).training["epochs"] == 3


CHILD = """
import sys
sys.path.insert(0, {repo!r})
from backend.progress import Progress
from backend.training.train import TrainConfig, train
config = TrainConfig(model="mlffgan", epochs=4, batch_size=2, seed=3)
train({data!r}, sys.argv[1], config, resume=len(sys.argv) > 2,
      progress=Progress(on_progress=lambda f: print(f"progress {{f:.4f}}", flush=True)))
print("done", flush=True)
"""


def test_killed_run_resumes_to_the_same_result(tiny_patches, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(repo=str(REPO), data=str(tiny_patches)))
    env = dict(os.environ, OMP_NUM_THREADS="2")
    reference = subprocess.run([sys.executable, str(script), str(tmp_path / "whole")], env=env,
                               capture_output=True, text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr[-2000:]
    child = subprocess.Popen([sys.executable, str(script), str(tmp_path / "killed")], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    killed_at = None
    for line in child.stdout:
        fraction = float(line.split()[1]) if line.startswith("progress") else None
        if fraction is not None and 0.55 < fraction < 0.7:  # in the middle of epoch 3 of 4
            child.send_signal(signal.SIGKILL)
            killed_at = fraction
            break
    child.wait(timeout=60)
    assert killed_at is not None and child.returncode == -signal.SIGKILL
    assert load_checkpoint(tmp_path / "killed" / "checkpoints" / "last.pt")["cursor"]["epoch"] == 2
    resumed = subprocess.run([sys.executable, str(script), str(tmp_path / "killed"), "resume"], env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = load_checkpoint(tmp_path / "whole" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "killed" / "checkpoints" / "last.pt")
    assert a["cursor"] == b["cursor"] == {"epoch": 4, "batch": 0}
    for key in ("model", "discriminator"):
        for name, tensor in a["trainer"][key].items():
            assert torch.equal(tensor, b["trainer"][key][name]), f"{key}.{name} differs after resume"
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]
    import onnx

    weights = [{t.name: t.SerializeToString() for t in onnx.load(str(path)).graph.initializer}
               for path in (tmp_path / "whole" / "mlffgan.onnx", tmp_path / "killed" / "mlffgan.onnx")]
    assert weights[0] == weights[1]  # the same weights exported (the cards differ by their time of training)


def test_level_shift_moves_inputs_and_target_by_the_same_kelvin(tiny_patches):
    """The augmentation that makes a model learn changes, not the training region's levels."""
    from backend.preprocess.patches import PatchDataset
    from backend.training.train import _Batches
    from models.contract import ROLES_ONE_REFERENCE

    class FixedDraws:
        def uniform(self, low, high):
            return 5.0

        def integers(self, n):
            return 0

    dataset = PatchDataset(tiny_patches, "train")
    stats = dataset.manifest["normalisation"]
    plain = _Batches(dataset, ROLES_ONE_REFERENCE, False, 0.0).batch([0, 1], FixedDraws(), "cpu")
    shifted = _Batches(dataset, ROLES_ONE_REFERENCE, False, 5.0).batch([0, 1], FixedDraws(), "cpu")
    stds = [stats["fine" if r.startswith("fine") else "coarse"]["std"] for r in ROLES_ONE_REFERENCE]
    for c, std in enumerate(stds):
        delta = ((shifted[0] - plain[0])[:, c] * std).numpy()
        np.testing.assert_allclose(delta[plain[2][:, 0].numpy() > 0], 5.0, atol=1e-3)
    np.testing.assert_allclose(((shifted[1] - plain[1]) * stats["fine"]["std"]).numpy()[plain[2].numpy() > 0],
                               5.0, atol=1e-3)
