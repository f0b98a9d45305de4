"""Writers: tiled, compressed, Cloud-Optimized float32 GeoTIFFs, written atomically."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.env import Env

from . import __version__
from .atomic import atomic_path
from .lst_raster import KELVIN_OFFSET, LSTRaster
from .progress import Progress, ensure
from .readers import normalise_unit

_GTIFF_OPTIONS = {
    "tiled": True,
    "blockxsize": 256,
    "blockysize": 256,
    "compress": "deflate",
    "predictor": 3,  # floating-point predictor: 2-3x smaller LST files
    "zlevel": 6,
}


def _cog_available() -> bool:
    with Env() as env:
        return "COG" in env.drivers()


def lst_tags(raster: LSTRaster, unit: str) -> dict[str, str]:
    """Dataset tags that let any reader (ours included) know what the file holds."""
    tags = {
        "LST_FUSION_CONTENT": "lst",
        "LST_UNIT": unit,
        "SOURCE_PRODUCT": raster.product,
        "SENSOR": raster.sensor,
        "SOURCE_FILE": Path(raster.source).name if raster.source else "",
        "LST_FUSION_VERSION": __version__,
    }
    if raster.date is not None:
        tags["ACQUISITION_DATE"] = raster.date.isoformat()
    tags.update({k.upper(): str(v) for k, v in raster.tags.items() if k.upper() not in tags})
    return tags


def lst_profile(crs, transform, width: int, height: int) -> dict:
    """rasterio profile of our float32 LST GeoTIFFs (tiled, DEFLATE with the float predictor)."""
    return {"driver": "GTiff", "dtype": "float32", "count": 1, "width": width, "height": height,
            "crs": crs, "transform": transform, "nodata": float("nan"), **_GTIFF_OPTIONS}


def describe_lst_band(dst, unit: str) -> None:
    dst.set_band_description(1, f"LST ({unit})")
    dst.units = (unit,)


def write_lst(
    raster: LSTRaster,
    path: str | os.PathLike,
    unit: str = "K",
    cog: bool = True,
    progress: Progress | None = None,
) -> Path:
    """Write ``raster`` as a float32 GeoTIFF in ``unit`` ('K' or 'C'), NaN as nodata.

    The file appears under its final name only once complete. ``cog=True`` writes a
    Cloud-Optimized GeoTIFF (with overviews) when GDAL has the COG driver, else a
    tiled GeoTIFF.
    """
    progress = ensure(progress)
    unit = normalise_unit(unit) or "K"
    data = raster.data if unit == "K" else raster.data - np.float32(KELVIN_OFFSET)
    profile = lst_profile(raster.crs, raster.transform, raster.width, raster.height)
    final = Path(path)
    with atomic_path(final) as tmp:
        stage = tmp.with_name(tmp.name + ".stage.tif") if cog and _cog_available() else tmp
        try:
            with rasterio.open(stage, "w", **profile) as dst:
                dst.write(data.astype(np.float32), 1)
                dst.update_tags(**lst_tags(raster, unit))
                describe_lst_band(dst, unit)
            progress.update(0.7)
            if stage != tmp:
                rasterio.shutil.copy(
                    stage, tmp, driver="COG", compress="DEFLATE", predictor="YES",
                    blocksize=512, overviews="AUTO", resampling="AVERAGE",
                )
        finally:
            if stage != tmp:
                with contextlib.suppress(FileNotFoundError):
                    stage.unlink()
        progress.update(1.0)
    return final
