"""Import: decode one LST product (MODIS, Landsat, a float raster) to a float32 LST GeoTIFF."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..parameters import param, with_overrides
from ..progress import Progress, ensure
from .outputs import check_raster_output
from .readers import PRODUCT_LABELS, PRODUCTS, input_unit_param, read_lst
from .writers import output_unit_param, write_lst

MODIS_LAYERS = ("LST_Day_1km", "LST_Night_1km")


@dataclass(frozen=True)
class ImportParams:
    """What users set for an import; the Processing algorithm builds its parameters from these fields."""

    product: str = param("auto", "PRODUCT", "Product", options=PRODUCTS, option_labels=PRODUCT_LABELS)
    unit: str | None = input_unit_param("Unit of a float input", "As stored in the file (LST Fusion outputs)",
                                        advanced=False)
    modis_layer: str = param("LST_Day_1km", "MODIS_LAYER", "MODIS layer (HDF files)", options=MODIS_LAYERS,
                             option_labels=("Day (LST_Day_1km; MOD21: LST_1KM)", "Night (LST_Night_1km)"))
    # Empty: from the file name (A2013077, doy2013077, LC08_..._20130318_...) or its metadata.
    date: str | None = param(None, "DATE", "Acquisition date (YYYY-MM-DD; empty = from the file name)", kind="text")
    out_unit: str = output_unit_param()


@dataclass(frozen=True)
class ImportResult:
    output: Path
    date: dt.date | None
    product: str  # what was decoded, e.g. 'MOD11A1'
    valid_fraction: float


def import_lst(
    source: str | os.PathLike,
    output: str | os.PathLike,
    params: ImportParams | None = None,
    *,
    quality: str | os.PathLike | None = None,
    progress: Progress | None = None,
    **options,
) -> ImportResult:
    """Decode ``source`` (with its QA/QC file beside it, or ``quality``) and write it to ``output``, a
    Cloud-Optimized GeoTIFF with its date, unit and source in the metadata; ``params`` (or its fields as
    keywords) say how. A product without a date is written with a warning: series stages need one."""
    p = with_overrides(ImportParams, params, options)
    progress = ensure(progress)
    quality = str(quality) if quality else None
    check_raster_output(output, [str(source), quality], algorithm="import_lst")
    try:
        raster = read_lst(source, product=p.product, unit=p.unit, date=p.date, progress=progress.sub(0, 0.5),
                          modis_layer=p.modis_layer, quality_path=quality)
    except ValueError as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"DATE: {exc}") from exc
    if raster.date is None:
        progress.warn(f"{source}: no acquisition date in its name or metadata. Give DATE (YYYY-MM-DD): "
                      "the series and fusion algorithms need it.")
    write_lst(raster, output, unit=p.out_unit, progress=progress.sub(0.5, 1.0), inputs=(str(source), quality),
              algorithm="import_lst")
    return ImportResult(Path(output), raster.date, raster.product, raster.valid_fraction)
