"""Processing parameters of the fusion methods, built from the backend's registry and dataclasses.

Both fusion algorithms (one date, a season) offer the same methods with the same parameters;
a method or parameter added in the backend appears in both without a change here. Where the
methods' dataclasses default a shared parameter differently (the LST options, chosen per
method by bench/bench_lst_options.py), the parameter is a choice whose first entry is "the
method's default", so leaving it alone gives each method its own measured default.
"""

from __future__ import annotations

from qgis.core import QgsProcessingParameterEnum

from . import params
from .base import add_advanced
from .params import choice_list

# What the LST options do and when to use them: the help of both fusion algorithms.
OPTIONS_HELP = (
    "COARSE_CONSISTENCY makes the result agree with MODIS at MODIS's own scale (less the sensor offset "
    "of the reference dates): use it when a scene-wide change (heat wave, cold spell) is badly passed "
    "on, not when MODIS's offset from Landsat changes from day to day. SENSOR_BIAS first moves each "
    "fine reference by its local departure from MODIS on its own date (ubESTARFM's idea): 'Landsat "
    "level' removes local sensor differences and the level errors of gap-filled references and keeps "
    "Landsat's scene-wide level; 'MODIS level' gives a result on MODIS's calibration (unbiased against "
    "MODIS, as ubESTARFM). 'The method's default' is what bench/bench_lst_options.py measured best for "
    "each method: ESTARFM both on (Landsat level), deep models consistency on, STARFM neither. "
    "OUTPUT_UNIT writes Kelvin or °C. UNCERTAINTY also writes "
    "the output's name + _uncertainty.tif, a per-pixel 1σ (K) from MODIS's change and the reference's local "
    "heterogeneity, calibrated on the sample data."
)

# The name of "the method's default" in a per-method choice offered by name.
METHOD_DEFAULT = "default"


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


def method_defaults(name: str) -> dict[str, object]:
    """Each method's default for the parameter ``name`` (the methods that have it)."""
    from backend.parameters import exposed

    return {method.name: field.default for method in methods() for field, info in exposed(method.params)
            if info.name == name}


def per_method(info) -> bool:
    """Whether the methods default this shared parameter differently."""
    return len({repr(v) for v in method_defaults(info.name).values()}) > 1


def _default_label(field, info) -> str:
    labels = dict(choice_list(field, info))
    by_method = "; ".join(f"{name.upper()}: {labels[value].split(':')[0].lower()}"
                          for name, value in method_defaults(info.name).items())
    return f"The method's default ({by_method})"


def parameter_for(field, info):
    """The Processing parameter of one method field; one the methods default differently is a choice whose
    first entry is 'the method's default'."""
    if not per_method(info):
        return params.parameter_for(field, info)
    if info.by_name():
        return params.static_choice(info.name, info.label, _per_method_choices(field, info))
    labels = [_default_label(field, info), *(label for _, label in choice_list(field, info))]
    return QgsProcessingParameterEnum(info.name, info.label, labels, defaultValue=0)


def _per_method_choices(field, info) -> list[tuple[object, str]]:
    """A per-method choice's (value, label) pairs, 'default' (the method's own) first."""
    return [(METHOD_DEFAULT, _default_label(field, info)), *choice_list(field, info)]


def add_method_parameters(alg, extra_advanced=()) -> None:
    """METHOD plus every method's parameters (advanced ones under 'Advanced', with ``extra_advanced``)."""
    alg.addParameter(params.static_choice("METHOD", "Method", [(m.name, m.title) for m in methods()]))
    basic, advanced = [], []
    for field, info in exposed_parameters():
        (advanced if info.advanced else basic).append(parameter_for(field, info))
    for param in basic:
        alg.addParameter(param)
    add_advanced(alg, [*advanced, *extra_advanced])


def method_and_params(alg, parameters, context, feedback=None):
    """The chosen registry entry and its parameter dataclass, from the algorithm's parameters; a parameter
    of another method given a value of its own is reported in ``feedback``, never dropped silently."""
    from backend.parameters import build, exposed

    listed = methods()
    spec = listed[params.choice_position(alg, parameters, context, "METHOD", [m.name for m in listed])]
    own = {info.name for _, info in exposed(spec.params)}
    others = [(field, info) for field, info in exposed_parameters() if info.name not in own and info.name in parameters]
    given = parameter_values(alg, parameters, context, others)
    for field, info in others:
        if info.name in given and given[info.name] != field.default and feedback is not None:
            feedback.pushWarning(f"{info.name} is not a parameter of {spec.short}; its value was not used.")
    return spec, build(spec.params, parameter_values(alg, parameters, context, exposed_parameters()))


def methods_help() -> str:
    """Each registered method's paragraph, for the help of the fusion algorithms."""
    return "\n\n".join(m.help for m in methods() if m.help)


def parameter_values(alg, parameters, context, fields) -> dict:
    """Values of the exposed ``fields`` ((field, info) pairs) keyed by parameter name."""
    values = {}
    for field, info in fields:
        if not per_method(info):
            values[info.name] = params.value_of(alg, parameters, context, field, info)
            continue
        if info.by_name():
            choices = _per_method_choices(field, info)
            names = [params.static_name(value) for value, _ in choices]
            index = params.choice_position(alg, parameters, context, info.name, names)
        else:
            index = alg.parameterAsEnum(parameters, info.name, context)
        if index > 0:  # 0: the method's own default (left out, so its dataclass decides)
            values[info.name] = choice_list(field, info)[index - 1][0]
    return values


def output_label(spec, params) -> str:
    """What a fused layer's name says about its method: the method, or the model file's name."""
    from pathlib import Path

    return Path(params.path).stem if getattr(params, "path", "") else spec.name.upper()
