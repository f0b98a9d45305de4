"""Inputs of the fusion methods: dated fine/coarse rasters on one grid, checked once for all methods."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.dates import file_name
from ..io.grid import Grid
from ..io.series import SeriesItem, check_not_swapped, check_quality_files, describe
from ..io.tiler import row_blocks
from ..progress import Progress


@dataclass(frozen=True)
class FusionInputs:
    """Reference pairs (fine, coarse) and the coarse raster of the prediction date, on one grid."""

    pairs: tuple[tuple[SeriesItem, SeriesItem], ...]
    coarse_target: SeriesItem
    grid: Grid

    @property
    def target_date(self) -> dt.date:
        return self.coarse_target.date


# The order fusion reads its inputs in (input_readers): each pair (fine, coarse) by date, then MODIS at the
# prediction date. Role names are models/contract.py's.
READ_ORDER = {3: ("fine_t1", "coarse_t1", "coarse_t2"),
              5: ("fine_t1", "coarse_t1", "fine_t3", "coarse_t3", "coarse_t2")}


EVERY_PAIR = 0  # a method's reference count meaning "every pair given" (multi-date methods)


def by_role(arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
    """A tile's arrays, read in READ_ORDER, keyed by role for the method's kernel; beyond two pairs
    (multi-date methods) the pairs are fine_r1, coarse_r1, fine_r2, … by date, then coarse_t2."""
    if len(arrays) in READ_ORDER:
        return dict(zip(READ_ORDER[len(arrays)], arrays))
    roles = {}
    for k in range((len(arrays) - 1) // 2):
        roles[f"fine_r{k + 1}"], roles[f"coarse_r{k + 1}"] = arrays[2 * k], arrays[2 * k + 1]
    return {**roles, "coarse_t2": arrays[-1]}


def reference_pairs(roles: dict[str, np.ndarray]) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """The (fine, coarse) pairs of :func:`by_role`'s dict in date order, and MODIS at the prediction date."""
    fines = [key for key in roles if key.startswith("fine_")]
    return [(roles[key], roles["coarse_" + key[len("fine_"):]]) for key in fines], roles["coarse_t2"]


def _common_grid(named: list[tuple[str, SeriesItem]]) -> Grid:
    """The grid most inputs share (the first fine one's on a tie), so the odd one out is blamed."""
    groups: list[list[SeriesItem]] = []
    for _, item in named:
        group = next((g for g in groups if g[0].grid.same_as(item.grid)), None)
        if group is None:
            groups.append([item])
        else:
            group.append(item)
    return max(groups, key=len)[0].grid


def load_fusion_inputs(
    pairs: list[tuple[str | os.PathLike, str | os.PathLike]],
    coarse_target: str | os.PathLike,
    required_pairs: int,
    bracket: bool = False,
    unit: str | None = None,
    method: str = "This method",
    progress: Progress | None = None,
) -> FusionInputs:
    """Describe and check the inputs of a fusion run.

    All rasters must share one grid (the coarse ones resampled onto the fine grid first),
    have dates, and the reference dates must differ from the prediction date; with
    ``bracket`` the two references must lie on either side of it (ESTARFM).
    """
    if required_pairs == EVERY_PAIR:
        if not pairs:
            raise InputError(f"{method} needs at least one reference pair (fine + coarse at the same date).")
    elif len(pairs) != required_pairs:
        hint = (" The second pair (FINE_T3, COARSE_T3) is used by two-reference methods such as ESTARFM: "
                "choose one of those, or leave the second pair out." if len(pairs) > required_pairs else
                " Give the second pair, FINE_T3 and COARSE_T3, of a date after the prediction date.")
        raise InputError(
            f"{method} uses {required_pairs} reference pair(s) (fine + coarse at the same date); "
            f"{len(pairs)} given.{hint}"
        )
    items = [(describe(str(f), unit), describe(str(c), unit)) for f, c in pairs]
    target = describe(str(coarse_target), unit)
    check_quality_files([x for pair in items for x in pair] + [target], "warn", progress)
    fine_named = [(f"FINE_T{2 * k + 1}", fine) for k, (fine, _) in enumerate(items)]
    coarse_named = [*((f"COARSE_T{2 * k + 1}", coarse) for k, (_, coarse) in enumerate(items)), ("COARSE_T2", target)]
    named = [*fine_named, *coarse_named]
    check_not_swapped(fine_named, coarse_named)
    grid = _common_grid(named)
    for name, item in named:
        if not item.grid.same_as(grid):
            raise InputError(
                f"{name}: {file_name(item.path)} is not on the fine grid the other inputs share "
                f"({item.grid.describe()} vs {grid.describe()}). Resample it onto the Landsat grid first (Resample "
                "to a reference grid)."
            )
    for fine, coarse in items:
        if abs((fine.date - coarse.date).days) > 1:
            raise InputError(
                f"Reference pair dates differ: {file_name(fine.path)} is {fine.date}, {file_name(coarse.path)} "
                f"is {coarse.date}. A pair is a fine and a coarse raster of the same day."
            )
        if fine.date == target.date:
            raise InputError(f"The prediction date {target.date} is also a reference date: nothing to predict.")
    if bracket:
        (t1, _), (t3, _) = sorted(items, key=lambda p: p[0].date)
        if not t1.date < target.date < t3.date:
            raise InputError(
                f"The prediction date {target.date} must lie between the two reference dates "
                f"({t1.date} and {t3.date}). Choose references before and after it."
            )
    items.sort(key=lambda p: p[0].date)
    dates = [fine.date for fine, _ in items]
    twice = sorted({str(d) for d in dates if dates.count(d) > 1})
    if twice:
        raise InputError(f"Two reference pairs have the same date ({', '.join(twice)}): give each date once.")
    return FusionInputs(tuple(items), target, grid)


def pairs_by_date(fine: list[str | os.PathLike], coarse: list[str | os.PathLike], what: str = "REFERENCE",
                  unit: str | None = None) -> list[tuple[str, str]]:
    """(fine, coarse) reference pairs from two lists in any order, matched by date; ``what``_FINE and
    ``what``_COARSE name the lists in messages (a date without its partner, or given twice)."""
    def dated(paths, name):
        found: dict[dt.date, str] = {}
        for path in paths:
            date = describe(str(path), unit).date
            if date in found:
                raise InputError(f"{name}: {file_name(found[date])} and {file_name(path)} are both of {date}; "
                                 "give each date once.")
            found[date] = str(path)
        return found

    fines, coarses = dated(fine, f"{what}_FINE"), dated(coarse, f"{what}_COARSE")
    for have, name, other in ((fines, f"{what}_COARSE", coarses), (coarses, f"{what}_FINE", fines)):
        missing = sorted(set(have) - set(other))
        if missing:
            raise InputError(f"{name}: no raster of {', '.join(map(str, missing))} (the date of "
                             f"{', '.join(file_name(have[d]) for d in missing)}); give one of the same day for each.")
    return [(fines[d], coarses[d]) for d in sorted(fines)]


def global_stats(item: SeriesItem, grid: Grid, block_rows: int = 1024) -> tuple[float, float]:
    """Mean and standard deviation of a raster's valid pixels, streamed in row blocks."""
    n, s, ss = 0, 0.0, 0.0
    for window, _, _ in row_blocks(grid, block_rows):
        data = item.read(window).data
        v = data[np.isfinite(data)].astype(np.float64)
        n, s, ss = n + v.size, s + v.sum(), ss + (v * v).sum()
    if n == 0:
        raise InputError(f"{Path(item.path).name}: no valid pixel.")
    mean = s / n
    return float(mean), float(np.sqrt(max(ss / n - mean * mean, 0.0)))
