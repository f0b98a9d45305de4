"""What every LST Fusion algorithm shares: groups, feedback bridge, error translation."""

from __future__ import annotations

import contextlib
import html
import threading
from collections.abc import Iterator
from pathlib import Path

from qgis.core import (
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
)
from qgis.PyQt.QtGui import QIcon

from .. import dependencies

ICON = dependencies.PLUGIN_DIR / "icons" / "lst_fusion.svg"
GROUPS = {
    "data": "1 · Data",
    "preprocessing": "2 · Preprocessing",
    "training": "3 · Training",
    "fusion": "4 · Fusion",
    "evaluation": "5 · Evaluation",
}


class LSTAlgorithm(QgsProcessingAlgorithm):
    """Base class: subclasses declare ``NAME``, ``DISPLAY``, ``GROUP`` and ``HELP``."""

    NAME = ""
    DISPLAY = ""
    GROUP = "data"
    HELP = ""

    def name(self) -> str:
        return self.NAME

    def displayName(self) -> str:  # noqa: N802
        return self.DISPLAY

    def group(self) -> str:
        return GROUPS[self.GROUP]

    def groupId(self) -> str:  # noqa: N802
        return self.GROUP

    def help_text(self) -> str:
        """The algorithm's own help (paragraphs separated by blank lines); registries may add to it."""
        return self.HELP

    def shortHelpString(self) -> str:  # noqa: N802
        """The algorithm's help, then every parameter with its name for qgis_process and the modeler."""
        paragraphs = "".join(f"<p>{_text(p)}</p>" for p in self.help_text().split("\n\n") if p.strip())
        rows = []
        for param in self.parameterDefinitions():
            if param.flags() & QgsProcessingParameterDefinition.FlagHidden:
                continue
            detail = _text(param.description())
            if isinstance(param, QgsProcessingParameterEnum):
                detail += " — " + "; ".join(f"{k}: {_text(o)}" for k, o in enumerate(_choice_labels(param)))
            default = _default_text(param)
            detail += f". Default: {_text(default)}" if default else ""
            optional = " (optional)" if param.flags() & QgsProcessingParameterDefinition.FlagOptional else ""
            rows.append(f"<li><b>{param.name()}</b>{optional}: {detail}</li>")
        return paragraphs + (f"<h3>Parameters</h3><ul>{''.join(rows)}</ul>" if rows else "")

    def checkParameterValues(self, parameters, context):  # noqa: N802
        """Numbers and choices out of range are named with the range allowed (QGIS itself only says
        'Incorrect parameter value'), in the toolbox, the modeler, processing.run and qgis_process."""
        for param in self.parameterDefinitions():
            problem = _range_problem(param, parameters.get(param.name()))
            if problem:
                return False, problem
        pam_off_until_done()  # QGIS opens raster inputs to check and to list them, from here on
        ok, message = super().checkParameterValues(_choices_by_name(self, parameters), context)
        if not ok:
            restore_pam()
        return ok, message

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802
        restore_pam()
        return super().postProcessAlgorithm(context, feedback)

    def icon(self) -> QIcon:
        group_icon = ICON.parent / f"{self.GROUP}.svg"
        return QIcon(str(group_icon if group_icon.exists() else ICON))

    def createInstance(self):  # noqa: N802
        return type(self)()


_PAM_SAVED: dict[int, str | None] = {}
_PAM_OFF_FOR_PROCESS = False


def pam_off_for_process() -> None:
    """qgis_process opens the input layers before any algorithm code runs: a headless process keeps no
    GDAL PAM state at all (its main thread, for its whole life)."""
    global _PAM_OFF_FOR_PROCESS
    from osgeo import gdal

    gdal.SetThreadLocalConfigOption("GDAL_PAM_ENABLED", "NO")
    _PAM_OFF_FOR_PROCESS = True


def pam_off_until_done() -> None:
    """From an algorithm's parameter check until its end, rasters this thread opens keep no GDAL PAM state,
    so the statistics QGIS computes for the input layers it opens to check and list them (processing.run,
    qgis_process) are never saved as .aux.xml beside the user's files. Thread-local: other layers of
    QGIS keep their statistics; :func:`restore_pam` ends it (post-processing, or a failed run)."""
    from osgeo import gdal

    ident = threading.get_ident()
    if ident not in _PAM_SAVED:
        _PAM_SAVED[ident] = gdal.GetThreadLocalConfigOption("GDAL_PAM_ENABLED", None)
    gdal.SetThreadLocalConfigOption("GDAL_PAM_ENABLED", "NO")


def restore_pam() -> None:
    """Undo :func:`pam_off_until_done` in this thread (nothing if it was not set here)."""
    from osgeo import gdal

    ident = threading.get_ident()
    if ident in _PAM_SAVED:
        saved = _PAM_SAVED.pop(ident)
        if not (_PAM_OFF_FOR_PROCESS and threading.current_thread() is threading.main_thread()):
            gdal.SetThreadLocalConfigOption("GDAL_PAM_ENABLED", saved)


def _text(text: str) -> str:
    """Help text as minimal HTML that also reads as plain text (qgis_process shows it raw): only <, > and &
    are escaped."""
    return html.escape(text, quote=False)


def _choice_labels(param: QgsProcessingParameterEnum) -> list[str]:
    """What each choice is: its label, and for a static-strings choice also the name to give."""
    labels = param.metadata().get("lst_fusion_labels")
    if not labels:
        return param.options()
    return [name if label == name else f"{name}, {label}" for name, label in zip(param.options(), labels)]


def _default_text(param: QgsProcessingParameterDefinition) -> str:
    """A parameter's default as users give it, or '' where there is none to show (inputs, outputs)."""
    value = param.defaultValue()
    if value is None or value == "" or param.isDestination():
        return ""
    if isinstance(param, QgsProcessingParameterEnum) and not param.usesStaticStrings():
        try:
            return f"{int(value)} ({param.options()[int(value)]})"
        except (TypeError, ValueError, IndexError):
            return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _range_problem(param: QgsProcessingParameterDefinition, value) -> str | None:
    """What is wrong with a plain number or choice given for ``param``, or None (expressions, layers and
    unset values are left to QGIS)."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    label = f"{param.name()} ({param.description()})"
    if isinstance(param, QgsProcessingParameterNumber):
        integer = param.dataType() == QgsProcessingParameterNumber.Integer
        try:
            number = float(value)
        except ValueError:
            return None if not str(value).strip() else f"{label}: {value!r} is not a number."
        low, high = param.minimum(), param.maximum()
        bounds = (f"between {low:g} and {high:g}" if high < 1e300 and low > -1e300 else
                  f"at least {low:g}" if low > -1e300 else f"at most {high:g}" if high < 1e300 else "")
        if integer and number != int(number):
            return f"{label} must be a whole number{' ' + bounds if bounds else ''}; got {value}."
        if not low <= number <= high:
            return f"{label} must be {bounds}; got {number:g}."
    if isinstance(param, QgsProcessingParameterEnum) and not param.allowMultiple():
        return _choice_problem(param, value, label)
    return None


def choice_index(raw) -> int | None:
    """The index a choice was given as (an int, or digits from qgis_process or a saved model), else None."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw)
    return None


def _choice_problem(param: QgsProcessingParameterEnum, value, label: str) -> str | None:
    options = param.options()
    index = choice_index(value)
    labels = param.metadata().get("lst_fusion_labels") or options  # a static choice's labels, then its names
    choices = "; ".join(f"{k}: {text}" + (f" [{name}]" if text != name else "")
                        for k, (text, name) in enumerate(zip(labels, options)))
    if index is not None and not 0 <= index < len(options):
        return f"{label}: {index} is not one of the choices ({choices})."
    if index is None and param.usesStaticStrings() and isinstance(value, str) and value not in options:
        return f"{label}: {value!r} is not one of the choices ({choices})."
    return None


def _choices_by_name(alg, parameters: dict) -> dict:
    """``parameters`` with the choices offered by name (static strings) but given by index, as saved models
    and scripts of earlier versions give them, named: QGIS accepts only names for those."""
    named = dict(parameters)
    for param in alg.parameterDefinitions():
        if isinstance(param, QgsProcessingParameterEnum) and param.usesStaticStrings():
            index = choice_index(parameters.get(param.name()))
            if index is not None and 0 <= index < len(param.options()):
                named[param.name()] = param.options()[index]
    return named


def raster_source(alg: QgsProcessingAlgorithm, parameters, name: str, context) -> str | None:
    """The file behind a raster parameter. A path is used as given: a QGIS layer made only to read its
    source computes statistics that GDAL then saves as .aux.xml beside the user's file."""
    value = parameters.get(name)
    if isinstance(value, str) and value.strip() and Path(value).is_file():
        return value
    layer = alg.parameterAsRasterLayer(parameters, name, context)
    return layer.source() if layer is not None else None


def progress_from(feedback: QgsProcessingFeedback | None):
    """A backend ``Progress`` that reports into a Processing feedback object."""
    from backend.progress import Progress

    if feedback is None:
        return Progress()
    warn = getattr(feedback, "pushWarning", None) or (lambda m: feedback.reportError(m, False))
    return Progress(
        on_progress=lambda f: feedback.setProgress(100.0 * f),
        on_message=feedback.pushInfo,
        on_warning=warn,
        is_cancelled=feedback.isCanceled,
    )


@contextlib.contextmanager
def backend_errors() -> Iterator[None]:
    """Check the backend can run, and turn its errors into messages Processing shows."""
    problem = dependencies.backend_problem()
    if problem:
        raise QgsProcessingException(problem)
    from backend.errors import Cancelled, LSTFusionError
    from backend.io.atomic import stop_on_signals

    try:
        try:
            with stop_on_signals():  # Ctrl-C / SIGTERM in qgis_process stop the run cleanly
                yield
        except BaseException:
            restore_pam()  # no post-processing follows a failed run
            raise
    except ModuleNotFoundError as exc:
        table = {**dependencies.REQUIRED, **dependencies.OPTIONAL}
        if exc.name not in table:
            raise
        raise QgsProcessingException(
            f"This algorithm needs the Python package {exc.name}.\n" + dependencies.install_hint([exc.name], table)
        ) from exc
    except Cancelled as exc:
        kept = getattr(exc, "kept", False)  # a series keeps the dates it finished, and says so
        raise QgsProcessingException(str(exc) if kept else f"{exc} No output was written.") from exc
    except LSTFusionError as exc:
        raise QgsProcessingException(str(exc)) from exc


def add_series_inputs(alg: QgsProcessingAlgorithm, what: str, optional_folder: bool = True) -> None:
    """INPUT (a folder, searched recursively) and INPUT_FILES (individual files) for a series."""
    alg.addParameter(QgsProcessingParameterFile(
        "INPUT", f"{what}: folder (searched recursively)", behavior=QgsProcessingParameterFile.Folder,
        optional=optional_folder))
    alg.addParameter(QgsProcessingParameterMultipleLayers(
        "INPUT_FILES", f"{what}: files", layerType=QgsProcessing.TypeFile, optional=True))


def series_inputs(alg: QgsProcessingAlgorithm, parameters, context) -> list[str]:
    """The folder and files given for a series; at least one is required."""
    folder = alg.parameterAsString(parameters, "INPUT", context)
    files = alg.parameterAsFileList(parameters, "INPUT_FILES", context)
    # An unset multiple-file parameter comes back as [''], not [].
    inputs = [p for p in [folder, *(files or [])] if p]
    if not inputs:
        raise QgsProcessingException("Give the series as a folder (INPUT) or as files (INPUT_FILES).")
    return inputs


def add_folder_and_files(alg: QgsProcessingAlgorithm, name: str, what: str) -> None:
    """NAME (a folder, searched recursively) and NAME_FILES (files) for one optional series input."""
    alg.addParameter(QgsProcessingParameterFile(
        name, f"{what}: folder", behavior=QgsProcessingParameterFile.Folder, optional=True))
    alg.addParameter(QgsProcessingParameterMultipleLayers(
        f"{name}_FILES", f"{what}: files", layerType=QgsProcessing.TypeFile, optional=True))


def folder_and_files(alg: QgsProcessingAlgorithm, parameters, context, name: str) -> list[str]:
    """The folder and files given for NAME / NAME_FILES (an unset file list comes back as [''])."""
    found = [alg.parameterAsString(parameters, name, context),
             *(alg.parameterAsFileList(parameters, f"{name}_FILES", context) or [])]
    return [p for p in found if p]


def fine_and_coarse_series(alg: QgsProcessingAlgorithm, parameters, context) -> tuple[list[str], list[str]]:
    """The Landsat (FINE/FINE_FILES) and MODIS (COARSE/COARSE_FILES) series of a season; both are required."""
    from backend.errors import InputError

    fine = folder_and_files(alg, parameters, context, "FINE")
    coarse = folder_and_files(alg, parameters, context, "COARSE")
    if not fine or not coarse:
        raise InputError("Give the Landsat series (FINE or FINE_FILES) and the MODIS series (COARSE or "
                         "COARSE_FILES).")
    return fine, coarse


def add_advanced_flag(param: QgsProcessingParameterDefinition) -> None:
    """Show ``param`` in the dialog's 'Advanced' section."""
    param.setFlags(param.flags() | QgsProcessingParameterDefinition.FlagAdvanced)


def add_renamed(alg: QgsProcessingAlgorithm, param: QgsProcessingParameterDefinition, old: str) -> None:
    """``param`` plus a hidden, optional copy under its ``old`` name, so that saved models and scripts
    that give the old name keep running (see :func:`renamed_value`)."""
    alg.addParameter(param)
    alias = param.clone()
    alias.setName(old)
    alias.setFlags(alias.flags() | QgsProcessingParameterDefinition.FlagHidden
                   | QgsProcessingParameterDefinition.FlagOptional)
    alg.addParameter(alias)


def renamed_value(parameters: dict, name: str, old: str, feedback: QgsProcessingFeedback | None = None) -> dict:
    """``parameters`` with ``name`` taken from its ``old`` name when only that was given (with a warning)."""
    if parameters.get(name) not in (None, "") or parameters.get(old) in (None, ""):
        return parameters
    if feedback is not None:
        feedback.pushWarning(f"{old} is now called {name}; the value given as {old} was used.")
    return {**parameters, name: parameters[old]}


def add_advanced(alg: QgsProcessingAlgorithm, params) -> None:
    """Add parameters under the dialog's 'Advanced' section."""
    for param in params:
        add_advanced_flag(param)
        alg.addParameter(param)


def lst_layer_name(what: str, unit: str) -> str:
    """A layer name that says what it holds, with its unit: 'LST 2020-06-17 STARFM (°C)'."""
    from backend.io.writers import unit_symbol

    return f"{' '.join(f'LST {what}'.split())} ({unit_symbol(unit)})"


def style_output(context: QgsProcessingContext, output: str, name: str, unit: str = "K") -> None:
    """Name the output layer and style it as LST when Processing loads it."""
    from ..styling import LSTStyler

    if context.willLoadLayerOnCompletion(output):
        details = context.layerToLoadOnCompletionDetails(output)
        details.name = name
        details.setPostProcessor(LSTStyler.create(unit, name))


def load_outputs(context: QgsProcessingContext, paths, group: str, unit: str = "K", names=None,
                 dates=None, style: str = "lst") -> None:
    """Queue output rasters to be loaded, styled (``style``: 'lst', 'error' or 'flags'), when the algorithm
    finishes; LST and error layers of one call share one colour range, so they compare by colour.

    With ``dates`` (ISO strings) each layer covers its day in QGIS's temporal framework, so the
    Temporal Controller steps through a series.
    """
    from backend.io.display_range import display_range

    from ..styling import LSTStyler

    paths = list(paths)
    names = names or [f"{group} {Path(path).stem}" for path in paths]
    dates = dates or [None] * len(paths)
    shared = display_range(paths, symmetric=style == "error") if style in ("lst", "error") and paths else None
    for path, name, date in zip(paths, names, dates):
        details = QgsProcessingContext.LayerDetails(name, context.project(), name)
        details.setPostProcessor(LSTStyler.create(unit, name, date, style, shared))
        context.addLayerToLoadOnCompletion(str(path), details)

