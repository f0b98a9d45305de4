"""Writers: tiled, compressed, Cloud-Optimized float32 GeoTIFFs, written atomically."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.env import Env
from rasterio.errors import RasterioError
from rasterio.windows import Window

from .. import __version__
from ..parameters import param
from ..progress import Progress, ensure
from .atomic import atomic_path
from .lst_raster import KELVIN_OFFSET, LSTRaster
from .outputs import check_output_size, check_raster_output, output_tag
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


def lst_tags(raster: LSTRaster, unit: str, algorithm: str) -> dict[str, str]:
    """Dataset tags that let any reader (ours included) know what the file holds, and which ``algorithm``
    wrote it as its output."""
    tags = {
        **output_tag(algorithm),
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


def verify_raster(path: str | os.PathLike) -> list[dict[str, str]]:
    """Read every block of a raster just written: GDAL reports some write failures (disk full at
    close) only on stderr, and a file that cannot be read back must never reach its final name.
    Returns each band's statistics as GDAL's STATISTICS_* tags, from the same read.

    Read a row of blocks at a time, which GDAL decodes on every core (its NUM_THREADS open option):
    at 10,000² the read-back takes half the time it took block by block.
    """
    try:
        with rasterio.open(path, num_threads="ALL_CPUS") as src:
            bands = [_Moments(src.nodatavals[k]) for k in range(src.count)]
            rows = src.block_shapes[0][0]  # a row of blocks: enough to keep every core decoding
            for top in range(0, src.height, rows):
                strip = src.read(window=Window(0, top, src.width, min(rows, src.height - top)))
                for moments, band in zip(bands, strip):
                    moments.add(band)
    except (RasterioError, OSError) as exc:
        raise OSError(errno.EIO, "GDAL could not write the whole raster: is the disk full, or a file-size limit "
                      "reached?") from exc
    return [moments.tags() for moments in bands]


class _Moments:
    """Running count, sum, sum of squares and range of a band's valid pixels (finite, not nodata)."""

    def __init__(self, nodata: float | None = None) -> None:
        self.nodata = None if nodata is None or np.isnan(nodata) else nodata
        self.count, self.total, self.squares, self.low, self.high, self.pixels = 0, 0.0, 0.0, np.inf, -np.inf, 0

    def add(self, block: np.ndarray) -> None:
        self.pixels += block.size
        valid = np.isfinite(block) if block.dtype.kind == "f" else np.ones(block.shape, bool)
        if self.nodata is not None:
            valid &= block != self.nodata
        values = block[valid].astype(np.float64)
        if values.size:
            self.count += values.size
            self.total += float(values.sum())
            self.squares += float(np.dot(values, values))
            self.low, self.high = min(self.low, float(values.min())), max(self.high, float(values.max()))

    def tags(self) -> dict[str, str]:
        if not self.count:
            return {}
        mean = self.total / self.count
        std = max(self.squares / self.count - mean * mean, 0.0) ** 0.5
        return {"STATISTICS_MINIMUM": repr(self.low), "STATISTICS_MAXIMUM": repr(self.high),
                "STATISTICS_MEAN": repr(mean), "STATISTICS_STDDEV": repr(std),
                "STATISTICS_VALID_PERCENT": repr(100.0 * self.count / max(self.pixels, 1))}


@contextlib.contextmanager
def raster_output(path: str | os.PathLike, **profile) -> Iterator:
    """Open ``path`` for writing with ``profile``; after closing, check it reads back whole and record each
    band's statistics in the file, so that QGIS finds them there instead of computing them and saving
    them as an ``.aux.xml`` beside every output."""
    with rasterio.open(path, "w", **profile) as dst:
        yield dst
    statistics = verify_raster(path)
    with Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path, "r+") as dst:
        for band, tags in enumerate(statistics, start=1):
            if tags:
                dst.update_tags(band, **tags)


UNIT_SYMBOLS = {"K": "K", "C": "°C"}
OUTPUT_UNITS = ("K", "C")


def output_unit_param():
    """OUTPUT_UNIT: the unit written into LST outputs (files, metadata, band description, legend)."""
    return param("K", "OUTPUT_UNIT", "Output unit", options=OUTPUT_UNITS,
                 option_labels=("Kelvin (K)", "Degrees Celsius (°C)"))


def unit_symbol(unit: str) -> str:
    """How a unit is written for people: 'K' or '°C'."""
    return UNIT_SYMBOLS[normalise_unit(unit) or "K"]


def unit_suffix(unit: str) -> str:
    """What an output name carries for its unit: nothing for Kelvin (the working unit), '_degC' for Celsius."""
    return "" if (normalise_unit(unit) or "K") == "K" else "_degC"


def from_kelvin(block: np.ndarray, unit: str) -> np.ndarray:
    """A Kelvin block in the output ``unit`` ('K' or 'C'); stages compute in Kelvin and convert on writing."""
    return block if unit == "K" else (block - np.float32(KELVIN_OFFSET)).astype(np.float32)


def describe_lst_band(dst, unit: str) -> None:
    """Band description and unit type: 'LST (K)' or 'LST (°C)' (QGIS shows them in the legend)."""
    symbol = unit_symbol(unit)
    dst.set_band_description(1, f"LST ({symbol})")
    dst.units = (symbol,)


def write_lst(
    raster: LSTRaster,
    path: str | os.PathLike,
    unit: str = "K",
    cog: bool = True,
    progress: Progress | None = None,
    inputs: tuple[str | os.PathLike, ...] = (),
    *,
    algorithm: str,
) -> Path:
    """Write ``raster`` as a float32 GeoTIFF in ``unit`` ('K' or 'C'), NaN as nodata.

    The file appears under its final name only once complete and read back. ``cog=True``
    writes a Cloud-Optimized GeoTIFF (with overviews) when GDAL has the COG driver, else a
    tiled GeoTIFF. The output checks refuse ``path`` if it is the raster's source, one of
    ``inputs``, a folder, or a file ``algorithm`` did not write as its output.
    """
    progress = ensure(progress)
    unit = normalise_unit(unit) or "K"
    final = check_raster_output(path, (raster.source, *inputs), algorithm=algorithm)
    cog = cog and _cog_available()
    check_output_size(final.parent, raster.width, raster.height, 8 if cog else 4, progress=progress)
    data = from_kelvin(raster.data, unit)
    profile = lst_profile(raster.crs, raster.transform, raster.width, raster.height)
    with atomic_path(final, verify=verify_raster) as tmp:
        stage = tmp.with_name(tmp.name + ".stage.tif") if cog else tmp
        try:
            with raster_output(stage, **profile) as dst:
                dst.write(data.astype(np.float32), 1)
                dst.update_tags(**lst_tags(raster, unit, algorithm))
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
