"""ONNX export of trained fusion networks, with the model card embedded and a parity check.

The exported graph takes Kelvin channels (N, C, H, W) in the card's role order and
returns Kelvin fine LST (N, 1, H, W); normalisation is inside the graph, spatial size is
dynamic. After export ONNX Runtime and torch must agree to 1e-4 (relative) on a test
input, or the export fails and no file is left.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import InputError, LSTFusionError
from ..io.atomic import atomic_path

OPSET = 17
DIGEST_KEY = "lst_fusion_sha256"
LEGACY_DIGEST_KEY = "lst_fusion_weights_sha256"  # 0.2: weights and nodes only, not the card


def model_digest(proto, card_text: str) -> str:
    """SHA-256 of the graph (weights, nodes, inputs and outputs) and of the whole model card (roles and
    their order, units, normalisation): a later change to either shows."""
    import hashlib

    digest = hashlib.sha256()
    for tensor in sorted(proto.graph.initializer, key=lambda t: t.name):
        digest.update(tensor.name.encode())
        digest.update(tensor.SerializeToString())
    for part in (*proto.graph.node, *proto.graph.input, *proto.graph.output):
        digest.update(part.SerializeToString())
    digest.update(b"card\0" + card_text.encode())
    return digest.hexdigest()


def set_card(proto, card_text: str) -> None:
    """Put ``card_text`` in ``proto``'s metadata with the checksum that seals card and graph together
    (the exporter's step, and that of a maintainer adding test metrics to a shipped card)."""
    from models.card import CARD_KEY

    kept = [(e.key, e.value) for e in proto.metadata_props if e.key not in (CARD_KEY, DIGEST_KEY, LEGACY_DIGEST_KEY)]
    del proto.metadata_props[:]
    for key, value in (*kept, (CARD_KEY, card_text), (DIGEST_KEY, model_digest(proto, card_text))):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


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
    with torch.no_grad():
        expected = model(sample).numpy()
    with atomic_path(out_path) as tmp:
        with warnings.catch_warnings():
            # The TorchScript-based exporter is deprecated in favour of torch.export, which
            # needs onnxscript; it remains the dependable path for these convolutional graphs.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)
            torch.onnx.export(model, (sample,), str(tmp), dynamo=False, opset_version=OPSET,
                              input_names=["inputs"], output_names=["lst"],
                              dynamic_axes={"inputs": {0: "batch", 2: "height", 3: "width"},
                                            "lst": {0: "batch", 2: "height", 3: "width"}})
        proto = onnx.load(str(tmp))
        set_card(proto, card.to_json())
        proto.producer_name = "LST Fusion"
        proto.doc_string = f"{card.title} ({card.paper}) — fine LST from MODIS + Landsat, Kelvin in and out."
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = session.run(None, {"inputs": sample.numpy()})[0]
        error = float(np.abs(got - expected).max()) / float(np.abs(expected).max())
        other = sample[..., : height - m if height > m else height, :]  # another size: the graph must follow it
        with torch.no_grad():
            expected_other = model(other).numpy()
        got_other = session.run(None, {"inputs": other.numpy()})[0]
        if got_other.shape != expected_other.shape:
            raise ExportError(f"The exported graph does not follow the input size ({got_other.shape} for "
                              f"{tuple(other.shape)}).")
        error = max(error, float(np.abs(got_other - expected_other).max()) / float(np.abs(expected_other).max()))
        if not error <= tolerance:
            raise ExportError(f"ONNX Runtime and torch disagree after export: relative error {error:.2e} > "
                              f"{tolerance:.0e}. The model was not written.")
    return Path(out_path)


def read_model_card(path: str | os.PathLike):
    """The validated card of an LST Fusion ONNX model; InputError for anything else."""
    import onnx

    from models.card import CARD_KEY, ModelCard

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: model file not found.")
    try:
        proto = onnx.load(str(p), load_external_data=False)
        onnx.checker.check_model(proto)
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError, ValidationError, OSError...
        raise InputError(f"{p.name}: not a readable ONNX model ({type(exc).__name__}: {exc}). "
                         "Export it again with 'Train STF model'.") from exc
    props = {e.key: e.value for e in proto.metadata_props}
    if CARD_KEY not in props:
        raise InputError(f"{p.name}: an ONNX model without an LST Fusion model card; it cannot be used for fusion.")
    if DIGEST_KEY not in props and LEGACY_DIGEST_KEY in props:
        raise InputError(f"{p.name}: exported by LST Fusion 0.2, whose checksum does not cover the model card, so "
                         "an edited card would go unnoticed; it is not loaded. Export it again with 'Train STF "
                         "model'.")
    if props.get(DIGEST_KEY) != model_digest(proto, props[CARD_KEY]):
        raise InputError(f"{p.name}: its weights, graph or model card were modified after export (checksum "
                         "mismatch); it is not loaded. Use the file 'Train STF model' wrote.")
    try:
        return ModelCard.from_json(props[CARD_KEY])
    except ValueError as exc:
        raise InputError(f"{p.name}: {exc}.") from exc
