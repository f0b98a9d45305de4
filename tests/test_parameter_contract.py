"""One parameter contract: every Processing algorithm's options are the backend dataclasses' fields.

Names, labels, defaults, ranges and choices are written once, in the dataclass the backend stage
takes; an algorithm that wrote one of them by hand, or added an option the backend does not
declare, fails here.
"""

from __future__ import annotations

import importlib

import pytest

# The dataclass(es) each algorithm's options come from ("module:Class").
CONTRACTS = {
    "gap_fill": ["backend.preprocess.gapfill:GapFillParams"],
    "resample": ["backend.preprocess.resample:ResampleParams"],
    "build_patches": ["backend.preprocess.patches:PatchParams"],
    "train": ["backend.training.train:TrainConfig"],
    "generate_sample_dataset": ["backend.preprocess.sample_data:SampleSpec"],
    "import_lst": ["backend.io.importer:ImportParams"],
    "download_lst": ["backend.acquire.download:DownloadParams"],
    "evaluate": ["backend.evaluation.evaluate:EvaluateParams"],
    "fuse": ["backend.fusion.params:StarfmParams", "backend.fusion.params:EstarfmParams",
             "backend.fusion.onnx_model:OnnxParams", "backend.fusion.params:SeasonParams"],
    "fuse_series": ["backend.fusion.params:StarfmParams", "backend.fusion.params:EstarfmParams",
                    "backend.fusion.onnx_model:OnnxParams", "backend.fusion.params:SeasonParams",
                    "backend.fusion.series:SeriesOptions"],
    "adapt_model": ["backend.training.adapt:AdaptParams"],
}

# Options that are the algorithm's own, not a stage's setting: whether to open the results in QGIS, the
# choice of the fusion method itself and of a shipped model (registries), resuming a training folder, the
# target grid of resampling (a Processing extent/CRS/resolution), the unit of unlabelled float inputs and
# of the outputs (backend/io readers' and writers' parameter factories, compared below), and the run scope
# of a season (which dates, which references, where to compute).
GLUE = {"LOAD_OUTPUTS", "METHOD", "SHIPPED_MODEL", "RESUME", "TARGET_CRS", "RESOLUTION", "EXTENT", "UNIT",
        "OUTPUT_UNIT", "DATES", "REFERENCE_DATES", "SCHEDULER", "INCLUDE_PAIRED", "LABELS"}
OPTION_TYPES = {"enum", "number", "boolean", "string", "crs"}


def _classes(names: list[str]) -> list[type]:
    out = []
    for name in names:
        module, cls = name.split(":")
        out.append(getattr(importlib.import_module(module), cls))
    return out


def _same(built, declared) -> list[str]:
    """What differs between the parameter the algorithm has and the one its dataclass field builds."""
    checks = [("type", lambda p: p.type()), ("label", lambda p: p.description()),
              ("default", lambda p: p.defaultValue()), ("optional", lambda p: bool(p.flags() & p.FlagOptional)),
              ("choices", lambda p: p.options() if p.type() == "enum" else None),
              ("static strings", lambda p: p.usesStaticStrings() if p.type() == "enum" else None),
              ("minimum", lambda p: p.minimum() if p.type() == "number" else None),
              ("maximum", lambda p: p.maximum() if p.type() == "number" else None)]
    return [f"{what}: {get(declared)!r} != {get(built)!r}" for what, get in checks if get(declared) != get(built)]


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_every_option_is_a_backend_field(provider, name):
    from backend.parameters import exposed
    from lst_fusion_plugin.algorithms import method_params, params

    algorithm = provider.algorithm(name)
    fields = [fi for cls in _classes(CONTRACTS[name]) for fi in exposed(cls)]
    build = method_params.parameter_for if name.startswith("fuse") else params.parameter_for
    assert fields, name
    for field, info in fields:
        declared = algorithm.parameterDefinition(info.name)
        assert declared is not None, f"{name}: {info.name} of the backend is not offered"
        differences = _same(build(field, info), declared)
        assert not differences, f"{name}.{info.name}: {'; '.join(differences)}"
    own = {info.name for _, info in fields}
    handwritten = [p.name() for p in algorithm.parameterDefinitions()
                   if p.type() in OPTION_TYPES and p.name() not in own and p.name() not in GLUE]
    assert not handwritten, f"{name}: options no backend dataclass declares: {handwritten}"


@pytest.mark.parametrize("name", ["gap_fill", "resample", "import_lst", "fuse", "fuse_series", "evaluate"])
def test_units_come_from_the_readers_and_writers(provider, name):
    from backend.io.readers import input_unit_param
    from backend.io.writers import output_unit_param
    from lst_fusion_plugin.algorithms import params

    algorithm = provider.algorithm(name)
    for factory, parameter in ((input_unit_param, "UNIT"), (output_unit_param, "OUTPUT_UNIT")):
        declared = algorithm.parameterDefinition(parameter)
        if declared is None:
            continue
        field = factory()
        built = params.parameter_for(field, field.metadata["param"])
        assert declared.options() == built.options() or name == "import_lst", (name, parameter)
        assert declared.defaultValue() == built.defaultValue(), (name, parameter)


def test_registry_choices_are_named_and_indices_still_run(provider):
    """MODEL and METHOD are offered by name (static strings): a registry that grows keeps every saved
    choice meaning the same entry; the indices saved by earlier versions still select the same one."""
    from qgis.core import QgsProcessingContext

    from backend.fusion.methods import METHODS
    from models.registry import MODELS

    context = QgsProcessingContext()
    train = provider.algorithm("train")
    model = train.parameterDefinition("MODEL")
    assert model.usesStaticStrings() and model.options() == list(MODELS)
    assert all(label in model.help() for label in (s.label for s in MODELS.values()))
    fuse = provider.algorithm("fuse")
    method = fuse.parameterDefinition("METHOD")
    assert method.usesStaticStrings() and method.options() == list(METHODS)
    base = {"FINE_T1": "a.tif", "COARSE_T1": "b.tif", "COARSE_T2": "c.tif"}
    for value, ok in ((1, True), ("1", True), ("estarfm", True), (len(METHODS), False), ("nosuch", False)):
        accepted, message = fuse.checkParameterValues({**base, "METHOD": value}, context)
        if ok:
            assert "METHOD" not in message, (value, message)
        else:
            assert not accepted and "METHOD" in message and "estarfm" in message, (value, message)


def test_stages_return_what_they_wrote(tmp_path, sample_dataset):
    """The algorithms read typed results, so a result must say exactly what the stage's report says; the
    stages take their dataclass or its fields as keywords, and refuse a keyword that is not a field."""
    import json

    from backend.io.importer import ImportParams, import_lst
    from backend.preprocess.gapfill import gap_fill_series

    folder, manifest = sample_dataset
    filled = gap_fill_series([folder / "landsat"], tmp_path / "filled", max_gap_days=40.0)
    report = json.loads(filled.report.read_text())
    assert [d.output for d in filled.dates] == [d["output"] for d in report["dates"]]
    assert all((filled.folder / d.output).is_file() and (filled.folder / d.flags).is_file() for d in filled.dates)
    fractions = [d["temporal_fraction"] + d["spatial_fraction"] + d["guided_fraction"] for d in report["dates"]]
    assert filled.filled_fraction == pytest.approx(sum(fractions) / len(fractions))
    assert 0 < filled.filled_fraction < 1 and filled.unit == report["unit"] == "K"

    source = folder / manifest["dates"][0]["landsat_st_b10"]
    import rasterio

    result = import_lst(source, tmp_path / "lst.tif", ImportParams(out_unit="C"))
    with rasterio.open(result.output) as src:
        tags = src.tags()
    assert result.output == tmp_path / "lst.tif" and str(result.date) == manifest["dates"][0]["date"]
    assert (result.product, str(result.date)) == (tags["SOURCE_PRODUCT"], tags["ACQUISITION_DATE"])
    assert tags["LST_UNIT"] == "C" and 0 < result.valid_fraction <= 1
    with pytest.raises(TypeError, match="out_units"):
        import_lst(source, tmp_path / "other.tif", out_units="C")
    assert not (tmp_path / "other.tif").exists()
