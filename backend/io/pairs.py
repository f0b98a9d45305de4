"""Pairing a fine (Landsat) and a coarse (MODIS) series by date: one rule for patches, fusion and evaluation."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..errors import InputError
from .series import SeriesItem


@dataclass(frozen=True)
class Pair:
    date: dt.date
    fine: SeriesItem
    coarse: SeriesItem



def pair_by_date(fine: list[SeriesItem], coarse: list[SeriesItem], tolerance_days: int = 0) -> list[Pair]:
    """Pair each fine date with the closest coarse date within ``tolerance_days`` (each used once)."""
    if tolerance_days < 0:
        raise InputError(f"DATE_TOLERANCE must be 0 or more days, got {tolerance_days}.")
    candidates = sorted(
        (abs((c.date - f.date).days), i, j)
        for i, f in enumerate(fine) for j, c in enumerate(coarse)
        if abs((c.date - f.date).days) <= tolerance_days
    )
    used_f, used_c, pairs = set(), set(), []
    for _, i, j in candidates:
        if i not in used_f and j not in used_c:
            used_f.add(i)
            used_c.add(j)
            pairs.append(Pair(fine[i].date, fine[i], coarse[j]))
    if not pairs:
        raise InputError(
            f"No date in common between the fine series ({fine[0].date} .. {fine[-1].date}, {len(fine)} dates) "
            f"and the coarse series ({coarse[0].date} .. {coarse[-1].date}, {len(coarse)} dates) "
            f"within {tolerance_days} day(s). Raise DATE_TOLERANCE or check the inputs."
        )
    return sorted(pairs, key=lambda p: p.date)
