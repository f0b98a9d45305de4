"""ONNX export of trained fusion networks, with the model card embedded and a parity check.

The exported graph takes Kelvin channels (N, C, H, W) in the card's role order and
returns Kelvin fine LST (N, 1, H, W); normalisation is inside the graph, spatial size is
dynamic. A network that needs scene statistics (``model.scene_moments`` > 0, MLFF-GAN) also
takes ``moment_weights`` (N, 1, H, W) and the scene's summed ``scene_moments`` and returns a
tile's ``moments`` (models/contract.py's SceneKelvinModel). After export ONNX Runtime and
torch must agree to 1e-4 (relative) on a test input, or the export fails and no file is left.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from models.card import DIGEST_KEY, LEGACY_DIGEST_KEY, model_digest, set_card  # noqa: F401 - re-exported

from ..errors import InputError, LSTFusionError
from ..io.atomic import atomic_path

OPSET = 17


class ExportError(LSTFusionError):
    """ONNX export failed or its output disagrees with torch."""


def export_onnx(model, card, out_path: str | os.PathLike, sample_size: int = 64, tolerance: float = 1e-4) -> Path:
    """Export ``model`` (a KelvinModel) with ``card`` as metadata; verify parity with ONNX Runtime."""
    import onnx
    import onnxruntime as ort
    import torch


    model = model.eval().cpu()
    rng = np.random.default_rng(0)
    mean = card.normalisation["fine"]["mean"]
    std = card.normalisation["fine"]["std"]
    # Two different sizes, both multiples of the card's, so a size baked into the graph would show.
    m = max(1, card.size_multiple)
    height, width = -(-sample_size // m) * m, -(-(sample_size + 3) // m) * m + m
    sample = (mean + std * rng.standard_normal((1, len(card.roles), height, width)))
    sample = torch.from_numpy(sample.astype(np.float32))
    scene = int(getattr(model, "scene_moments", 0))
    if scene != card.scene_moments:
        raise ExportError(f"The model takes {scene} scene moments but its card says {card.scene_moments}.")

    def feeds(x: torch.Tensor) -> tuple:
        """The graph's inputs for ``x``: with scene statistics, the moments of ``x`` itself (one tile)."""
        if not scene:
            return (x,)
        weight = torch.ones_like(x[:, :1])
        with torch.no_grad():
            return x, weight, model(x, weight, torch.zeros(scene))[1]

    def run_torch(x: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            out = model(*feeds(x))
        return (out[0] if scene else out).numpy()

    def run_onnx(session, x: torch.Tensor) -> np.ndarray:
        names = [i.name for i in session.get_inputs()]
        return session.run(["lst"], {n: v.numpy() for n, v in zip(names, feeds(x))})[0]

    expected = run_torch(sample)
    names = (["inputs", "moment_weights", "scene_moments"], ["lst", "moments"]) if scene else (["inputs"], ["lst"])
    spatial = {0: "batch", 2: "height", 3: "width"}
    axes = {"inputs": spatial, "lst": spatial, **({"moment_weights": spatial} if scene else {})}
    with atomic_path(out_path) as tmp:
        with warnings.catch_warnings():
            # The TorchScript-based exporter is deprecated in favour of torch.export, which
            # needs onnxscript; it remains the dependable path for these convolutional graphs.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)
            torch.onnx.export(model, feeds(sample), str(tmp), dynamo=False, opset_version=OPSET,
                              input_names=names[0], output_names=names[1], dynamic_axes=axes)
        proto = onnx.load(str(tmp))
        set_card(proto, card.to_json())
        proto.producer_name = "LST Fusion"
        proto.doc_string = f"{card.title} ({card.paper}) — fine LST from MODIS + Landsat, Kelvin in and out."
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = run_onnx(session, sample)
        error = float(np.abs(got - expected).max()) / float(np.abs(expected).max())
        other = sample[..., : height - m if height > m else height, :]  # another size: the graph must follow it
        expected_other = run_torch(other)
        got_other = run_onnx(session, other)
        if got_other.shape != expected_other.shape:
            raise ExportError(f"The exported graph does not follow the input size ({got_other.shape} for "
                              f"{tuple(other.shape)}).")
        error = max(error, float(np.abs(got_other - expected_other).max()) / float(np.abs(expected_other).max()))
        if not error <= tolerance:
            raise ExportError(f"ONNX Runtime and torch disagree after export: relative error {error:.2e} > "
                              f"{tolerance:.0e}. The model was not written.")
    return Path(out_path)


def read_model_card(path: str | os.PathLike):
    """The validated card of an LST Fusion ONNX model (models/card.py); InputError for anything else."""
    from models.card import CardError, read_card

    try:
        return read_card(path)
    except CardError as exc:
        raise InputError(str(exc)) from exc
