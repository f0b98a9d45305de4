"""The season regression: every reference pair used, exact per tile, gap-filled pixels counted less, in QGIS."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
from qgis.core import QgsProcessingFeedback

from backend.errors import InputError
from backend.fusion.fuse import fuse
from backend.fusion.params import SeasonParams
from backend.fusion.season import date_weights
from backend.fusion.series import fuse_series, plan_series
from backend.io.readers import read_lst
from backend.io.series import SeriesItem
from backend.preprocess.patches import Pair


@pytest.fixture(scope="module")
def season_files(tiny_patches) -> tuple[list[str], list[str]]:
    """The tiny season's 6 gap-filled Landsat dates and 6 MODIS dates on the Landsat grid."""
    root = tiny_patches.parent
    fine = sorted(str(p) for p in (root / "landsat").glob("*_filled.tif"))
    coarse = sorted(str(p) for p in (root / "modis30").glob("*.tif"))
    return fine, coarse


def _pairs(fine, coarse, keep):
    return [(fine[k], coarse[k]) for k in keep]


def test_every_other_pair_is_a_reference():
    item = lambda day, s: SeriesItem(f"{s}_{day}.tif", dt.date(2020, 6, day), s, s, None)  # noqa: E731
    pairs = [Pair(dt.date(2020, 6, d), item(d, "landsat"), item(d, "modis")) for d in (1, 4, 9)]
    coarse = [item(d, "modis") for d in (1, 2, 4, 9)]
    tasks, skipped = plan_series(pairs, coarse, 0, include_paired=True)
    assert [(t.target.date.day, [p.date.day for p in t.pairs]) for t in tasks] == \
        [(1, [4, 9]), (2, [1, 4, 9]), (4, [1, 9]), (9, [1, 4])]
    tasks, skipped = plan_series(pairs, coarse, 0, include_paired=True, reference_dates=[dt.date(2020, 6, 1),
                                                                                        dt.date(2020, 6, 9)])
    assert [t.target.date.day for t in tasks] == [2, 4]
    assert skipped == [(dt.date(2020, 6, 1), "it is one of the fixed reference dates"),
                       (dt.date(2020, 6, 9), "it is one of the fixed reference dates")]


def test_date_weights_favour_near_dates():
    target = dt.date(2020, 6, 15)
    dates = [dt.date(2019, 6, 15), dt.date(2020, 5, 30), dt.date(2020, 6, 14), dt.date(2020, 12, 1)]
    w = date_weights(dates, target, SeasonParams(season_weight=0.0))
    assert w[2] == 1.0 and w[1] == pytest.approx(np.exp(-15 / 32)) and w[3] < w[1] and w[0] < 1e-4
    # SEASON_WEIGHT: the same day a year before counts again, a date half a year away does not.
    w = date_weights(dates, target, SeasonParams(season_weight=0.5))
    assert w[0] == pytest.approx(0.5, abs=2e-3) and w[3] < 0.01


def test_tiled_equals_untiled_and_far_pairs_count(season_files, tmp_path):
    fine, coarse = season_files
    refs = _pairs(fine, coarse, [0, 1, 3, 4, 5])
    whole = fuse("season", refs, coarse[2], tmp_path / "whole.tif")
    tiled = fuse("season", refs, coarse[2], tmp_path / "tiled.tif", tile_rows=7, tile_cols=13)
    a, b = read_lst(whole.path).data, read_lst(tiled.path).data
    assert np.isfinite(a).mean() > 0.99
    np.testing.assert_array_equal(a, b)
    assert whole.reference_dates == [str(read_lst(f).date) for f, _ in refs]
    # The farthest pair (the last date) still changes the result: the gains are fitted on every pair.
    near = fuse("season", refs[:-1], coarse[2], tmp_path / "near.tif")
    change = np.abs(read_lst(near.path).data - a)
    assert np.nanmax(change) > 0.05 and np.nanmean(change) > 0.005


def test_one_pair_gives_the_fine_reference_plus_modis_change(season_files, tmp_path):
    """With one pair nothing says how a pixel answers MODIS: the gain stays 1 (STARFM without its window)."""
    fine, coarse = season_files
    out = fuse("season", [(fine[1], coarse[1])], coarse[2], tmp_path / "one.tif",
               SeasonParams(coarse_consistency=False))
    expected = read_lst(fine[1]).data + (read_lst(coarse[2]).data - read_lst(coarse[1]).data)
    np.testing.assert_allclose(read_lst(out.path).data, expected, atol=1e-3)


def test_gap_filled_pixels_count_less(season_files, tmp_path):
    """FILLED_WEIGHT changes the result only where a reference was gap-filled; unflagged copies count fully."""
    fine, coarse = season_files
    refs = _pairs(fine, coarse, [0, 1, 3, 4, 5])
    flags = []
    for f in fine:
        with rasterio.open(f.replace("_filled.tif", "_fillflags.tif")) as src:
            flags.append(src.read(1))
    filled_anywhere = np.zeros_like(flags[0], bool)
    for k in (0, 1, 3, 4, 5):
        filled_anywhere |= (flags[k] != 0) & (flags[k] != 255)
    assert 0.02 < filled_anywhere.mean() < 0.98
    plain = SeasonParams(coarse_consistency=False)  # the smooth correction would spread a change around it
    full = read_lst(fuse("season", refs, coarse[2], tmp_path / "w1.tif", replace(plain, filled_weight=1.0)).path).data
    half = read_lst(fuse("season", refs, coarse[2], tmp_path / "w05.tif", plain).path).data
    moved = np.abs(full - half) > 1e-4
    assert moved.any() and not moved[~filled_anywhere].any()
    # The same rasters without their flags beside them count as observed.
    copies = []
    for f, c in refs:
        copy = tmp_path / "noflags" / Path(f).name.replace("_filled.tif", ".tif")
        copy.parent.mkdir(exist_ok=True)
        shutil.copy(f, copy)
        copies.append((str(copy), c))
    unflagged = read_lst(fuse("season", copies, coarse[2], tmp_path / "plain.tif", plain).path).data
    np.testing.assert_array_equal(unflagged, full)


def test_bad_inputs_are_named(season_files, tmp_path):
    fine, coarse = season_files
    with pytest.raises(InputError, match="same date"):
        fuse("season", [(fine[0], coarse[0]), (fine[0], coarse[0])], coarse[2], tmp_path / "x.tif")
    with pytest.raises(InputError, match="MEMORY_DAYS"):
        fuse("season", [(fine[0], coarse[0])], coarse[2], tmp_path / "x.tif", SeasonParams(memory_days=0))
    assert not (tmp_path / "x.tif").exists()


def test_series_and_processing(provider, season_files, tmp_path):
    import processing

    fine, coarse = season_files
    result = fuse_series("season", fine, coarse, tmp_path / "series", include_paired=True)
    assert len(result.outputs) == 6 and all(len(r.reference_dates) == 5 for r in result.outputs)
    # Fuse with a list of references: FINE_T1/COARSE_T1 plus REFERENCE_FINE/REFERENCE_COARSE, paired by date.
    res = processing.run("lst_fusion:fuse", {
        "FINE_T1": fine[0], "COARSE_T1": coarse[0], "COARSE_T2": coarse[2], "METHOD": "season",
        "REFERENCE_FINE": [fine[5], fine[1], fine[4], fine[3]], "REFERENCE_COARSE": coarse[3:] + [coarse[1]],
        "OUTPUT": str(tmp_path / "fused.tif")}, feedback=QgsProcessingFeedback())
    target = next(r for r in result.outputs if r.target_date == res["DATE"])
    np.testing.assert_array_equal(read_lst(res["OUTPUT"]).data, read_lst(target.path).data)
    with pytest.raises(Exception, match="REFERENCE_COARSE"):
        processing.run("lst_fusion:fuse", {
            "FINE_T1": fine[0], "COARSE_T1": coarse[0], "COARSE_T2": coarse[2], "METHOD": "season",
            "REFERENCE_FINE": [fine[5]], "REFERENCE_COARSE": [coarse[4]], "OUTPUT": str(tmp_path / "bad.tif")},
            feedback=QgsProcessingFeedback())
