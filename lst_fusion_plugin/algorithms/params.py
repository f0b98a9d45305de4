"""Processing parameters built from the backend's parameter dataclasses (backend/parameters.py).

Every algorithm declares its inputs and outputs and takes its options from the dataclass the
backend stage takes: names, labels, defaults, ranges and choices are written once, there.
"""

from __future__ import annotations

from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterCrs,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from .base import add_advanced, add_advanced_flag, choice_index


def fields_of(cls) -> list:
    """(field, info) of the fields of ``cls`` users set."""
    from backend.parameters import exposed

    return exposed(cls)


def _kind(field, info) -> str:
    from backend.parameters import kind_of

    return kind_of(field, info)


def choice_list(field, info) -> list[tuple[object, str]]:
    """(value, label) of a choice or on/off parameter."""
    if _kind(field, info) == "bool":
        return [(False, "Off"), (True, "On")]
    return list(info.choice_list())


def static_name(value) -> str:
    """How a choice's value is named in a static-strings choice ('none' for the empty choice)."""
    return "none" if value in (None, "") else str(value)


def static_choice(name: str, label: str, choices, default: int = 0) -> QgsProcessingParameterEnum:
    """A choice among ``choices`` ((value, label) pairs) offered by the values' names (static strings): a saved
    model or script keeps naming the same entry when a registry grows. The labels go into the help."""
    names = [static_name(value) for value, _ in choices]
    param = QgsProcessingParameterEnum(name, label, names, False, names[default] if names else None, False, True)
    param.setHelp("; ".join(f"{static_name(value)}: {text}" for value, text in choices))
    param.setMetadata({**param.metadata(), "lst_fusion_labels": [text for _, text in choices]})
    return param


def choice_position(alg, parameters, context, name: str, names: list[str]) -> int:
    """Which of ``names`` a static-strings choice was given: by name, or by index as before (saved models,
    scripts)."""
    index = choice_index(parameters.get(name))
    if index is not None and 0 <= index < len(names):
        return index
    chosen = alg.parameterAsEnumString(parameters, name, context)
    if chosen not in names:
        raise QgsProcessingException(f"{name}: {chosen!r} is not one of the choices ({', '.join(names)}).")
    return names.index(chosen)


def _number(field, info, kind: str):
    default = info.none_as if field.default is None else field.default
    number_type = QgsProcessingParameterNumber.Integer if kind == "int" else QgsProcessingParameterNumber.Double
    param = QgsProcessingParameterNumber(info.name, info.label, number_type, default, info.optional)
    if info.minimum is not None:
        param.setMinimum(info.minimum)
    if info.maximum is not None:
        param.setMaximum(info.maximum)
    return param


def parameter_for(field, info):
    """The Processing parameter of one exposed dataclass field."""
    from backend.parameters import as_text

    kind = _kind(field, info)
    if kind == "choice":
        values = [value for value, _ in choice_list(field, info)]
        default = values.index(field.default) if field.default in values else 0
        if info.by_name():
            return static_choice(info.name, info.label, choice_list(field, info), default)
        return QgsProcessingParameterEnum(info.name, info.label, [label for _, label in choice_list(field, info)],
                                          defaultValue=default)
    if kind == "bool":
        return QgsProcessingParameterBoolean(info.name, info.label, field.default, info.optional)
    if kind in ("int", "float"):
        return _number(field, info, kind)
    if kind == "crs":
        return QgsProcessingParameterCrs(info.name, info.label, field.default or None, optional=True)
    if kind in ("text", "date", "dates"):
        optional = info.optional or kind == "dates" or not field.default
        return QgsProcessingParameterString(info.name, info.label, as_text(field.default), optional=optional)
    behavior = QgsProcessingParameterFile.Folder if kind == "folder" else QgsProcessingParameterFile.File
    return QgsProcessingParameterFile(info.name, info.label, behavior=behavior, fileFilter=info.file_filter,
                                      optional=True)


def add_parameters(alg, cls, extra_advanced=()) -> None:
    """Every exposed field of ``cls`` as a parameter of ``alg`` (advanced ones, and ``extra_advanced``,
    under 'Advanced')."""
    fields = fields_of(cls)
    for field, info in fields:
        if not info.advanced:
            alg.addParameter(parameter_for(field, info))
    add_advanced(alg, [*(parameter_for(f, i) for f, i in fields if i.advanced), *extra_advanced])


def value_of(alg, parameters, context, field, info):
    """The dataclass value of one exposed field, from the algorithm's parameters."""
    from backend.parameters import from_text

    kind = _kind(field, info)
    if kind == "choice":
        if info.by_name():
            values = [v for v, _ in choice_list(field, info)]
            return values[choice_position(alg, parameters, context, info.name, [static_name(v) for v in values])]
        return choice_list(field, info)[alg.parameterAsEnum(parameters, info.name, context)][0]
    if kind == "bool":
        return alg.parameterAsBool(parameters, info.name, context)
    if kind in ("int", "float"):
        value = (alg.parameterAsInt if kind == "int" else alg.parameterAsDouble)(parameters, info.name, context)
        return None if info.none_as is not None and value == info.none_as else value
    if kind == "crs":
        crs = alg.parameterAsCrs(parameters, info.name, context)
        return (crs.authid() or crs.toWkt()) if crs.isValid() else field.default
    if kind in ("text", "date", "dates"):
        return from_text(field, info, alg.parameterAsString(parameters, info.name, context))
    return alg.parameterAsFile(parameters, info.name, context) or ""


def parameter_values(alg, parameters, context, fields) -> dict:
    """Values of the exposed ``fields`` ((field, info) pairs) keyed by parameter name."""
    return {info.name: value_of(alg, parameters, context, field, info) for field, info in fields}


def params_from(alg, cls, parameters, context):
    """An instance of the dataclass ``cls`` from the algorithm's parameters."""
    from backend.parameters import build

    return build(cls, parameter_values(alg, parameters, context, fields_of(cls)))


def _input_unit_field():
    from backend.io.readers import input_unit_param

    return input_unit_param()


def _output_unit_field():
    from backend.io.writers import output_unit_param

    return output_unit_param()


def input_unit_parameter():
    """UNIT (advanced): the unit of float inputs that do not record one, for stages whose dataclass lacks it."""
    field = _input_unit_field()
    param = parameter_for(field, field.metadata["param"])
    add_advanced_flag(param)
    return param


def output_unit_parameter():
    """OUTPUT_UNIT: the unit written into LST outputs (files, metadata, band description, legend)."""
    field = _output_unit_field()
    return parameter_for(field, field.metadata["param"])


def input_unit(alg, parameters, context) -> str | None:
    field = _input_unit_field()
    return value_of(alg, parameters, context, field, field.metadata["param"])


def output_unit(alg, parameters, context) -> str:
    field = _output_unit_field()
    return value_of(alg, parameters, context, field, field.metadata["param"])
