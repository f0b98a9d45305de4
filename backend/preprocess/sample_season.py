"""The sample data made ready for fusion: generated, gap-filled and MODIS resampled onto the Landsat grid.

What the demo scripts, the benches and the tests start from, in one place. Under ``root``:
``sample/`` (the generated products and their truth), ``landsat/`` and ``modis/`` (each sensor
gap-filled, never-observed pixels too) and ``modis30/`` (MODIS on the Landsat grid).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..progress import Progress
from .gapfill import gap_fill_series
from .resample import reference_grid, resample_series
from .sample_data import SampleSpec, generate_sample_dataset


def prepare_sample_season(root: str | os.PathLike, spec: SampleSpec, progress: Progress | None = None) -> Path:
    """Generate ``spec`` under ``root`` and prepare it for fusion; returns the sample's manifest."""
    root = Path(root)
    manifest = generate_sample_dataset(root / "sample", spec).manifest
    for sensor in ("landsat", "modis"):
        gap_fill_series([root / "sample"], root / sensor, sensor=sensor, fill_never_observed=True, progress=progress)
    resample_series([root / "modis"], root / "modis30", reference_grid(root / "landsat"))
    return manifest
