"""Readers for the LST products users download, decoded to :class:`LSTRaster` in Kelvin.

Each reader applies its product's scale, offset, fill value and quality flags, so a
cloud or fill pixel becomes NaN here and nowhere else. :func:`read_lst` picks the
reader from the file name and metadata.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window

from ..errors import CompanionFileError, EmptyDataError, InputError, UnitError, UnknownProductError
from ..parameters import param
from ..progress import Progress, ensure
from .dates import date_from_name, parse_date, product_from_name
from .lst_raster import KELVIN_OFFSET, LSTRaster

# MODIS MOD11/MOD21 LST: uint16 DN * 0.02 K, 0 = fill, valid DN 7500..65535.
MODIS_SCALE = 0.02
MODIS_VALID_MIN = 7500
# Landsat Collection 2 Level-2 ST_B10: DN * 0.00341802 + 149.0 K, 0 = fill.
LANDSAT_ST_MULT = 0.00341802
LANDSAT_ST_ADD = 149.0
# QA_PIXEL bits: 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 cloud shadow, 5 snow.
QA_FILL, QA_DILATED_CLOUD, QA_CIRRUS, QA_CLOUD, QA_SHADOW, QA_SNOW = 0, 1, 2, 3, 4, 5
DEFAULT_QA_MASK_BITS = (QA_FILL, QA_DILATED_CLOUD, QA_CLOUD, QA_SHADOW, QA_SNOW)

# Plausible Kelvin range of land surface temperature, for unit checks.
PLAUSIBLE_K = (180.0, 360.0)
PRODUCTS = ("auto", "modis", "landsat", "float")
PRODUCT_LABELS = ("Detect from file name and metadata", "MODIS MOD11/MYD11/MOD21 LST",
                  "Landsat 8/9 Collection 2 Level-2 ST_B10", "Float LST raster (K or °C)")
INPUT_UNITS = (None, "K", "C")  # None: the unit the file records (LST Fusion outputs)


def input_unit_param(label: str = "Unit of float inputs", stored: str = "As stored in the files",
                     advanced: bool = True):
    """UNIT: the unit of float rasters that do not record one."""
    return param(None, "UNIT", label, options=INPUT_UNITS, option_labels=(stored, "Kelvin", "Celsius"),
                 advanced=advanced)
UNITS = {"k": "K", "kelvin": "K", "c": "C", "°c": "C", "celsius": "C", "degc": "C"}

_MODIS_QC_LAYER = {"LST_Day_1km": "QC_Day", "LST_Night_1km": "QC_Night", "LST_1KM": "QC"}


def open_raster(path: str | Path):
    try:
        return rasterio.open(path)
    except RasterioIOError as exc:
        _raise_unreadable(path, exc)


def _raise_unreadable(path: str | Path, exc: Exception):
    name = str(path)
    if not name.startswith("HDF4") and not Path(name).exists():
        raise InputError(f"{name}: file not found.") from exc
    if not name.startswith("HDF4") and Path(name).is_dir():
        raise InputError(
            f"{name}: is a folder. Give one raster file here; the series algorithms (gap-fill, resample) "
            "take whole folders."
        ) from exc
    raise InputError(
        f"{name}: cannot be read as a raster ({exc}). The file may be incomplete or "
        "corrupt: download it again."
    ) from exc


@dataclass
class _Band:
    """One band's pixels with the georeferencing and metadata the readers need."""

    data: np.ndarray
    crs: CRS | None
    transform: Affine
    nodata: float | None
    tags: dict[str, str]
    count: int


def _load(path: str | Path, band: int = 1, window: Window | None = None) -> _Band:
    """Read one band (or a window of it), turning GDAL's open and read failures into InputError."""
    src = open_raster(path)
    with src:
        if band < 1 or band > src.count:
            raise InputError(f"{path}: has {src.count} band(s), band {band} was asked for.")
        try:
            data = src.read(band, window=window)
        except RasterioIOError as exc:
            _raise_unreadable(path, exc)
        transform = src.window_transform(window) if window is not None else src.transform
        return _Band(data, src.crs, transform, src.nodata, {**src.tags(), **src.tags(band)}, src.count)


def normalise_unit(unit: str | None) -> str | None:
    """'K' or 'C' from the spellings users type; ``None`` stays ``None``."""
    if unit is None or unit == "":
        return None
    key = str(unit).strip().lower()
    if key not in UNITS:
        raise InputError(f"Unknown temperature unit {unit!r}: use 'K' (Kelvin) or 'C' (Celsius).")
    return UNITS[key]


def _finish(raster: LSTRaster, progress: Progress, whole: bool = True) -> LSTRaster:
    """Reject empty rasters and say how much survived masking (windows may be empty)."""
    if not whole:
        return raster
    valid = raster.valid_fraction
    if valid == 0.0:
        raise EmptyDataError(
            f"{raster.source}: no valid LST pixel (all fill, cloud or rejected by quality "
            "flags). Choose another date or scene."
        )
    progress.info(f"{Path(raster.source).name}: {valid:.1%} valid pixels")
    return raster


# ---------------------------------------------------------------- MODIS

def _hdf_subdataset(path: str, layer: str) -> str | None:
    with warnings.catch_warnings():
        # An HDF container has no geotransform of its own; its subdatasets do.
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        src = open_raster(path)
    with src:
        for sds in src.subdatasets:
            if sds.split(":")[-1] == layer:
                return sds
    return None


def modis_sources(path: str, layer: str, qc_path: str | None) -> tuple[str, str | None, str]:
    """The LST band, its QC band and the layer name, for HDF4 files, subdatasets or GeoTIFF exports.

    MOD21 products have a single ``LST_1KM`` layer (day or night is in the product
    name), so it stands in for the requested MOD11 layer when that one is absent.
    """
    if path.startswith("HDF4_EOS:"):
        lst: str | None = path
        layer = path.split(":")[-1]
        path = path.split(":")[2].strip('"')
    elif Path(path).suffix.lower() in (".hdf", ".h4", ".hdf4"):
        lst = _hdf_subdataset(path, layer)
        if lst is None and _hdf_subdataset(path, "LST_1KM") is not None:
            layer = "LST_1KM"
            lst = _hdf_subdataset(path, layer)
        if lst is None:
            raise InputError(
                f"{path}: has no '{layer}' layer. Is it an LST product (MOD11A1, MOD11A2, MOD21A1)?"
            )
    else:
        lst = path
    if qc_path is None:
        if lst != path:
            qc_path = _hdf_subdataset(path, _MODIS_QC_LAYER.get(layer, "QC"))
        else:
            # AppEEARS-style exports name the QC file like the LST one.
            for lst_name, qc_name in _MODIS_QC_LAYER.items():
                if lst_name in Path(path).name:
                    candidate = Path(path).with_name(Path(path).name.replace(lst_name, qc_name))
                    if candidate.exists():
                        qc_path = str(candidate)
                        break
    return lst, qc_path, layer


def _quality_mask(quality, window: Window | None, shape: tuple[int, ...], what: str,
                  mask: Callable[[np.ndarray], np.ndarray], missing: str, progress: Progress) -> np.ndarray | bool:
    """The pixels a product's quality layer rejects; with no layer, nothing (and the ``missing`` warning)."""
    if quality is None:
        progress.warn(missing)
        return False
    layer = _load(quality, window=window).data
    if layer.shape != shape:
        raise InputError(f"{quality}: {what} grid {layer.shape} differs from the LST grid {shape}.")
    return mask(layer)


def modis_qc_mask(qc: np.ndarray, max_lst_error: float | None = None) -> np.ndarray:
    """True where the MODIS LST QC word rejects the pixel.

    Bits 0-1: 00 good, 01 other quality, 10 not produced (cloud), 11 not produced
    (other). With ``max_lst_error`` (1, 2 or 3 K), 'other quality' pixels whose
    bits 6-7 error class exceeds it are rejected too.
    """
    qc = qc.astype(np.uint16)
    mandatory = qc & 0b11
    bad = mandatory >= 2
    if max_lst_error is not None:
        err_class = (qc >> 6) & 0b11  # 0: <=1 K, 1: <=2 K, 2: <=3 K, 3: >3 K
        bad |= (mandatory == 1) & (err_class + 1 > max_lst_error)
    return bad


def read_modis(
    path: str | Path,
    layer: str = "LST_Day_1km",
    qc_path: str | Path | None = None,
    max_lst_error: float | None = None,
    date: str | dt.date | None = None,
    progress: Progress | None = None,
    window: Window | None = None,
) -> LSTRaster:
    """Read MODIS LST (MOD11A1/MYD11A1/MOD11A2/MOD21A1, HDF4 or GeoTIFF export) in Kelvin.

    ``layer`` picks day or night from MOD11 HDF files (``LST_Day_1km``/``LST_Night_1km``).
    """
    progress = ensure(progress)
    path = str(path)
    lst_src, qc_src, layer = modis_sources(path, layer, str(qc_path) if qc_path else None)
    lst = _load(lst_src, window=window)
    raw, tags, crs, transform = lst.data, lst.tags, lst.crs, lst.transform
    if not np.issubdtype(raw.dtype, np.integer):
        raise InputError(
            f"{path}: MODIS LST should be the scaled uint16 product, found {raw.dtype}. "
            "For already-decoded temperatures use product 'float' with a unit."
        )
    if crs is None:
        raise InputError(f"{path}: has no coordinate reference system.")
    scale = float(tags.get("scale_factor", MODIS_SCALE))
    offset = float(tags.get("add_offset", 0.0))
    fill = float(tags.get("_FillValue", 0))
    data = (raw.astype(np.float64) - offset) * scale
    bad = (raw == fill) | (raw < MODIS_VALID_MIN)
    bad |= _quality_mask(qc_src, window, raw.shape, "QC", lambda qc: modis_qc_mask(qc, max_lst_error),
                         f"{Path(path).name}: no QC layer found; only fill values are masked. Put the QC_Day file "
                         "next to the LST file (same name with QC_Day), or give it as the quality file.", progress)
    data[bad] = np.nan
    check_plausible(data, path, "MODIS LST (DN × 0.02 K)", progress)
    product = product_from_name(path) or tags.get("SHORTNAME", "MODIS")
    when = parse_date(date) or date_from_name(path) or parse_date(tags.get("RANGEBEGINNINGDATE"))
    raster = LSTRaster(
        data.astype(np.float32), crs, transform, when, product, "modis", path,
        {"layer": layer, "qc": str(qc_src or "")},
    )
    return _finish(raster, progress, window is None)


# -------------------------------------------------------------- Landsat

def _sibling(path: Path, token: str, replacement: str, suffixes: Iterable[str]) -> Path | None:
    stem = path.name
    idx = stem.upper().rfind(token)
    if idx < 0:
        return None
    base = stem[:idx] + replacement
    for suffix in suffixes:
        for candidate in (path.with_name(base + suffix), path.with_name(base + suffix.lower())):
            if candidate.exists():
                return candidate
    return None


def _mtl_value(mtl: Path, key: str) -> str | None:
    """One value from a Collection 2 MTL file in its JSON, XML or ODL text form."""
    text = mtl.read_text(errors="replace")
    if mtl.suffix.lower() == ".json":
        def find(node):
            if isinstance(node, dict):
                for k, v in node.items():
                    if k == key and not isinstance(v, dict):
                        return v
                    found = find(v)
                    if found is not None:
                        return found
            return None
        return find(json.loads(text))
    if mtl.suffix.lower() == ".xml":
        node = ET.fromstring(text).find(f".//{key}")
        return node.text if node is not None else None
    m = re.search(rf"^\s*{key}\s*=\s*\"?([^\"\n]+)\"?", text, re.MULTILINE)
    return m.group(1).strip() if m else None


def landsat_qa_mask(qa: np.ndarray, bits: Iterable[int] = DEFAULT_QA_MASK_BITS) -> np.ndarray:
    """True where any of the given QA_PIXEL bits is set."""
    flag = 0
    for bit in bits:
        flag |= 1 << int(bit)
    return (qa.astype(np.uint16) & flag) != 0


def read_landsat(
    path: str | Path,
    qa_path: str | Path | None = None,
    mtl_path: str | Path | None = None,
    mask_bits: Iterable[int] = DEFAULT_QA_MASK_BITS,
    date: str | dt.date | None = None,
    progress: Progress | None = None,
    window: Window | None = None,
) -> LSTRaster:
    """Read Landsat 8/9 Collection 2 Level-2 ``ST_B10`` in Kelvin, masked by ``QA_PIXEL``.

    Scale and offset come from the scene's MTL (JSON, XML or text) next to the band
    when present, else the Collection 2 constants.
    """
    progress = ensure(progress)
    p = Path(path)
    st = _load(p, window=window)
    raw, crs, transform, nodata = st.data, st.crs, st.transform, st.nodata
    if raw.dtype != np.uint16:
        raise InputError(
            f"{p}: a Collection 2 ST_B10 band is uint16, found {raw.dtype}. For decoded "
            "temperatures use product 'float' with a unit."
        )
    mtl = Path(mtl_path) if mtl_path else _sibling(p, "ST_B10", "MTL", (".json", ".xml", ".txt"))
    mult, add = LANDSAT_ST_MULT, LANDSAT_ST_ADD
    acquired = None
    if mtl is not None:
        mult = float(_mtl_value(mtl, "TEMPERATURE_MULT_BAND_ST_B10") or mult)
        add = float(_mtl_value(mtl, "TEMPERATURE_ADD_BAND_ST_B10") or add)
        acquired = parse_date(_mtl_value(mtl, "DATE_ACQUIRED"))
    data = raw.astype(np.float64) * mult + add
    bad = raw == (0 if nodata is None else int(nodata))
    qa_file = Path(qa_path) if qa_path else _sibling(p, "ST_B10", "QA_PIXEL", (".TIF", ".tif"))
    bad |= _quality_mask(qa_file, window, raw.shape, "QA", lambda qa: landsat_qa_mask(qa, mask_bits),
                         f"{p.name}: no QA_PIXEL file found next to it; clouds are NOT masked. Keep the scene's "
                         "_QA_PIXEL.TIF beside its _ST_B10.TIF, or give it as the quality file.", progress)
    data[bad] = np.nan
    check_plausible(data, str(p), f"Landsat ST_B10 (DN × {mult:g} + {add:g} K)", progress)
    product = product_from_name(p) or "LANDSAT_L2SP"
    when = parse_date(date) or date_from_name(p) or acquired
    raster = LSTRaster(
        data.astype(np.float32), crs, transform, when, product, "landsat", str(p),
        {"qa": str(qa_file or ""), "mtl": str(mtl or "")},
    )
    return _finish(raster, progress, window is None)


# ---------------------------------------------------------- plausibility

def check_plausible(kelvin: np.ndarray, source: str, decoded_as: str, progress: Progress) -> None:
    """Refuse decoded values that cannot be land surface temperature.

    A product forced on the wrong file (a raw DN raster read as MODIS, a Landsat ST_B10 read
    as MODIS) decodes to numbers far outside Earth's LST: the median must lie in
    PLAUSIBLE_K and no more than 5 % of pixels beyond it by 30 K. The median and a share
    are used, so a few hot fires or cold cloud tops do not trip it.
    """
    finite = kelvin[np.isfinite(kelvin)]
    if finite.size < 16:  # a probe of a pixel or two says nothing about the scene
        return
    lo, hi = PLAUSIBLE_K
    median = float(np.median(finite))
    outside = float(np.mean((finite < lo - 30) | (finite > hi + 30)))
    if not lo <= median <= hi or outside > 0.05:
        raise UnitError(
            f"{source}: decoded as {decoded_as}, its values are not land surface temperature (median "
            f"{median:.1f} K, {outside:.0%} of pixels outside {lo - 30:.0f}-{hi + 30:.0f} K; LST lies within "
            f"{lo:.0f}-{hi:.0f} K). Check the product chosen for this file ('auto' detects MODIS and Landsat "
            "products from their original names), and that its quality file, which masks fill and clouds, is "
            "beside it."
        )


def _check_forced_product(path: str, product: str) -> None:
    """Refuse a product forced on a file whose name says it is another product."""
    named = product_from_name(path) or ""
    if product == "modis" and (named.startswith("L") or "_ST_B10" in Path(path).name.upper()):
        raise InputError(f"{path}: its name says Landsat ({named or 'ST_B10'}) but the product MODIS was chosen. "
                         "Choose 'auto' or 'landsat'.")
    if product == "landsat" and named.startswith(("MOD", "MYD")):
        raise InputError(f"{path}: its name says {named} (MODIS) but the product Landsat was chosen. "
                         "Choose 'auto' or 'modis'.")


# ---------------------------------------------------------------- float

def check_unit(values: np.ndarray, unit: str, source: str, progress: Progress, whole: bool = True) -> None:
    """Refuse values impossible in the declared unit; warn when some look off.

    Works on the median of valid pixels (after conversion to Kelvin), which a few
    outliers cannot move, and suggests the other unit when that one fits.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return
    to_k = 0.0 if unit == "K" else KELVIN_OFFSET
    median_k = float(np.median(finite)) + to_k
    lo, hi = PLAUSIBLE_K
    if not lo <= median_k <= hi:
        other = "C" if unit == "K" else "K"
        other_k = median_k - to_k + (0.0 if other == "K" else KELVIN_OFFSET)
        hint = (
            f" The values look like {'Celsius' if other == 'C' else 'Kelvin'}: declare the unit "
            f"{'Celsius' if other == 'C' else 'Kelvin'} (UNIT)."
            if lo <= other_k <= hi
            else " Is this an LST raster at all?"
        )
        raise UnitError(
            f"{source}: median {np.median(finite):.2f} is not a plausible land surface "
            f"temperature in {'Kelvin' if unit == 'K' else 'Celsius'} (LST lies within {lo:.0f}-{hi:.0f} K, "
            f"{lo - KELVIN_OFFSET:.0f}-{hi - KELVIN_OFFSET:.0f} °C).{hint}"
        )
    if whole and finite.size >= 100:
        if float(finite.min()) == float(finite.max()):
            raise UnitError(
                f"{source}: every valid pixel holds {finite[0]:g}; a measured LST varies across a scene. If "
                f"{finite[0]:g} marks missing data, declare it as the raster's nodata value."
            )
        if float(finite.min()) >= 0.0 and float(finite.max()) <= 1.0:
            raise UnitError(
                f"{source}: all values lie between 0 and 1, like a reflectance or a fraction, not a "
                f"temperature in {'Kelvin' if unit == 'K' else 'Celsius'}. Give an LST raster."
            )
    outside = np.mean((finite + to_k < lo - 30) | (finite + to_k > hi + 30))
    if outside > 0.01:
        progress.warn(
            f"{source}: {outside:.1%} of pixels are outside {lo - 30:.0f}-{hi + 30:.0f} K "
            f"once read as {unit}; check the unit and the nodata value."
        )


def read_float_lst(
    path: str | Path,
    unit: str | None = None,
    date: str | dt.date | None = None,
    band: int = 1,
    progress: Progress | None = None,
    window: Window | None = None,
) -> LSTRaster:
    """Read a decoded float LST raster in K or °C (the unit is declared, or stored by us)."""
    progress = ensure(progress)
    p = str(path)
    loaded = _load(p, band, window)
    raw, nodata, tags, crs, transform = loaded.data, loaded.nodata, loaded.tags, loaded.crs, loaded.transform
    unit = normalise_unit(unit) or normalise_unit(tags.get("LST_UNIT"))
    if unit is None:
        raise InputError(
            f"{p}: a float raster without a stored unit. Declare its unit with the unit parameter "
            "(UNIT): Kelvin or Celsius."
        )
    if crs is None:
        raise InputError(f"{p}: has no coordinate reference system; georeference it first.")
    data = raw.astype(np.float64)
    bad = ~np.isfinite(data)
    if nodata is not None and np.isfinite(nodata):
        bad |= np.isclose(data, nodata, rtol=1e-6, atol=0.0) | (data == nodata)
    # Undeclared float32-minimum nodata (common in ENVI/IDL exports, e.g. -3.4e38).
    bad |= np.abs(data) > 1e30
    data[bad] = np.nan
    # Values from our own outputs were checked when first decoded; a user's raster is checked whole.
    check_unit(data, unit, p, progress, window is None and "LST_FUSION_CONTENT" not in tags)
    if unit == "C":
        data = data + KELVIN_OFFSET
    when = parse_date(date) or parse_date(tags.get("ACQUISITION_DATE")) or date_from_name(p)
    sensor = tags.get("SENSOR", "unknown")
    product = tags.get("SOURCE_PRODUCT") or product_from_name(p) or "float"
    raster = LSTRaster(data.astype(np.float32), crs, transform, when, product, sensor, p)
    return _finish(raster, progress, window is None)


# ----------------------------------------------------------- dispatcher

def detect_product(path: str | Path) -> str:
    """'modis', 'landsat' or 'float' from our own tags, the product file name, or the data type."""
    name = str(path)
    if name.startswith("HDF4_EOS:"):
        return "modis"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        src = open_raster(name)
    with src:
        tags = src.tags()
        dtype = src.dtypes[0] if src.count else ""
        subdatasets = list(src.subdatasets)
    content = tags.get("LST_FUSION_CONTENT", "lst")
    if content != "lst":
        raise CompanionFileError(f"{name}: holds LST Fusion {content.replace('_', ' ')}, not LST.")
    if "LST_UNIT" in tags:
        return "float"
    product = product_from_name(name)
    if product and product.startswith(("MOD", "MYD")):
        return "modis"
    if (product and product.startswith("L")) or "_ST_B10" in Path(name).name.upper():
        return "landsat"
    if subdatasets:
        names = [s.split(":")[-1] for s in subdatasets]
        if any(n in _MODIS_QC_LAYER for n in names):
            return "modis"
        raise UnknownProductError(
            f"{name}: a container of {len(names)} layers ({', '.join(names[:4])}...) "
            "with no LST layer. Give an LST product or pick its LST layer."
        )
    if dtype and np.issubdtype(np.dtype(dtype), np.floating):
        return "float"
    raise UnknownProductError(
        f"{name}: not a recognised LST product (integer {dtype} data without a MODIS or "
        "Landsat name). Keep the product's original file name, or set the product "
        "explicitly ('modis', 'landsat', or 'float' with a unit)."
    )


def read_lst(
    path: str | Path,
    product: str = "auto",
    unit: str | None = None,
    date: str | dt.date | None = None,
    progress: Progress | None = None,
    modis_layer: str = "LST_Day_1km",
    window: Window | None = None,
    quality_path: str | Path | None = None,
) -> LSTRaster:
    """Read any supported LST file as an :class:`LSTRaster` in Kelvin with NaN nodata.

    With ``window`` only that part is read and decoded (and it may hold no valid pixel):
    the stages use this to work on rasters of any size in bounded memory.
    ``quality_path`` is the QA_PIXEL (Landsat) or QC (MODIS) file when it is not beside the product.
    """
    product = (product or "auto").lower()
    if product not in PRODUCTS:
        raise InputError(f"Unknown product {product!r}: choose one of {', '.join(PRODUCTS)}.")
    if product == "auto":
        product = detect_product(path)
    else:
        _check_forced_product(str(path), product)
    if quality_path and product == "float":
        raise InputError(f"{quality_path}: a quality file applies to MODIS and Landsat products, not to the float "
                         f"raster {path}. Leave it out.")
    if quality_path and not Path(quality_path).is_file():
        raise InputError(f"{quality_path}: quality file not found.")
    if product == "modis":
        return read_modis(path, layer=modis_layer, qc_path=quality_path, date=date, progress=progress,
                          window=window)
    if product == "landsat":
        return read_landsat(path, qa_path=quality_path, date=date, progress=progress, window=window)
    return read_float_lst(path, unit=unit, date=date, progress=progress, window=window)
