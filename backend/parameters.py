"""Parameter dataclasses that describe their own user-facing parameters.

A field made with :func:`param` carries the name, label and range a front end shows
(the QGIS algorithms build their parameters from it), so defaults live in one place:
the dataclass the backend function takes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# What a front end shows for a field, when its default's type does not say it (see ParamInfo.kind).
KINDS = ("", "file", "folder", "text", "date", "dates", "crs")


@dataclass(frozen=True)
class ParamInfo:
    name: str  # the Processing parameter name, e.g. WINDOW
    label: str
    minimum: float | None = None
    maximum: float | None = None
    advanced: bool = False
    file_filter: str = ""  # for path parameters
    options: tuple[Any, ...] = ()  # for a choice among values
    option_labels: tuple[str, ...] = ()
    # A choice whose values come from a registry at run time (e.g. the models): () -> ((value, label), …).
    choices: Callable[[], tuple[tuple[Any, str], ...]] | None = None
    # '' infers it from the default (bool, int, float, a str path); else one of KINDS: 'text' a free string,
    # 'date' one date, 'dates' a comma-separated list (None when empty), 'crs' a CRS as text.
    kind: str = ""
    # A number whose 'not set' (None) is shown as this value, e.g. 0 for "the model's own default".
    none_as: float | None = None
    optional: bool = False
    # A choice offered by its values' names (Processing's static strings): a name saved in a model or script
    # keeps meaning the same entry when entries are added. Indices are still accepted. None: by name
    # whenever the values are words (a choice among numbers stays by position: '2' would read as an index).
    static: bool | None = None

    def choice_list(self) -> tuple[tuple[Any, str], ...]:
        """(value, label) of a choice parameter, in the order its indices keep."""
        if self.choices is not None:
            return tuple(self.choices())
        return tuple(zip(self.options, self.option_labels))

    def by_name(self) -> bool:
        """Whether this choice is offered by its values' names (see ``static``)."""
        if self.static is not None:
            return self.static
        values = [value for value, _ in self.choice_list()]
        return bool(values) and all(value is None or (isinstance(value, str) and not value.strip().isdigit())
                                    for value in values)


def param(default: Any, name: str, label: str, minimum: float | None = None, maximum: float | None = None,
          advanced: bool = False, file_filter: str = "", options: tuple[Any, ...] = (),
          option_labels: tuple[str, ...] = (), choices: Callable | None = None, kind: str = "",
          none_as: float | None = None, optional: bool = False, static: bool | None = None) -> Any:
    """A dataclass field exposed to users as ``name``."""
    if kind not in KINDS:
        raise ValueError(f"{name}: kind must be one of {KINDS}, not {kind!r}")
    info = ParamInfo(name, label, minimum, maximum, advanced, file_filter, tuple(options),
                     tuple(option_labels or (str(o) for o in options)), choices, kind, none_as, optional,
                     static)
    return dataclasses.field(default=default, metadata={"param": info})


def exposed(cls: type) -> list[tuple[dataclasses.Field, ParamInfo]]:
    """The fields of ``cls`` that users set, with their description, in declaration order."""
    return [(f, f.metadata["param"]) for f in dataclasses.fields(cls) if "param" in f.metadata]


def build(cls: type, values: dict[str, Any]):
    """An instance of ``cls`` from values keyed by parameter name (missing ones keep their defaults)."""
    kwargs = {f.name: values[info.name] for f, info in exposed(cls) if info.name in values}
    return cls(**kwargs)


def with_overrides(cls: type, params: Any, overrides: dict[str, Any]):
    """``params`` (or ``cls``'s defaults) with keyword ``overrides`` by field name: stage functions take a
    parameter dataclass and still accept its fields as keywords, so scripts read naturally."""
    params = params if params is not None else cls()
    if not isinstance(params, cls):
        raise TypeError(f"params must be a {cls.__name__}, not {type(params).__name__} {params!r} (give the "
                        f"fields as keywords, e.g. {dataclasses.fields(cls)[0].name}=...)")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {', '.join(unknown)} (fields of {cls.__name__}: "
                        f"{', '.join(sorted(names))})")
    return dataclasses.replace(params, **overrides) if overrides else params


def kind_of(field: dataclasses.Field, info: ParamInfo) -> str:
    """What kind of parameter ``field`` is: 'choice', 'bool', 'int', 'float' or one of KINDS."""
    if info.options or info.choices is not None:
        return "choice"
    if info.kind:
        return info.kind
    default = field.default
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, dt.date):
        return "date"
    if default is None and info.none_as is not None:
        return "int" if isinstance(info.none_as, int) else "float"
    return "file"


def parse_dates(name: str, text: str) -> list[dt.date] | None:
    """Dates given as 'YYYY-MM-DD, …' (commas or semicolons) for parameter ``name``; None when empty."""
    from .errors import InputError
    from .io.dates import parse_date

    try:
        dates = [parse_date(t) for t in (text or "").replace(";", ",").split(",") if t.strip()]
    except ValueError as exc:
        raise InputError(f"{name}: {exc}") from exc
    return dates or None


def from_text(field: dataclasses.Field, info: ParamInfo, text: str) -> Any:
    """The value of a text-entered parameter (a date, dates, free text) as the dataclass holds it."""
    from .errors import InputError

    kind = kind_of(field, info)
    if kind in ("date", "dates"):
        dates = parse_dates(info.name, text)
        if kind == "dates":
            return dates
        if dates and len(dates) > 1:
            raise InputError(f"{info.name}: one date (YYYY-MM-DD), not {len(dates)}.")
        return dates[0] if dates else field.default
    return text.strip() if (text or "").strip() else field.default


def as_text(value: Any) -> str:
    """How a default shows in a text parameter."""
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return ", ".join(as_text(v) for v in value)
    return str(value)
