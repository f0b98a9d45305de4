"""Parameter dataclasses that describe their own user-facing parameters.

A field made with :func:`param` carries the name, label and range a front end shows
(the QGIS algorithms build their parameters from it), so defaults live in one place:
the dataclass the backend function takes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ParamInfo:
    name: str  # the Processing parameter name, e.g. WINDOW
    label: str
    minimum: float | None = None
    maximum: float | None = None
    advanced: bool = False
    file_filter: str = ""  # for path parameters
    options: tuple[str, ...] = ()  # for a choice among values (the first is the default)
    option_labels: tuple[str, ...] = ()


def param(default: Any, name: str, label: str, minimum: float | None = None, maximum: float | None = None,
          advanced: bool = False, file_filter: str = "", options: tuple[str, ...] = (),
          option_labels: tuple[str, ...] = ()) -> Any:
    """A dataclass field exposed to users as ``name``."""
    info = ParamInfo(name, label, minimum, maximum, advanced, file_filter, tuple(options),
                     tuple(option_labels or options))
    return dataclasses.field(default=default, metadata={"param": info})


def exposed(cls: type) -> list[tuple[dataclasses.Field, ParamInfo]]:
    """The fields of ``cls`` that users set, with their description, in declaration order."""
    return [(f, f.metadata["param"]) for f in dataclasses.fields(cls) if "param" in f.metadata]


def build(cls: type, values: dict[str, Any]):
    """An instance of ``cls`` from values keyed by parameter name (missing ones keep their defaults)."""
    kwargs = {f.name: values[info.name] for f, info in exposed(cls) if info.name in values}
    return cls(**kwargs)
