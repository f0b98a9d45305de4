"""The networks: shapes on odd sizes, they can learn (overfit), ONNX parity, cloud-aware gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from backend.training.onnx_export import export_onnx, read_model_card
from backend.training.train import TrainConfig, _Trainer
from models import registry
from models.card import ModelCard
from models.contract import KelvinModel, Normalise, PaddedModel, padding
from models.losses import keep_observed, ms_ssim

CASES = [("edcstfn", 1), ("edcstfn", 2), ("sttfn", 1), ("sttfn", 2), ("mlffgan", 1)]
STATS = {"fine": {"mean": 295.0, "std": 6.0}, "coarse": {"mean": 294.0, "std": 4.0}}


def _batch(channels: int, n=4, size=32, seed=0):
    """A learnable toy task: the target is a smooth function of the inputs."""
    g = torch.Generator().manual_seed(seed)
    x = F.avg_pool2d(torch.randn(n, channels, size, size, generator=g), 3, 1, 1)
    y = (0.6 * x[:, 1:2] + 0.4 * x[:, -1:] - 0.2 * x[:, 0:1]) * 2
    return x, y, torch.ones_like(y)


@pytest.mark.parametrize(("name", "refs"), CASES)
def test_forward_on_odd_sizes(name, refs):
    spec = registry.get(name)
    contract = spec.contract(refs)
    net = PaddedModel(spec.build(refs), contract).eval()
    for h, w in ((37, 45), (95, 95), (17, 33)):
        with torch.no_grad():
            out = net(torch.randn(2, contract.channels, h, w))
        assert out.shape == (2, 1, h, w) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["edcstfn", "sttfn", "mlffgan"])
def test_overfits_a_tiny_batch(name):
    torch.manual_seed(0)
    trainer = _Trainer(registry.get(name), 1, TrainConfig(model=name, learning_rate=2e-3), torch.device("cpu"))
    x, y, m = _batch(trainer.contract.channels)

    def error():
        trainer.net.eval()
        with torch.no_grad():
            return float(F.mse_loss(trainer.net(x), y))

    before = error()
    losses = [trainer.step(x, y, m) for _ in range(50)]
    after = error()
    assert losses[-1] < losses[0]
    assert after < before / 4, (before, after)


@pytest.mark.parametrize(("name", "refs"), CASES)
def test_onnx_export_parity_and_card(name, refs, tmp_path):
    import onnxruntime as ort

    spec = registry.get(name)
    contract = spec.contract(refs)
    torch.manual_seed(1)
    network = spec.build(refs).eval()
    card = ModelCard(model=name, title=spec.title, paper=spec.paper, model_version=spec.version,
                     package_version="test", roles=contract.roles, size_multiple=contract.size_multiple, units="K",
                     normalisation=STATS, parameters=registry.parameter_count(network))
    path = export_onnx(KelvinModel(network, Normalise(contract, STATS)), card, tmp_path / f"{name}.onnx")
    assert read_model_card(path) == card
    # Inference contract: pad an odd-sized input as the card says, run ONNX Runtime, crop.
    x = 295 + 5 * np.random.default_rng(2).standard_normal((1, contract.channels, 45, 51)).astype(np.float32)
    ph, pw = padding(45, 51, card.size_multiple)
    padded = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect")
    got = ort.InferenceSession(str(path)).run(None, {"inputs": padded})[0][..., :45, :51]
    kelvin = KelvinModel(PaddedModel(network, contract), Normalise(contract, STATS)).eval()
    with torch.no_grad():
        expected = kelvin(torch.from_numpy(x)).numpy()
    assert np.abs(got - expected).max() / np.abs(expected).max() < 1e-4


@pytest.mark.parametrize("name", ["edcstfn", "sttfn", "mlffgan"])
def test_cloud_aware_loss_gives_filled_pixels_no_gradient(name):
    torch.manual_seed(0)
    trainer = _Trainer(registry.get(name), 1, TrainConfig(model=name), torch.device("cpu"))
    x, y, _ = _batch(trainer.contract.channels, n=2)
    mask = torch.ones_like(y)
    mask[:, :, 8:20, 5:25] = 0  # a gap-filled cloud in the target
    outputs = []
    network = trainer.net.network

    def keep(module, inputs, output):
        output.retain_grad()
        outputs.append(output)

    handle = (network.direction if name == "sttfn" else network).register_forward_hook(keep)
    loss, _ = trainer.loss(x, y, mask)
    loss.backward()
    handle.remove()
    grad = outputs[0].grad
    assert grad is not None
    assert torch.count_nonzero(grad[:, :, 8:20, 5:25]) == 0
    assert torch.count_nonzero(grad[mask.expand_as(grad) > 0]) > 0.5 * float((mask > 0).sum())


def test_keep_observed_and_ms_ssim():
    pred = torch.randn(2, 1, 40, 40, requires_grad=True)
    target = torch.randn(2, 1, 40, 40)
    mask = (torch.rand(2, 1, 40, 40) > 0.3).float()
    (1 - ms_ssim(keep_observed(pred, target, mask), target)).backward()
    assert torch.count_nonzero(pred.grad[mask == 0]) == 0
    assert float(ms_ssim(target, target)) == pytest.approx(1.0, abs=1e-5)
    assert float(ms_ssim(pred.detach(), target)) < 0.5


def test_export_fails_loudly_and_leaves_nothing(tmp_path):
    from backend.training.onnx_export import ExportError

    spec = registry.get("sttfn")
    contract = spec.contract(1)
    card = ModelCard(model="sttfn", title=spec.title, paper=spec.paper, model_version=spec.version,
                     package_version="test", roles=contract.roles, size_multiple=1, units="K", normalisation=STATS,
                     parameters=1)
    with pytest.raises(ExportError, match="disagree"):
        export_onnx(KelvinModel(spec.build(1), Normalise(contract, STATS)), card, tmp_path / "m.onnx", tolerance=-1.0)
    assert list(tmp_path.iterdir()) == []
