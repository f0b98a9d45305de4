"""`make experiment` in its test-sized preset: the whole protocol runs and writes its tables."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_experiment_runs_end_to_end(tmp_path):
    run = subprocess.run([sys.executable, str(REPO / "bench" / "experiment.py"), "--preset", "test",
                          "--work", str(tmp_path / "work"), "--results", str(tmp_path / "results")],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    table = (tmp_path / "results" / "experiment_test.md").read_text()
    for label in ("STARFM", "ESTARFM", "EDCSTFN", "STTFN", "MLFFGAN", "MODIS (resampled)", "Persistence"):
        assert f"| {label}" in table or f"| *{label}" in table, label
    assert "## Time (s)" in table and "train MLFFGAN" in table and "EDCSTFN + consistency loss" in table
    with (tmp_path / "results" / "experiment_test.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {r["label"] for r in rows} >= {"STARFM", "STTFN", "MODIS (resampled)"}
    assert (tmp_path / "results" / "experiment_test.png").stat().st_size > 10_000
