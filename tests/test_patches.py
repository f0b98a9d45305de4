"""Pairs, triplets, the leak-free date split and the lazily read patch dataset."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from backend.errors import InputError
from backend.io.readers import read_lst
from backend.preprocess.patches import PatchDataset, Triplet, build_patch_dataset, make_triplets, split_triplets
from backend.preprocess.resample import reference_grid, resample_series
from backend.preprocess.sample_data import SampleSpec, generate_sample_dataset


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    """The survey-sized sample dataset: 51 dated pairs at 950 × 950 px, MODIS resampled to 30 m."""
    root = tmp_path_factory.mktemp("survey")
    generate_sample_dataset(root / "sample", SampleSpec(seed=1))
    resample_series([root / "sample" / "modis"], root / "modis_30m", reference_grid(root / "sample" / "landsat"))
    return root


def _positions(size, patch, stride):
    return (size - patch) // stride + 1


def test_survey_counts_match_the_formula(survey, tmp_path):
    manifest = json.loads(build_patch_dataset([survey / "sample" / "landsat"], [survey / "modis_30m"],
                                              tmp_path / "all", max_nodata_fraction=1.0).manifest.read_text())
    per_image = _positions(950, 95, 20) ** 2
    assert per_image == 43 * 43 == manifest["patch_origins"]["per_image"]
    assert len(manifest["pairs"]) == 51
    counts = manifest["counts"]
    # 50 consecutive triplets: 8 test (16 %), 8 validation, 34 training (as in the survey).
    assert [counts[s]["triplets"] for s in ("train", "val", "test")] == [34, 8, 8]
    for split in ("train", "val", "test"):
        assert counts[split]["patches"] == counts[split]["triplets"] * per_image
    strict = json.loads(build_patch_dataset([survey / "sample" / "landsat"], [survey / "modis_30m"],
                                            tmp_path / "strict", max_nodata_fraction=0.1).manifest.read_text())
    assert 0 < strict["counts"]["train"]["patches"] < counts["train"]["patches"]  # cloudy patches skipped


def test_no_training_patch_from_a_test_date(survey, tmp_path):
    dates = sorted(read_lst(f).date for f in (survey / "sample" / "landsat").glob("*_ST_B10.TIF"))
    chosen = [dates[10], dates[30]]
    path = build_patch_dataset([survey / "sample" / "landsat"], [survey / "modis_30m"], tmp_path / "d",
                               references=2, test_dates=chosen, max_nodata_fraction=0.5, stride=60)
    manifest = json.loads(path.manifest.read_text())
    held = {d.isoformat() for d in chosen} | {t["target"] for t in manifest["triplets"] if t["split"] == "val"}
    by_id = {t["id"]: t for t in manifest["triplets"]}
    train = PatchDataset(tmp_path / "d", "train")
    assert len(train) > 0
    used = set()
    for tid in np.unique(train.index[:, 0]):
        used |= {by_id[int(tid)]["target"], *by_id[int(tid)]["references"]}
    assert not used & held
    assert {t["target"] for t in manifest["triplets"] if t["split"] == "test"} == {d.isoformat() for d in chosen}
    # Two references: the triplets beside each test date would use it, so they are dropped, not trained on.
    assert sum(t["reason"] == "uses a test or validation date" for t in manifest["dropped_triplets"]) >= 4


def test_lazy_patches_equal_the_images(survey, tmp_path):
    build_patch_dataset([survey / "sample" / "landsat"], [survey / "modis_30m"], tmp_path / "d",
                        stride=200, max_nodata_fraction=1.0)
    raw = PatchDataset(tmp_path / "d", "test", normalise=False)
    sample = raw[len(raw) - 1]
    tid, r, c = (int(v) for v in raw.index[len(raw) - 1])
    triplet = raw.triplets[tid]
    pairs = raw.manifest["pairs"]
    target = read_lst(pairs[triplet["pair_indices"]["target"]]["fine"]).data[r:r + 95, c:c + 95]
    np.testing.assert_array_equal(sample["fine_t2"], target)
    coarse_t1 = read_lst(pairs[triplet["pair_indices"]["references"][0]]["coarse"]).data[r:r + 95, c:c + 95]
    np.testing.assert_array_equal(sample["coarse_t1"], coarse_t1)
    assert set(sample) == {"coarse_t1", "fine_t1", "coarse_t2", "fine_t2", "observed_t2"}
    np.testing.assert_array_equal(sample["observed_t2"], np.isfinite(target))
    norm = PatchDataset(tmp_path / "d", "test")[len(raw) - 1]
    stats = raw.manifest["normalisation"]["fine"]
    np.testing.assert_allclose(norm["fine_t2"], (target - stats["mean"]) / stats["std"], rtol=1e-5, equal_nan=True)
    assert 280 < stats["mean"] < 310 and 2 < stats["std"] < 20


def test_triplets_and_split_rules():
    assert make_triplets(4) == [Triplet((0,), 1), Triplet((1,), 2), Triplet((2,), 3)]
    assert make_triplets(4, references=2) == [Triplet((0, 2), 1), Triplet((1, 3), 2)]
    with pytest.raises(InputError, match="1 dated pair"):
        make_triplets(1)
    dates = [dt.date(2020, 1, 1) + dt.timedelta(days=16 * i) for i in range(10)]
    splits, dropped = split_triplets(dates, make_triplets(10, 2), test_fraction=0.25, val_fraction=0.0)
    test_dates = {dates[t.target] for t in splits["test"]}
    assert all(not {dates[i] for i in t.members()} & test_dates for t in splits["train"])
    assert dropped and all(dates[t.target] not in test_dates for t, _ in dropped)
    with pytest.raises(InputError, match="TEST_DATES not usable"):
        split_triplets(dates, make_triplets(10), test_dates=[dates[0]])


def test_bad_inputs(survey, tmp_path, sample_dataset):
    fine, coarse = survey / "sample" / "landsat", survey / "modis_30m"
    with pytest.raises(InputError, match="Both inputs hold landsat"):
        build_patch_dataset([fine], [fine], tmp_path / "x")
    with pytest.raises(InputError, match="swap them"):
        build_patch_dataset([coarse], [fine], tmp_path / "x")
    with pytest.raises(InputError, match="not on the fine grid.*Resample"):
        build_patch_dataset([fine], [survey / "sample" / "modis"], tmp_path / "x")
    other, _ = sample_dataset  # other dates (2013 spread), other grid
    with pytest.raises(InputError, match="not on the fine grid|No date in common"):
        build_patch_dataset([fine], [other / "modis"], tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_no_date_overlap_and_single_date(tmp_path):
    spec = SampleSpec(width=96, height=96, n_dates=2, start=dt.date(2020, 6, 1), end=dt.date(2020, 6, 17), seed=3)
    generate_sample_dataset(tmp_path / "a", spec)
    later = SampleSpec(width=96, height=96, n_dates=2, start=dt.date(2021, 6, 1), end=dt.date(2021, 6, 17), seed=3)
    generate_sample_dataset(tmp_path / "b", later)
    grid = reference_grid(tmp_path / "a" / "landsat")
    resample_series([tmp_path / "b" / "modis"], tmp_path / "b30", grid)
    with pytest.raises(InputError, match=r"No date in common .*2020-06-01 .. 2020-06-17.*2021-06-01 .. 2021-06-17"):
        build_patch_dataset([tmp_path / "a" / "landsat"], [tmp_path / "b30"], tmp_path / "x")
    resample_series([tmp_path / "a" / "modis"], tmp_path / "a30", grid)
    first = sorted((tmp_path / "a" / "landsat").glob("*ST_B10.TIF"))[0]
    with pytest.raises(InputError, match="1 dated pair"):
        build_patch_dataset([first], [tmp_path / "a30"], tmp_path / "x", patch_size=32, stride=16)
    with pytest.raises(InputError, match="PATCH_SIZE 200 is larger"):
        build_patch_dataset([tmp_path / "a" / "landsat"], [tmp_path / "a30"], tmp_path / "x", patch_size=200)
