"""The model card: one typed record of what an exported model is and how to feed it.

It is embedded in the ONNX file (metadata key ``lst_fusion_model_card``), sealed with the graph by one
checksum (:func:`set_card`), and read back (:func:`read_card`), parsed and
validated once, so inference never guesses a layout or a normalisation.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

CARD_KEY = "lst_fusion_model_card"
CARD_SCHEMA = 1


@dataclass(frozen=True)
class ModelCard:
    model: str  # registry name
    title: str
    paper: str
    model_version: str
    package_version: str
    roles: tuple[str, ...]  # input channel order
    size_multiple: int
    units: str  # of inputs and output
    normalisation: dict  # {"fine": {"mean", "std"}, "coarse": {...}}, applied inside the graph
    parameters: int
    training: dict = field(default_factory=dict)  # dates, region, epochs, cloud-aware...
    validation: dict = field(default_factory=dict)  # metrics on the validation dates
    opset: int = 17
    schema: int = CARD_SCHEMA
    # > 0: the graph takes the scene's summed feature moments (this many numbers) and returns a tile's
    # (models/contract.py's SceneKelvinModel); fusion computes them in a first pass over the scene.
    scene_moments: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        """Parse and check a card; ValueError says what is wrong."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"the model card is not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise ValueError("the model card is not a JSON object")
        if data.get("schema") != CARD_SCHEMA:
            raise ValueError(f"unsupported model card schema {data.get('schema')!r} (expected {CARD_SCHEMA})")
        missing = [k for k in ("model", "roles", "size_multiple", "units", "normalisation") if k not in data]
        if missing:
            raise ValueError(f"the model card lacks {', '.join(missing)}")
        for group in ("fine", "coarse"):
            stats = data["normalisation"].get(group, {})
            if not (isinstance(stats.get("mean"), (int, float)) and isinstance(stats.get("std"), (int, float))
                    and stats["std"] > 0):
                raise ValueError(f"the model card's {group} normalisation is incomplete")
        if data["units"] != "K":
            raise ValueError(f"unsupported units {data['units']!r}")
        known = {f for f in cls.__dataclass_fields__}
        data = {k: v for k, v in data.items() if k in known}
        data["roles"] = tuple(data["roles"])
        return cls(**data)


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
    kept = [(e.key, e.value) for e in proto.metadata_props if e.key not in (CARD_KEY, DIGEST_KEY, LEGACY_DIGEST_KEY)]
    del proto.metadata_props[:]
    for key, value in (*kept, (CARD_KEY, card_text), (DIGEST_KEY, model_digest(proto, card_text))):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


class CardError(ValueError):
    """An ONNX file that is not a usable LST Fusion model; the message names the file and what to do."""


def read_card(path) -> ModelCard:
    """The validated card of an LST Fusion ONNX model, its checksum verified (onnx, not torch, is needed)."""
    from pathlib import Path

    import onnx

    p = Path(path)
    if not p.is_file():
        raise CardError(f"{p}: model file not found.")
    try:
        proto = onnx.load(str(p), load_external_data=False)
        onnx.checker.check_model(proto)
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError, ValidationError, OSError...
        raise CardError(f"{p.name}: not a readable ONNX model ({type(exc).__name__}: {exc}). "
                        "Export it again with 'Train STF model'.") from exc
    props = {e.key: e.value for e in proto.metadata_props}
    if CARD_KEY not in props:
        raise CardError(f"{p.name}: an ONNX model without an LST Fusion model card; it cannot be used for fusion.")
    if DIGEST_KEY not in props and LEGACY_DIGEST_KEY in props:
        raise CardError(f"{p.name}: exported by LST Fusion 0.2, whose checksum does not cover the model card, so "
                        "an edited card would go unnoticed; it is not loaded. Export it again with 'Train STF "
                        "model'.")
    if props.get(DIGEST_KEY) != model_digest(proto, props[CARD_KEY]):
        raise CardError(f"{p.name}: its weights, graph or model card were modified after export (checksum "
                        "mismatch); it is not loaded. Use the file 'Train STF model' wrote.")
    try:
        return ModelCard.from_json(props[CARD_KEY])
    except ValueError as exc:
        raise CardError(f"{p.name}: {exc}.") from exc
