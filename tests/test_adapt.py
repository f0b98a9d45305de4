"""Adapting a deep model to a season: the card's record, dates left out, nothing partial, Processing, qgis_process."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from qgis.core import QgsProcessingFeedback

from backend.errors import Cancelled, InputError
from backend.fusion.fuse import fuse
from backend.fusion.onnx_model import OnnxParams
from backend.io.readers import read_lst
from backend.progress import Progress
from backend.training.adapt import AdaptParams, adapt_model
from backend.training.onnx_export import read_model_card

REPO = Path(__file__).resolve().parents[1]
SHIPPED = "sttfn_synthetic_orleans"
QUICK = {"shipped": SHIPPED, "minutes": 0.03, "patch_size": 32, "stride": 32}


@pytest.fixture(scope="module")
def season(tiny_patches) -> tuple[list[str], list[str]]:
    root = tiny_patches.parent
    return (sorted(str(p) for p in (root / "landsat").glob("*_filled.tif")),
            sorted(str(p) for p in (root / "modis30").glob("*.tif")))


def _date(path: str) -> dt.date:
    return read_lst(path).date


def test_the_card_records_what_it_was_adapted_from_and_on(season, tmp_path):
    fine, coarse = season
    left_out = _date(fine[3])
    result = adapt_model(fine, coarse, tmp_path / "adapted.onnx", exclude_dates=[left_out], **QUICK)
    card = read_model_card(result.model)
    base = read_model_card(OnnxParams(shipped=SHIPPED).path)
    record = card.training
    assert record["adapted_from"] == {"file": f"{SHIPPED}.onnx", "title": base.title, "training": base.training}
    adaptation = record["adaptation"]
    assert str(left_out) not in adaptation["dates"] and adaptation["excluded_dates"] == [str(left_out)]
    assert adaptation["dates"] == [str(_date(f)) for f in fine if _date(f) != left_out] == list(result.dates)
    assert adaptation["validation_dates"] and set(adaptation["validation_dates"]) <= set(adaptation["dates"])
    assert adaptation["cloud_aware"] and adaptation["budget_minutes"] == QUICK["minutes"]
    assert adaptation["epochs"] >= 1
    assert card.validation["base_rmse_k"] == pytest.approx(result.base_rmse_k) and result.base_rmse_k > 0
    assert card.validation["rmse_k"] == pytest.approx(result.rmse_k) and result.rmse_k <= result.base_rmse_k
    assert (card.model, card.roles, card.normalisation) == (base.model, base.roles, base.normalisation)
    # The adapted model fuses like any other.
    out = fuse("onnx", [(fine[1], coarse[1])], coarse[2], tmp_path / "fused.tif", OnnxParams(str(result.model)))
    assert np.isfinite(read_lst(out.path).data).mean() > 0.99
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapted.onnx", "fused.tif"]


def test_unadapted_weights_are_kept_when_nothing_validates_better(season, tmp_path):
    """A learning rate that ruins the network never validates better: the base weights are written."""
    fine, coarse = season
    warnings: list[str] = []
    result = adapt_model(fine, coarse, tmp_path / "a.onnx", AdaptParams(**QUICK, learning_rate=1.0),
                         progress=Progress(on_warning=warnings.append))
    assert not result.improved and result.rmse_k == result.base_rmse_k
    assert any("keeps the base weights" in w for w in warnings)


def test_a_stopped_adaptation_writes_nothing_and_a_users_file_is_never_replaced(season, tmp_path):
    fine, coarse = season
    polls = {"n": 0}

    def stop() -> bool:
        polls["n"] += 1
        return polls["n"] > 3  # while training

    with pytest.raises(Cancelled):
        adapt_model(fine, coarse, tmp_path / "a.onnx", **{**QUICK, "minutes": 5},
                    progress=Progress(is_cancelled=stop))
    assert list(tmp_path.iterdir()) == []
    mine = tmp_path / "mine.onnx"
    mine.write_bytes(b"my own model")
    with pytest.raises(InputError, match="not a model written by 'Adapt a model"):
        adapt_model(fine, coarse, mine, **QUICK)
    assert mine.read_bytes() == b"my own model"
    with pytest.raises(InputError, match="at least 3"):
        adapt_model(fine, coarse, tmp_path / "b.onnx", exclude_dates=[_date(f) for f in fine[:4]], **QUICK)


def test_a_killed_adaptation_leaves_no_model_and_the_next_run_cleans_up(season, tmp_path):
    fine, coarse = season
    out = tmp_path / "adapted.onnx"
    script = (f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
              "from backend.training.adapt import adapt_model\n"
              f"adapt_model({fine!r}, {coarse!r}, {str(out)!r}, shipped={SHIPPED!r}, minutes=5, patch_size=32, "
              "stride=32)\n")
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not any(".patches." in p.name for p in tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # training by now
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert not out.exists()
    assert any(".patches." in p.name for p in tmp_path.iterdir())  # what a killed run leaves: its scratch
    adapt_model(fine, coarse, out, **QUICK)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapted.onnx"]


def test_processing_qgis_process_and_fuse_series(provider, season, tmp_path):
    import processing

    fine, coarse = season
    res = processing.run("lst_fusion:adapt_model", {
        "FINE_FILES": fine, "COARSE_FILES": coarse, "SHIPPED_MODEL": SHIPPED, "TIME_BUDGET": 0.03,
        "PATCH_SIZE": 32, "STRIDE": 32, "EXCLUDE_DATES": str(_date(fine[2])),
        "OUTPUT": str(tmp_path / "adapted.onnx")}, feedback=QgsProcessingFeedback())
    card = read_model_card(res["OUTPUT"])
    assert card.training["adaptation"]["excluded_dates"] == [str(_date(fine[2]))]
    assert res["VAL_RMSE"] <= res["BASE_VAL_RMSE"]

    env = {**os.environ, "QGIS_CUSTOM_CONFIG_PATH": str(tmp_path / "cfg"), "QT_QPA_PLATFORM": "offscreen"}
    env.pop("QGIS_PLUGINPATH", None)
    run = subprocess.run([str(REPO / "scripts" / "qgis_process"), "run", "lst_fusion:adapt_model", "--json", "--",
                          f"FINE={Path(fine[0]).parent}", f"COARSE={Path(coarse[0]).parent}",
                          f"SHIPPED_MODEL={SHIPPED}", "TIME_BUDGET=0.03", "PATCH_SIZE=32", "STRIDE=32",
                          f"OUTPUT={tmp_path / 'cli.onnx'}"], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    results = json.loads(run.stdout[run.stdout.index("{"):])["results"]
    assert read_model_card(results["OUTPUT"]).training["adaptation"]["dates"]

    # Fuse time series adapts first, leaving out the paired dates it predicts.
    predicted = [str(_date(fine[1])), str(_date(fine[4]))]
    res = processing.run("lst_fusion:fuse_series", {
        "FINE_FILES": fine, "COARSE_FILES": coarse, "METHOD": "onnx", "SHIPPED_MODEL": SHIPPED, "TILE": 64,
        "TILE_OVERLAP": 8, "ADAPT_MINUTES": 0.03, "INCLUDE_PAIRED": True, "DATES": ",".join(predicted),
        "LOAD_OUTPUTS": False, "OUTPUT_FOLDER": str(tmp_path / "season")}, feedback=QgsProcessingFeedback())
    report = json.loads(Path(res["REPORT"]).read_text())
    assert res["DATE_COUNT"] == 2 and report["adaptation"]["excluded_dates"] == predicted
    assert not set(predicted) & set(report["adaptation"]["dates"])
    assert (tmp_path / "season" / report["adaptation"]["model"]).is_file()
    with pytest.raises(Exception, match="ADAPT_MINUTES"):
        processing.run("lst_fusion:fuse_series", {
            "FINE_FILES": fine, "COARSE_FILES": coarse, "METHOD": "starfm", "ADAPT_MINUTES": 1,
            "LOAD_OUTPUTS": False, "OUTPUT_FOLDER": str(tmp_path / "starfm")}, feedback=QgsProcessingFeedback())
