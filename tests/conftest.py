"""Shared fixtures: paths to the real data in ../shared/data and a small generated dataset."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from backend.preprocess.patches import build_patch_dataset  # noqa: E402
from backend.preprocess.sample_data import SampleSpec, generate_sample_dataset  # noqa: E402
from backend.preprocess.sample_season import prepare_sample_season  # noqa: E402


@pytest.fixture()
def layer_tree_view(qgis_iface, monkeypatch):
    """A real layer tree view behind iface.layerTreeView(): loading results hands it to C++ from QGIS 3.44 on,
    which refuses pytest-qgis's stand-in."""
    from qgis.core import QgsLayerTreeModel, QgsProject
    from qgis.gui import QgsLayerTreeView

    view = QgsLayerTreeView()
    view.setModel(QgsLayerTreeModel(QgsProject.instance().layerTreeRoot()))
    monkeypatch.setattr(qgis_iface, "layerTreeView", lambda: view)
    yield view
    view.deleteLater()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real files every session and CI can read (skipped only outside CI when absent)."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{SHARED_DATA} is missing: CI must have ../shared/data beside the clone.")
        pytest.skip(f"real test data not found at {SHARED_DATA}: put the shared data folder (a MOD11A1 tile, "
                    "Landsat C2 L2 scenes, the Yanco series; README 'Data and licences') there")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sample_dataset(tmp_path_factory) -> tuple[Path, dict]:
    """A small cloudy sample series: (folder, manifest)."""
    out = tmp_path_factory.mktemp("sample") / "orleans"
    spec = SampleSpec(width=120, height=100, n_dates=4, cloudiness=0.4, seed=7)
    manifest = generate_sample_dataset(out, spec).manifest
    return out, json.loads(manifest.read_text())


@pytest.fixture(scope="session")
def tiny_patches(tmp_path_factory) -> Path:
    """A tiny cloudy patch dataset: 6 dates, 96 × 96 px, 32 px patches (train/val/test)."""
    root = tmp_path_factory.mktemp("tiny")
    spec = SampleSpec(width=96, height=96, n_dates=6, start=dt.date(2020, 5, 1), end=dt.date(2020, 8, 5),
                      cloudiness=0.3, seed=5)
    prepare_sample_season(root, spec)
    build_patch_dataset([root / "landsat"], [root / "modis30"], root / "patches", patch_size=32, stride=16,
                        test_fraction=0.2, val_fraction=0.2)
    return root / "patches"


_PROVIDERS: list = []


@pytest.fixture(scope="module")
def provider(qgis_processing):
    """The LST Fusion provider registered in QGIS's Processing registry (referenced, so kept alive)."""
    from qgis.core import QgsApplication

    from lst_fusion_plugin.provider import LSTFusionProvider

    registry = QgsApplication.processingRegistry()
    prov = registry.providerById("lst_fusion")
    if prov is None or not prov.id():  # a wrapper whose Python side was collected has no id
        if prov is not None:
            registry.removeProvider(prov)
        prov = LSTFusionProvider()
        assert registry.addProvider(prov)
        _PROVIDERS.append(prov)  # the registry keeps the C++ object; Python must keep the wrapper alive
    yield prov


def pytest_terminal_summary(terminalreporter) -> None:
    """List the fault-injection cases and how each ended, so a run shows what was proven."""
    reports = [r for key in ("passed", "failed", "skipped", "error") for r in terminalreporter.stats.get(key, [])
               if getattr(r, "when", "call") in ("call", "setup") and "test_fault_injection" in r.nodeid]
    seen: dict[str, str] = {}
    for r in reports:
        if r.when == "call" or r.outcome != "passed":
            seen[r.nodeid.split("::", 1)[1]] = r.outcome
    if seen:
        terminalreporter.section(f"fault-injection cases: {len(seen)}")
        for name, outcome in sorted(seen.items()):
            terminalreporter.write_line(f"{outcome:>8}  {name}")
