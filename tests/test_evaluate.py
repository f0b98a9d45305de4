"""Evaluate fusion: baselines, breakdowns, the report (tables = JSON, images decode), QGIS, bad input."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import os
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import rasterio
from qgis.core import QgsProcessingFeedback, QgsProject

from backend.errors import Cancelled, EmptyDataError, InputError
from backend.evaluation.evaluate import MODIS_BASELINE, PERSISTENCE, EvaluateParams, evaluate
from backend.evaluation.report import DIGITS
from backend.fusion.onnx_model import OnnxParams, shipped_models
from backend.fusion.series import fuse_series
from backend.io.readers import read_lst

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fused(tiny_patches, tmp_path_factory):
    """STARFM and the shipped model over the tiny season, every Landsat date predicted from the others."""
    root = tiny_patches.parent
    out = tmp_path_factory.mktemp("fused")
    fuse_series("starfm", [root / "landsat"], [root / "modis30"], out / "starfm", include_paired=True)
    fuse_series("onnx", [root / "landsat"], [root / "modis30"], out / "sttfn",
                OnnxParams(shipped=shipped_models()[0]), include_paired=True)
    return root, out


class _Cells(HTMLParser):
    """The table cells that carry data-* keys, and every embedded PNG."""

    def __init__(self):
        super().__init__()
        self.cells, self.images, self._open = [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "td" and "data-metric" in attrs:
            self._open = attrs
        if tag == "img" and attrs.get("src", "").startswith("data:image/png;base64,"):
            self.images.append(attrs["src"].split(",", 1)[1])

    def handle_data(self, data):
        if self._open is not None:
            self.cells.append((self._open, data.strip()))
            self._open = None


def _check_report(html_path: Path, record: dict) -> int:
    from PIL import Image

    parser = _Cells()
    parser.feed(html_path.read_text(encoding="utf-8"))
    checked = 0
    rows = {(r["date"], r["label"]): r for r in record["results"]}
    for attrs, text in parser.cells:
        metric = attrs["data-metric"]
        if "data-subset" in attrs:
            value = record["summary"][attrs["data-subset"]][attrs["data-label"]][metric]
        else:
            value = rows[(attrs["data-date"], attrs["data-label"])][metric]
        expected = "–" if value is None else f"{value:.{DIGITS[metric]}f}"
        assert text == expected, (attrs, text, expected)
        checked += 1
    assert parser.images
    for data in parser.images:
        image = Image.open(io.BytesIO(base64.b64decode(data)))
        image.verify()
        assert image.size[0] > 100 and image.size[1] > 100
    return checked


def test_report_of_two_methods_with_baselines(fused, tmp_path):
    root, out = fused
    truth = root / "sample" / "truth"
    result = evaluate([out / "starfm", out / "sttfn"], [truth], tmp_path / "eval", coarse=[root / "modis30"],
                      fine_series=[root / "landsat"], classes=truth / "landcover.tif")
    record = json.loads(result.json.read_text())
    labels = {r["label"] for r in record["results"]}
    assert labels == {"STARFM", "STTFN (ONNX)", MODIS_BASELINE, PERSISTENCE}
    assert {d["date"] for d in record["dates"]} == {str(read_lst(p).date) for p in (out / "starfm").glob("*.tif")}
    # Each row scored on the same pixels for every entry of the date; the numbers match an independent recount.
    row = next(r for r in record["results"] if r["label"] == "STARFM" and r["date"] == record["dates"][1]["date"])
    pred = read_lst(out / "starfm" / row["prediction"]).data
    ref = read_lst(truth / next(d["reference"] for d in record["dates"] if d["date"] == row["date"])).data
    ok = np.isfinite(pred) & np.isfinite(ref)
    assert row["n"] == ok.sum() and row["rmse"] == pytest.approx(float(np.sqrt(np.mean((pred - ref)[ok] ** 2))),
                                                               rel=1e-5)
    # The baselines are what the reader needs: MODIS at t2 and the last Landsat before it.
    modis = next(r for r in record["results"] if r["label"] == MODIS_BASELINE and r["date"] == row["date"])
    assert modis["baseline"] and modis["prediction"].startswith("modis_")
    first = record["dates"][0]
    assert first["persistence_date"] is None and first["change_k"] is None
    assert all(d["persistence_date"] < d["date"] for d in record["dates"][1:])
    # Classes named from the land cover; every class breakdown sums to the pixels scored.
    assert set(row["classes"]) <= {"water", "urban", "forest", "winter crop", "summer crop", "bare soil"}
    assert sum(c["n"] for c in row["classes"].values()) == row["n"]
    # The report's tables show exactly the JSON's numbers; every image decodes.
    assert _check_report(result.html, record) > 40
    html = result.html.read_text(encoding="utf-8")
    assert "Did fusion add anything?" in html and "By land-cover class" in html
    with result.csv.open() as f:
        rows = list(csv.DictReader(f))
    assert {r["label"] for r in rows} == labels
    assert any(r["group"].startswith("classes:") for r in rows)
    # Error rasters: prediction − reference, tagged so no stage reads them as LST.
    assert len(result.errors) == sum(1 for r in record["results"] if not r["baseline"])
    date, label, path = result.errors[0]
    with rasterio.open(path) as src:
        assert src.tags()["LST_FUSION_CONTENT"] == "fusion_error" and src.tags()["METHOD"] == label
        error = src.read(1)
    pred = next(r for r in record["results"] if r["label"] == label and r["date"] == date)
    assert float(np.nanmean(error)) == pytest.approx(pred["bias"], abs=0.05)


def test_difficult_dates_and_gap_filled_reference(fused, tmp_path):
    """Against gap-filled Landsat (flags found beside it), with every change counted as difficult."""
    root, out = fused
    result = evaluate([out / "starfm"], [root / "landsat"], tmp_path / "eval", coarse=[root / "modis30"],
                      params=EvaluateParams(difficult_change_k=0.0, metric_unit="C", map_dates=1))
    record = json.loads(result.json.read_text())
    assert all(d["difficult"] for d in record["dates"] if d["change_k"] is not None)
    assert all(d["flags"] and d["flags"].endswith("_fillflags.tif") for d in record["dates"])
    status = [r["reference_status"] for r in record["results"]]
    assert all(set(s) <= {"observed", "gap-filled"} for s in status)
    assert any("gap-filled" in s for s in status)  # the tiny season is cloudy
    assert record["settings"]["unit"] == "C"
    html = result.html.read_text(encoding="utf-8")
    assert "Observed or gap-filled reference" in html and "in °C" in html
    assert html.count("<h2>Maps of") == 1
    _check_report(result.html, record)


def _write_like(source: Path, path: Path, data: np.ndarray, shift: float = 0.0, dtype="float32", tags=None) -> Path:
    with rasterio.open(source) as src:
        profile = src.profile
        base_tags = src.tags()
    profile.update(dtype=dtype, nodata=None if dtype != "float32" else float("nan"))
    if shift:
        t = profile["transform"]
        profile["transform"] = rasterio.Affine(t.a, t.b, t.c + shift, t.d, t.e, t.f)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(dtype), 1)
        dst.update_tags(**(tags if tags is not None else base_tags))
    return path


def test_bad_inputs_give_clear_errors_and_no_output(fused, tmp_path):
    root, out = fused
    truth = root / "sample" / "truth"
    prediction = sorted((out / "starfm").glob("lst_*.tif"))[2]
    data = read_lst(prediction).data
    target = tmp_path / "eval"
    # Another grid: shifted by 45 m.
    shifted = _write_like(prediction, tmp_path / "shifted.tif", data, shift=45.0)
    with pytest.raises(InputError, match=r"shifted.tif .* is not on the grid of the reference"):
        evaluate([shifted], [truth], target)
    # No valid pixel in common with the reference.
    reference = next(p for p in truth.glob("LST_truth_*.tif") if read_lst(p).date == read_lst(prediction).date)
    ref = read_lst(reference).data.copy()
    half = data.copy()
    half[:, : data.shape[1] // 2] = np.nan
    left = _write_like(prediction, tmp_path / "left.tif", half)
    ref[:, data.shape[1] // 2:] = np.nan
    right = _write_like(reference, tmp_path / "right_truth.tif", ref)
    with pytest.raises(EmptyDataError, match="no valid pixel in common"):
        evaluate([left], [right], target)
    # A continuous raster given as classes.
    continuous = _write_like(reference, tmp_path / "continuous.tif", read_lst(reference).data, tags={})
    with pytest.raises(InputError, match="LAND_COVER: continuous.tif .*not a categorical raster|distinct values"):
        evaluate([prediction], [truth], target, classes=continuous)
    # Classes on another grid; labels that do not match the inputs.
    lc = truth / "landcover.tif"
    with rasterio.open(lc) as src:
        codes = src.read(1)
    moved = _write_like(lc, tmp_path / "moved_lc.tif", codes, shift=30.0, dtype="uint8", tags={})
    with pytest.raises(InputError, match="LAND_COVER: moved_lc.tif .* is not on the reference's grid"):
        evaluate([prediction], [truth], target, classes=moved)
    with pytest.raises(InputError, match="LABELS: 2 label"):
        evaluate([prediction], [truth], target, labels=["a", "b"])
    assert not target.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_cancelling_leaves_no_output(fused, tmp_path):
    from backend.progress import Progress

    root, out = fused
    calls = []
    progress = Progress(on_progress=calls.append, is_cancelled=lambda: len(calls) > 3)
    with pytest.raises(Cancelled):
        evaluate([out / "starfm"], [root / "sample" / "truth"], tmp_path / "eval", progress=progress)
    assert not (tmp_path / "eval").exists() and list(tmp_path.iterdir()) == []


def test_evaluate_through_processing(fused, provider, tmp_path):
    import processing

    root, out = fused
    truth = root / "sample" / "truth"
    feedback = QgsProcessingFeedback()
    res = processing.runAndLoadResults("lst_fusion:evaluate", {
        "PREDICTIONS": str(out / "starfm"), "PREDICTIONS_FILES": [str(out / "sttfn")], "LABELS": "STARFM, STTFN",
        "REFERENCE": str(truth), "COARSE": str(root / "modis30"), "FINE": str(root / "landsat"),
        "LAND_COVER": str(truth / "landcover.tif"), "METRIC_UNIT": 1, "OUTPUT_FOLDER": str(tmp_path / "eval")},
        feedback=feedback)
    record = json.loads(Path(res["METRICS_JSON"]).read_text())
    assert record["classes"] and any(r.get("classes") for r in record["results"])
    assert {r["label"] for r in record["results"] if not r["baseline"]} == {"STARFM", "STTFN"}
    assert record["settings"]["unit"] == "C"
    assert Path(res["OUTPUT_HTML"]).name == "report.html" and res["DATE_COUNT"] == len(record["dates"])
    layers = [layer for layer in QgsProject.instance().mapLayers().values() if layer.name().startswith("Error ")]
    assert len(layers) == 2 * len(record["dates"])
    layer = layers[0]
    shader = layer.renderer().shader().rasterShaderFunction()
    assert shader.minimumValue() == pytest.approx(-shader.maximumValue())  # centred on 0
    assert layer.temporalProperties().isActive()
    QgsProject.instance().removeAllMapLayers()


def test_land_cover_keeps_its_old_name(fused, provider, tmp_path):
    """Saved models and scripts of 0.4 give the land cover as CLASSES (a number of classes in Fuse): still
    read, with a warning, and not offered in the help."""
    import processing
    from qgis.core import QgsApplication, QgsProcessingException

    root, out = fused
    truth = root / "sample" / "truth"
    reference = sorted(truth.glob("LST_truth_*.tif"))[0]
    continuous = _write_like(reference, tmp_path / "continuous.tif", read_lst(reference).data, tags={})
    with pytest.raises(QgsProcessingException, match="LAND_COVER: continuous.tif"):
        processing.run("lst_fusion:evaluate", {"PREDICTIONS": str(out / "starfm"), "REFERENCE": str(truth),
                                               "CLASSES": str(continuous), "OUTPUT_FOLDER": str(tmp_path / "e")})
    alg = QgsApplication.processingRegistry().algorithmById("lst_fusion:evaluate")
    assert "<b>LAND_COVER</b>" in alg.shortHelpString() and "<b>CLASSES</b>" not in alg.shortHelpString()
    assert not (tmp_path / "e").exists()


@pytest.mark.slow
def test_evaluate_through_qgis_process(fused, tmp_path):
    root, out = fused
    env = {**os.environ, "QGIS_CUSTOM_CONFIG_PATH": str(tmp_path / "cfg"), "QT_QPA_PLATFORM": "offscreen"}
    env.pop("QGIS_PLUGINPATH", None)
    run = subprocess.run([str(REPO / "scripts" / "qgis_process"), "run", "lst_fusion:evaluate", "--json", "--",
                          f"PREDICTIONS={out / 'starfm'}", f"PREDICTIONS_FILES={out / 'sttfn'}",
                          f"REFERENCE={root / 'sample' / 'truth'}", f"COARSE={root / 'modis30'}",
                          f"FINE={root / 'landsat'}", f"OUTPUT_FOLDER={tmp_path / 'eval'}"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    results = json.loads(run.stdout[run.stdout.index("{"):])["results"]
    record = json.loads(Path(results["METRICS_JSON"]).read_text())
    assert {r["label"] for r in record["results"] if not r["baseline"]} == {"STARFM", "STTFN (ONNX)"}
    assert Path(results["OUTPUT_HTML"]).exists()


@pytest.mark.slow
def test_graphical_model_from_sample_data_to_the_report(provider, tmp_path):
    """examples/lst_chain_evaluate.model3: sample → gap-fill → resample → patch → train → fuse → evaluate."""
    import processing
    from qgis.core import QgsProcessingModelAlgorithm

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(REPO / "examples" / "lst_chain_evaluate.model3"))
    res = processing.run(model, {"WIDTH": 96, "HEIGHT": 96, "N_DATES": 4, "START_DATE": "2020-06-01",
                                 "END_DATE": "2020-08-05", "PATCH_SIZE": 48, "STRIDE": 24, "EPOCHS": 1,
                                 "patches:PATCHES": str(tmp_path / "p"), "fuse:FUSED": str(tmp_path / "fused"),
                                 "evaluate:EVALUATION": str(tmp_path / "evaluation")},
                         feedback=QgsProcessingFeedback())
    record = json.loads((Path(res["evaluate:EVALUATION"]) / "metrics.json").read_text())
    methods = {r["label"] for r in record["results"] if not r["baseline"]}
    assert methods == {"ESTARFM", "STTFN (ONNX)"}
    assert {r["label"] for r in record["results"] if r["baseline"]} == {MODIS_BASELINE, PERSISTENCE}
    assert any(r.get("classes") for r in record["results"])
    _check_report(Path(res["evaluate:EVALUATION"]) / "report.html", record)


def test_sample_data_declares_difficult_dates_and_evaluation_reports_them(tmp_path):
    from backend.preprocess.sample_data import SampleSpec, generate_sample_dataset

    spec = dict(width=48, height=48, n_dates=8, start=dt.date(2020, 3, 1), end=dt.date(2020, 10, 30), seed=11)
    hard = json.loads(generate_sample_dataset(tmp_path / "hard", SampleSpec(**spec, difficult_fraction=0.5))
                      .manifest.read_text())
    calm = json.loads(generate_sample_dataset(tmp_path / "calm", SampleSpec(**spec, difficult_fraction=0.0))
                      .manifest.read_text())
    declared = hard["difficult_dates"]
    assert len(declared) == 3 and not calm["difficult_dates"]
    assert hard["dates"][0]["date"] not in declared and hard["dates"][-1]["date"] not in declared
    for h, c in zip(hard["dates"], calm["dates"]):
        a = read_lst(tmp_path / "hard" / h["truth"]).data
        b = read_lst(tmp_path / "calm" / c["truth"]).data
        why = declared.get(h["date"])
        if why is None or why.startswith("sensor"):
            np.testing.assert_array_equal(a, b)  # the events have their own random stream
        elif why.startswith(("heat wave", "cold spell")):
            shift = float(why.split("scene ")[1].split(" K")[0])
            assert np.median(a - b) == pytest.approx(shift, abs=0.35 * abs(shift))
        else:  # whole parcels irrigated (−8 K) or harvested (+6 K), nothing else
            assert np.isin(np.round(a - b), [0, -8, 6]).all() and (np.abs(a - b) > 5).any()
        if why and why.startswith("sensor"):
            assert h["modis_bias_k"] == pytest.approx(float(why.split("MODIS ")[1].split(" K")[0]), abs=0.051)
    truth = tmp_path / "hard" / "truth"
    result = evaluate([truth], [truth], tmp_path / "eval", params=EvaluateParams(difficult_change_k=1000.0))
    marked = {d["date"]: d["why"] for d in result.dates if d["difficult"]}
    assert marked == declared


@pytest.mark.slow
def test_the_whole_chain_through_qgis_process(tmp_path):
    """The demo's chain, reduced: sample → gap-fill → resample → patch → train → fuse → evaluate, headless."""
    env = {**os.environ, "QGIS_CUSTOM_CONFIG_PATH": str(tmp_path / "cfg"), "QT_QPA_PLATFORM": "offscreen"}
    env.pop("QGIS_PLUGINPATH", None)
    run = subprocess.run([str(REPO / "scripts" / "qgis_process"), "run", str(REPO / "examples" /
                                                                          "lst_chain_evaluate.model3"),
                          "--json", "--", "WIDTH=96", "HEIGHT=96", "N_DATES=4", "START_DATE=2020-06-01",
                          "END_DATE=2020-08-05", "PATCH_SIZE=48", "STRIDE=24", "EPOCHS=1",
                          f"patches:PATCHES={tmp_path / 'p'}", f"fuse:FUSED={tmp_path / 'f'}",
                          f"evaluate:EVALUATION={tmp_path / 'e'}"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    record = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert {r["label"] for r in record["results"] if not r["baseline"]} == {"ESTARFM", "STTFN (ONNX)"}
    _check_report(tmp_path / "e" / "report.html", record)
