"""Shared fixtures: paths to the real data in ../shared/data and a small generated dataset."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from backend.sample_data import SampleSpec, generate_sample_dataset  # noqa: E402


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real files every session and CI can read (skipped only outside CI when absent)."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{SHARED_DATA} is missing: CI must have ../shared/data beside the clone.")
        pytest.skip(f"real test data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sample_dataset(tmp_path_factory) -> tuple[Path, dict]:
    """A small cloudy sample series: (folder, manifest)."""
    out = tmp_path_factory.mktemp("sample") / "orleans"
    spec = SampleSpec(width=120, height=100, n_dates=4, cloudiness=0.4, seed=7)
    manifest = generate_sample_dataset(out, spec)
    return out, json.loads(manifest.read_text())
