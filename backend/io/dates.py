"""Acquisition dates and product names parsed from the file names users download."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

# MOD11A1.A2013077.h18v04.061.2021...hdf  (A + year + day of year)
_MODIS_NATIVE = re.compile(r"\b(M[OY]D\d{2}[A-Z0-9]{1,4})\.A(\d{4})(\d{3})\b")
# AppEEARS exports: MOD11A1.061_LST_Day_1km_doy2013077_aid0001.tif
_MODIS_APPEEARS = re.compile(r"\b(M[OY]D\d{2}[A-Z0-9]{1,4})\.\d{3}_.*?doy(\d{4})(\d{3})")
# LC08_L2SP_199026_20130318_20200912_02_T1_ST_B10.TIF (acquisition date first)
_LANDSAT = re.compile(r"\b(L[COTE]0[89])_(L2SP|L2SR)_(\d{6})_(\d{8})_(\d{8})_\d{2}_(T1|T2|RT)")
_ISO = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_COMPACT = re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?!\d)")


def _doy(year: str, doy: str) -> dt.date:
    return dt.date(int(year), 1, 1) + dt.timedelta(days=int(doy) - 1)


def file_name(path: str | Path) -> str:
    """The file name, also for GDAL subdataset names such as ``HDF4_EOS:EOS_GRID:"f.hdf":grid:layer``."""
    text = str(path)
    if text.startswith(("HDF4", "HDF5", "NETCDF")):
        quoted = re.search(r'"([^"]+)"', text)
        text = quoted.group(1) if quoted else text.split(":")[2]
    return Path(text).name


def product_from_name(path: str | Path) -> str | None:
    """The product short name encoded in a file name ('MOD11A1', 'LC08_L2SP'), if any."""
    name = file_name(path)
    for pattern in (_MODIS_NATIVE, _MODIS_APPEEARS):
        m = pattern.search(name)
        if m:
            return m.group(1)
    m = _LANDSAT.search(name)
    if m:
        return f"{m.group(1)}_{m.group(2)}"
    return None


def date_from_name(path: str | Path) -> dt.date | None:
    """The acquisition date in a product file name, or ``None`` when none is recognisable.

    Knows MODIS (``A2013077``), AppEEARS (``doy2013077``) and Landsat Collection 2
    names (acquisition date before processing date), then falls back to a lone
    ``YYYY-MM-DD`` or ``YYYYMMDD`` in the name. Ambiguous names (two different
    plain dates) give ``None`` so the caller asks the user instead of guessing.
    """
    name = file_name(path)
    for pattern in (_MODIS_NATIVE, _MODIS_APPEEARS):
        m = pattern.search(name)
        if m:
            return _doy(m.group(2), m.group(3))
    m = _LANDSAT.search(name)
    if m:
        return dt.datetime.strptime(m.group(4), "%Y%m%d").date()
    found: set[dt.date] = set()
    for pattern in (_ISO, _COMPACT):
        for m in pattern.finditer(name):
            try:
                found.add(dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))))
            except ValueError:
                continue
    plausible = {d for d in found if 1980 <= d.year <= 2100}
    return plausible.pop() if len(plausible) == 1 else None


def parse_date(value: str | dt.date | None) -> dt.date | None:
    """A user-given date (``YYYY-MM-DD``, ``YYYYMMDD`` or ``YYYYDDD``) as a ``date``."""
    if value is None or isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if not text:
        return None
    fmt = {10: "%Y-%m-%d", 8: "%Y%m%d", 7: "%Y%j"}.get(len(text))
    if fmt is not None:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            pass
    _check_calendar(text)
    raise ValueError(f"Cannot read the date {value!r}: write it as YYYY-MM-DD.")


def _check_calendar(text: str) -> None:
    """A date written right that the calendar does not have (2020-02-30, 2021-13-01) says so."""
    import calendar
    import re

    m = re.fullmatch(r"(\d{4})-?(\d{2})-?(\d{2})", text)
    if not m:
        return
    year, month, day = (int(g) for g in m.groups())
    if not 1 <= month <= 12:
        raise ValueError(f"The date {text} does not exist: there is no month {month} (01-12).")
    days = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days:
        raise ValueError(f"The date {text} does not exist: {calendar.month_name[month]} {year} has {days} days.")
