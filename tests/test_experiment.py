"""`make experiment` in its test-sized preset: the whole protocol runs and writes its tables."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_scratch_folder_replaces_only_its_own(tmp_path):
    """The scripts' --work folder: a user's folder is never emptied; the scratch folder a run made is."""
    from backend.errors import OutputError
    from backend.io.outputs import fresh_scratch_folder

    user = tmp_path / "work" / "test"  # what --work tmp_path/work --preset test would use
    user.mkdir(parents=True)
    (user / "thesis.docx").write_bytes(b"years of work")
    with pytest.raises(OutputError, match="not a scratch folder LST Fusion made; it was left alone"):
        fresh_scratch_folder(user)
    assert (user / "thesis.docx").read_bytes() == b"years of work"
    link = tmp_path / "link"
    link.symlink_to(user)
    with pytest.raises(OutputError):
        fresh_scratch_folder(link)
    scratch = fresh_scratch_folder(tmp_path / "scratch" / "cpu")
    (scratch / "sample").mkdir()
    again = fresh_scratch_folder(scratch)
    assert again == scratch and [p.name for p in again.iterdir()] == [".lst_fusion_scratch"]
    run = subprocess.run([sys.executable, str(REPO / "bench" / "experiment.py"), "--preset", "test",
                          "--work", str(tmp_path / "work"), "--results", str(tmp_path / "results")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "left alone" in run.stderr and "Traceback" not in run.stderr
    assert (user / "thesis.docx").exists() and not (tmp_path / "results").exists()


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
