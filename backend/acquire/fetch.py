"""Reading only an area's pixels of a cloud-optimised asset over HTTP (GDAL's /vsicurl/ range reads).

GDAL fetches the file's header and then just the tiles that cover the window; its own retry covers
429/502/503/504, and :func:`read_area` retries the rest of the 5xx answers and timeouts with back-off,
signs the link again after a 403 (an expired signature), and turns what is left into a message that
names the item.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.warp import Resampling, transform_bounds
from rasterio.windows import Window, from_bounds

from ..io.grid import Grid
from .stac import NetworkError


@dataclass(frozen=True)
class HttpOptions:
    """How patient reads are: per request (seconds), retries after 5xx/timeouts, the first back-off."""

    timeout: float = 30.0
    retries: int = 4
    backoff: float = 1.0

    def gdal_env(self) -> dict:
        return {
            "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",  # never list the remote 'directory'
            "GDAL_HTTP_TIMEOUT": str(max(1, math.ceil(self.timeout))),
            "GDAL_HTTP_CONNECTTIMEOUT": str(max(1, math.ceil(self.timeout))),
            "GDAL_HTTP_MAX_RETRY": str(self.retries),
            "GDAL_HTTP_RETRY_DELAY": str(self.backoff),
            "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
            "GDAL_HTTP_MULTIPLEX": "YES",
            "VSI_CACHE": "FALSE",
            "GDAL_PAM_ENABLED": "NO",
        }


def _forget_cached(href: str) -> None:
    """Let GDAL ask the server again (it remembers a failed file for the process)."""
    try:
        from osgeo import gdal
    except ImportError:  # rasterio from a wheel: the cache is per process and short-lived
        return
    gdal.VSICurlPartialClearCache(f"/vsicurl/{href.split('?')[0]}")


def _problem(text: str) -> str:
    low = text.lower()
    if "403" in text:
        return "forbidden"
    if "429" in text:
        return "rate_limited"
    if "timed out" in low or "timeout" in low:
        return "timeout"
    if any(f"http error code: {code}" in low or f"http error code : {code}" in low or f" {code} " in f" {text} "
           for code in range(500, 600)):
        return "server"
    if "could not resolve" in low or "couldn't connect" in low or "connection refused" in low:
        return "offline"
    return "other"


def _aligned_window(src, grid: Grid) -> Window | None:
    """The window of ``src`` that is exactly ``grid`` (same CRS, pixel size and phase), or None."""
    if src.crs != grid.crs:
        return None
    a, g = src.transform, grid.transform
    if not (math.isclose(a.a, g.a, rel_tol=1e-9) and math.isclose(a.e, g.e, rel_tol=1e-9) and a.b == g.b == 0):
        return None
    col, row = (g.c - a.c) / a.a, (g.f - a.f) / a.e
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return Window(round(col), round(row), grid.width, grid.height)


def _read(src, grid: Grid, fill: float) -> np.ndarray:
    out = np.full(grid.shape, fill, dtype=src.dtypes[0])
    window = _aligned_window(src, grid)
    if window is None:  # another UTM zone or grid: warped with nearest neighbour, codes stay codes
        with WarpedVRT(src, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
                       resampling=Resampling.nearest, src_nodata=fill, nodata=fill) as vrt:
            return vrt.read(1)
    inside = window.intersection(Window(0, 0, src.width, src.height)) if _overlaps(window, src) else None
    if inside is None:
        return out
    data = src.read(1, window=inside)
    r0, c0 = int(inside.row_off - window.row_off), int(inside.col_off - window.col_off)
    out[r0:r0 + data.shape[0], c0:c0 + data.shape[1]] = data
    return out


def _overlaps(window: Window, src) -> bool:
    return (window.col_off < src.width and window.row_off < src.height
            and window.col_off + window.width > 0 and window.row_off + window.height > 0)


def read_area(href: str, grid: Grid, fill: float, what: str, sign: Callable[[str], str],
              forget_signatures: Callable[[], None], options: HttpOptions,
              check: Callable[[], None] = lambda: None) -> np.ndarray:
    """``grid``'s pixels of the asset at ``href`` (``fill`` outside it), read by HTTP range requests.

    ``what`` names the item and asset in messages. ``sign`` turns the link into one that may be read.
    """
    return _retrying(href, what, sign, forget_signatures, options, check, lambda src: _read(src, grid, fill))


def header_grid(href: str, what: str, sign: Callable[[str], str], forget_signatures: Callable[[], None],
                options: HttpOptions) -> tuple:
    """(crs, transform) of the asset at ``href``: one header read."""
    return _retrying(href, what, sign, forget_signatures, options, lambda: None, lambda src: (src.crs, src.transform))


def _retrying(href: str, what: str, sign: Callable[[str], str], forget_signatures: Callable[[], None],
              options: HttpOptions, check: Callable[[], None], use: Callable):
    """``use(dataset)`` of the asset, signing it again after a 403 and retrying 5xx answers and timeouts."""
    signed = sign(href)
    delay, attempt, resigned = options.backoff, 0, False
    while True:
        check()
        try:
            with rasterio.Env(**options.gdal_env()), rasterio.open(_vsi(signed)) as src:
                return use(src)
        except RasterioIOError as exc:
            kind = _problem(str(exc))
            _forget_cached(signed)
            if kind == "forbidden" and not resigned:
                forget_signatures()
                signed, resigned = sign(href), True
                continue
            if kind in ("server", "timeout", "rate_limited") and attempt < options.retries:
                attempt += 1
                time.sleep(delay)
                delay *= 2
                continue
            raise NetworkError(_message(what, href, kind, str(exc), attempt, options)) from None


def _vsi(href: str) -> str:
    return href if href.startswith("/vsi") or "://" not in href else f"/vsicurl/{href}"


_AGAIN = "run again into the same folder: what is complete is kept"
# What each kind of failure means and what to do, after '<item> (<link>): '.
_MESSAGES = {
    "forbidden": "access refused (HTTP 403) even after signing the link again. The archive may need an account "
                 "or a different SOURCE for this collection.",
    "rate_limited": "the provider's rate limit was reached (HTTP 429) after {tries} tries. Wait a few minutes and "
                    f"{_AGAIN}.",
    "timeout": "no answer within {timeout:g} s after {tries} tries (timeout). The archive is slow or the connection "
               f"stalled; raise TIMEOUT, or later {_AGAIN}.",
    "server": f"the archive's server failed (HTTP 5xx) {{tries}} times. Later, {_AGAIN}.",
    "offline": "cannot be reached ({detail}). Check the internet connection or proxy.",
    "other": "could not be read ({detail}).",
}


def _message(what: str, href: str, kind: str, detail: str, attempts: int, options: HttpOptions) -> str:
    text = _MESSAGES[kind].format(tries=attempts + 1, timeout=options.timeout, detail=detail.strip())
    return f"{what} ({href.split('?')[0]}): {text}"


def area_grid(bbox_wgs84: tuple[float, float, float, float], crs, transform) -> Grid:
    """The pixels of an asset's grid (``crs``, ``transform``) that cover ``bbox_wgs84``, snapped outward."""
    left, bottom, right, top = transform_bounds("EPSG:4326", crs, *bbox_wgs84, densify_pts=21)
    window = from_bounds(left, bottom, right, top, transform)
    col0, row0 = math.floor(window.col_off + 1e-9), math.floor(window.row_off + 1e-9)
    col1 = math.ceil(window.col_off + window.width - 1e-9)
    row1 = math.ceil(window.row_off + window.height - 1e-9)
    origin = transform * (col0, row0)
    return Grid(crs, Affine(transform.a, 0, origin[0], 0, transform.e, origin[1]), col1 - col0, row1 - row0)
