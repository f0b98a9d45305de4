"""The model card: one typed record of what an exported model is and how to feed it.

It is embedded in the ONNX file (metadata key ``lst_fusion_model_card``) and parsed and
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
