"""The gap-fill flags: what each code of a ``*_fillflags.tif`` means and where it lies beside its raster.

Written by gap-fill (backend/preprocess/gapfill.py), read by patches (observed targets), evaluation
(observed vs filled reference pixels) and the plugin's styling: one definition for all of them.
"""

from __future__ import annotations

import os
from pathlib import Path

OBSERVED, TEMPORAL, SPATIAL, GUIDED, NODATA = 0, 1, 2, 3, 255
FLAG_MEANING = {OBSERVED: "observed", TEMPORAL: "filled in time", SPATIAL: "filled in space",
                GUIDED: "filled from another date plus MODIS's change", NODATA: "nodata"}


FILLED_SUFFIX, FLAGS_SUFFIX = "_filled.tif", "_fillflags.tif"


def flags_path_for(filled: str | os.PathLike) -> Path | None:
    """The flags sidecar the gap-filler wrote next to ``filled``, or None if it is not a gap-filled raster."""
    path = Path(filled)
    if not path.name.endswith(FILLED_SUFFIX):
        return None
    return path.with_name(path.name[: -len(FILLED_SUFFIX)] + FLAGS_SUFFIX)
