"""Processing parameters of the fusion methods, built from the backend's registry and dataclasses.

Both fusion algorithms (one date, a season) offer the same methods with the same parameters;
a method or parameter added in the backend appears in both without a change here.
"""

from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
)

from .base import add_advanced


def methods() -> list:
    from backend.fusion.methods import METHODS

    return list(METHODS.values())


def exposed_parameters() -> list[tuple[object, object]]:
    """(field, info) of every method's exposed parameters, one per name (shared ones agree)."""
    from backend.parameters import exposed

    seen: dict[str, tuple[object, object]] = {}
    for method in methods():
        for field, info in exposed(method.params):
            seen.setdefault(info.name, (field, info))
    return list(seen.values())


def parameter_for(field, info):
    """The Processing parameter of one exposed dataclass field (see backend.parameters)."""
    if info.options:
        return QgsProcessingParameterEnum(info.name, info.label, list(info.option_labels), defaultValue=0)
    if isinstance(field.default, bool):
        return QgsProcessingParameterBoolean(info.name, info.label, field.default)
    if isinstance(field.default, str):
        return QgsProcessingParameterFile(info.name, info.label, fileFilter=info.file_filter, optional=True)
    kind = QgsProcessingParameterNumber.Integer if isinstance(field.default, int) \
        else QgsProcessingParameterNumber.Double
    param = QgsProcessingParameterNumber(info.name, info.label, kind, field.default, False)
    if info.minimum is not None:
        param.setMinimum(info.minimum)
    if info.maximum is not None:
        param.setMaximum(info.maximum)
    return param


def add_method_parameters(alg, extra_advanced=()) -> None:
    """METHOD plus every method's parameters (advanced ones under 'Advanced', with ``extra_advanced``)."""
    alg.addParameter(QgsProcessingParameterEnum("METHOD", "Method", [m.title for m in methods()], defaultValue=0))
    basic, advanced = [], []
    for field, info in exposed_parameters():
        (advanced if info.advanced else basic).append(parameter_for(field, info))
    for param in basic:
        alg.addParameter(param)
    add_advanced(alg, [*advanced, *extra_advanced])


def method_and_params(alg, parameters, context):
    """The chosen registry entry and its parameter dataclass, from the algorithm's parameters."""
    from backend.parameters import build

    spec = methods()[alg.parameterAsEnum(parameters, "METHOD", context)]
    return spec, build(spec.params, parameter_values(alg, parameters, context, exposed_parameters()))


def parameter_values(alg, parameters, context, fields) -> dict:
    """Values of the exposed ``fields`` ((field, info) pairs) keyed by parameter name."""
    values = {}
    for field, info in fields:
        if info.options:
            values[info.name] = info.options[alg.parameterAsEnum(parameters, info.name, context)]
        elif isinstance(field.default, bool):
            values[info.name] = alg.parameterAsBool(parameters, info.name, context)
        elif isinstance(field.default, str):
            values[info.name] = alg.parameterAsFile(parameters, info.name, context) or ""
        elif isinstance(field.default, int):
            values[info.name] = alg.parameterAsInt(parameters, info.name, context)
        else:
            values[info.name] = alg.parameterAsDouble(parameters, info.name, context)
    return values


def output_label(spec, params) -> str:
    """What a fused layer's name says about its method: the method, or the model file's name."""
    from pathlib import Path

    return Path(params.path).stem if hasattr(params, "path") else spec.name.upper()
