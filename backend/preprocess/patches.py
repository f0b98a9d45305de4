"""Training samples: MODIS/Landsat pairs by date, dated triplets, a leak-free split, and patches.

A triplet is what a fusion model learns from: MODIS(t1), Landsat(t1), MODIS(t2) as input
and Landsat(t2) as target, t1 the nearest earlier pair (or t1 before and t3 after t2
for two-reference methods). Triplets are split by *date* into train / validation /
test, and no training (or validation) triplet may use a test date in any role.

Patches are not copied out: the aligned images are stored once as a memory-mapped
``images.npy`` (pairs × [MODIS, Landsat] × rows × cols) and each split has an index of
(triplet, row, col). Training reads patches lazily, so the dataset costs the size of
the images, not patches × overlap (95 px at stride 20 would be ~22× larger).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from .. import __version__
from ..errors import InputError
from ..io.fill_flags import flags_path_for
from ..io.grid import block_rows_for
from ..io.outputs import check_output_folder, check_output_size, output_folder
from ..io.pairs import Pair, pair_by_date  # noqa: F401 - Pair re-exported: patches are built from pairs
from ..io.series import SeriesItem, check_fine_and_coarse, load_series
from ..io.tiler import row_blocks
from ..parameters import param, with_overrides
from ..progress import Progress, ensure

SPLITS = ("train", "val", "test")
COARSE, FINE = 0, 1


@dataclass(frozen=True)
class Triplet:
    """Indices into the pair list: references (t1, or t1 and t3) and the target t2."""

    refs: tuple[int, ...]
    target: int

    def members(self) -> tuple[int, ...]:
        return (*self.refs, self.target)


def make_triplets(n_pairs: int, references: int = 1) -> list[Triplet]:
    """Consecutive triplets: t1 the previous pair (and t3 the next one with two references)."""
    if references not in (1, 2):
        raise InputError("REFERENCES must be 1 (t1 before) or 2 (t1 before and t3 after).")
    needed = references + 1
    if n_pairs < needed:
        raise InputError(
            f"{n_pairs} dated pair(s) found; {needed} are needed for triplets with {references} reference(s)."
        )
    if references == 1:
        return [Triplet((i - 1,), i) for i in range(1, n_pairs)]
    return [Triplet((i - 1, i + 1), i) for i in range(1, n_pairs - 1)]


def split_triplets(
    dates: list[dt.date],
    triplets: list[Triplet],
    test_dates: list[dt.date] | None = None,
    test_fraction: float = 0.16,
    val_fraction: float = 0.16,
) -> tuple[dict[str, list[Triplet]], list[tuple[Triplet, str]]]:
    """Split triplets by target date; drop any that would leak a held-out date into training.

    Without ``test_dates`` the split is chronological: the last ``test_fraction`` of
    triplets are test, the ``val_fraction`` before them validation (forecast-like, as in
    the survey). Returns the splits and the dropped triplets with the reason.
    """
    if not (0 <= test_fraction < 1 and 0 <= val_fraction < 1 and test_fraction + val_fraction < 1):
        raise InputError(f"TEST_FRACTION ({test_fraction:g}) and VAL_FRACTION ({val_fraction:g}) must each lie in "
                         "[0, 1) and sum to less than 1.")
    order = sorted(triplets, key=lambda t: dates[t.target])
    n = len(order)
    if test_dates:
        wanted = set(test_dates)
        targets = {dates[t.target] for t in order}
        missing = sorted(wanted - targets)
        if missing:
            raise InputError(
                "TEST_DATES not usable as triplet targets: " + ", ".join(d.isoformat() for d in missing)
                + ". A test date must be a paired date with a reference pair before it."
            )
        test = [t for t in order if dates[t.target] in wanted]
        rest = [t for t in order if dates[t.target] not in wanted]
    else:
        n_test = int(round(n * test_fraction))
        test, rest = order[n - n_test:] if n_test else [], order[: n - n_test]
    n_val = int(round(n * val_fraction))
    val, train = (rest[len(rest) - n_val:], rest[: len(rest) - n_val]) if n_val else ([], rest)
    held_test = {dates[t.target] for t in test}
    held_val = {dates[t.target] for t in val}
    dropped: list[tuple[Triplet, str]] = []

    def keep(group: list[Triplet], forbidden: set[dt.date], why: str) -> list[Triplet]:
        kept = []
        for t in group:
            if {dates[i] for i in t.members()} & forbidden:
                dropped.append((t, why))
            else:
                kept.append(t)
        return kept

    train = keep(train, held_test | held_val, "uses a test or validation date")
    val = keep(val, held_test, "uses a test date")
    if not train:
        raise InputError("No training triplet is left after holding out test and validation dates.")
    return {"train": train, "val": val, "test": test}, dropped


def patch_origins(size: int, patch: int, stride: int) -> np.ndarray:
    """Top-left offsets along one axis: floor((size - patch) / stride) + 1 of them."""
    if patch > size:
        raise InputError(f"PATCH_SIZE {patch} is larger than the raster ({size} px).")
    if patch < 1 or stride < 1:
        raise InputError(f"PATCH_SIZE ({patch}) and STRIDE ({stride}) must be at least 1 px.")
    return np.arange(0, size - patch + 1, stride, dtype=np.int32)


def _nodata_fractions(nan_mask: np.ndarray, rows: np.ndarray, cols: np.ndarray, patch: int) -> np.ndarray:
    """Fraction of nodata in every patch, from a summed-area table (one pass per image)."""
    sat = np.zeros((nan_mask.shape[0] + 1, nan_mask.shape[1] + 1), np.int64)
    sat[1:, 1:] = nan_mask.cumsum(0).cumsum(1)
    r0, c0 = rows[:, None], cols[None, :]
    r1, c1 = r0 + patch, c0 + patch
    return (sat[r1, c1] - sat[r0, c1] - sat[r1, c0] + sat[r0, c0]) / float(patch * patch)


def _observed_flags(item: SeriesItem, window) -> np.ndarray | None:
    """The gap-filler's flags for this raster (1 = really observed), when its sidecar exists."""
    flags = flags_path_for(item.path)
    if flags is None or not flags.exists():
        return None
    with rasterio.open(flags) as src:
        return (src.read(1, window=window) == 0).astype(np.uint8)


@dataclass(frozen=True)
class PatchParams:
    """What users set for a patch dataset; the Processing algorithm builds its parameters from these fields."""

    patch_size: int = param(95, "PATCH_SIZE", "Patch size (px)", 8)
    stride: int = param(20, "STRIDE", "Stride (px)", 1)
    date_tolerance_days: int = param(0, "DATE_TOLERANCE", "Pair dates up to this many days apart", 0, 30)
    references: int = param(1, "REFERENCES", "Reference pairs per triplet", options=(1, 2),
                            option_labels=("One: the nearest earlier pair (t1)",
                                           "Two: the pairs before (t1) and after (t3)"))
    test_dates: list[dt.date] | None = param(None, "TEST_DATES", "Test dates (YYYY-MM-DD, comma-separated; empty "
                                             "= the latest ones)", kind="dates")
    test_fraction: float = param(0.16, "TEST_FRACTION", "Test fraction of triplets (without test dates)", 0.0, 0.9)
    val_fraction: float = param(0.16, "VAL_FRACTION", "Validation fraction of triplets", 0.0, 0.9)
    max_nodata_fraction: float = param(0.1, "MAX_NODATA", "Largest nodata fraction in a patch", 0.0, 1.0)
    seed: int = param(0, "SEED", "Random seed", 0)

    def validate(self) -> None:
        if not 0 <= self.max_nodata_fraction <= 1:
            raise InputError(f"MAX_NODATA_FRACTION must be between 0 and 1, got {self.max_nodata_fraction:g}.")


@dataclass(frozen=True)
class PatchDatasetResult:
    """What Build patches wrote: the manifest and, per split, its triplet and patch counts."""

    manifest: Path
    counts: dict[str, dict[str, int]]  # split -> {"triplets": n, "patches": n}

    @property
    def triplets(self) -> int:
        return sum(c["triplets"] for c in self.counts.values())

    def patches(self, split: str) -> int:
        return self.counts[split]["patches"]


def _load_pairs(fine_inputs, coarse_inputs, tolerance_days: int, progress: Progress) -> list[Pair]:
    """The fine and coarse series paired by date, refused when they are one sensor or not on one grid."""
    fine = load_series(fine_inputs, progress=progress)
    coarse = load_series(coarse_inputs, progress=progress)
    if fine[0].sensor == coarse[0].sensor and fine[0].sensor != "unknown":
        raise InputError(
            f"Both inputs hold {fine[0].sensor} rasters. Give the fine (Landsat) series and the coarse "
            "(MODIS, resampled to the Landsat grid) series."
        )
    check_fine_and_coarse(fine, coarse)
    return pair_by_date(fine, coarse, tolerance_days)


@dataclass
class _Stored:
    """What storing the pairs' images measured: per-channel sums of the training pairs, per-patch nodata."""

    sums: np.ndarray  # (channel, [count, sum, sum of squares])
    nodata: np.ndarray  # (pair, patch row, patch col): the fraction of the patch missing


def _store_pairs(tmp: Path, pairs: list[Pair], grid, rows, cols, patch_size: int, train_pairs: set[int],
                 progress: Progress) -> _Stored:
    """images.npy and observed.npy, written block by block."""
    images = _allocated_memmap(tmp / "images.npy", np.float32, (len(pairs), 2, *grid.shape))
    observed = _allocated_memmap(tmp / "observed.npy", np.uint8, (len(pairs), *grid.shape))
    stored = _Stored(np.zeros((2, 3)), np.zeros((len(pairs), len(rows), len(cols)), np.float32))
    block = block_rows_for(grid.width, 16)
    for k, pair in enumerate(pairs):
        for window, _, _ in row_blocks(grid, block):
            r0, r1 = int(window.row_off), int(window.row_off + window.height)
            for channel, item in ((COARSE, pair.coarse), (FINE, pair.fine)):
                data = item.read(window).data
                images[k, channel, r0:r1] = data
                if k in train_pairs:
                    v = data[np.isfinite(data)].astype(np.float64)
                    stored.sums[channel] += (v.size, v.sum(), (v * v).sum())
            flags = _observed_flags(pair.fine, window)
            fine_valid = np.isfinite(images[k, FINE, r0:r1])
            observed[k, r0:r1] = fine_valid if flags is None else flags & fine_valid
        missing = ~np.isfinite(images[k]).all(axis=0)
        stored.nodata[k] = _nodata_fractions(missing, rows, cols, patch_size)
        progress.update(0.9 * (k + 1) / len(pairs), f"{pair.date}: pair {k + 1}/{len(pairs)} stored")
    images.flush()
    observed.flush()
    return stored


def _write_indexes(tmp: Path, splits: dict, dates: list[dt.date], nodata: np.ndarray, rows, cols,
                   p: PatchParams) -> tuple[dict, list[dict]]:
    """index_<split>.npy of (triplet, row, col) for the patches whose every image is valid enough; the
    counts per split and the triplets' records."""
    rng = np.random.default_rng(p.seed)
    counts, records = {}, []
    grid_r, grid_c = np.meshgrid(rows, cols, indexing="ij")
    for split in SPLITS:
        entries = []
        for t in splits[split]:
            tid = len(records)
            records.append({"id": tid, "split": split, "target": dates[t.target].isoformat(),
                            "references": [dates[i].isoformat() for i in t.refs],
                            "pair_indices": {"references": list(t.refs), "target": t.target}})
            worst = np.max(nodata[list(t.members())], axis=0)
            ok = worst <= p.max_nodata_fraction
            entries.append(np.stack([np.full(ok.sum(), tid), grid_r[ok], grid_c[ok]], axis=1))
        index = np.concatenate(entries).astype(np.int32) if entries else np.zeros((0, 3), np.int32)
        if split == "train":
            index = index[rng.permutation(len(index))]
        np.save(tmp / f"index_{split}.npy", index)
        counts[split] = {"triplets": len(splits[split]), "patches": int(len(index))}
    return counts, records


def _normalisation(sums: np.ndarray) -> dict:
    """Mean and standard deviation of each channel over the training pairs (Kelvin)."""
    stats = {}
    for channel, name in ((COARSE, "coarse"), (FINE, "fine")):
        n, s, ss = sums[channel]
        mean = s / max(n, 1)
        stats[name] = {"mean": mean, "std": float(np.sqrt(max(ss / max(n, 1) - mean * mean, 1e-12))), "unit": "K"}
    return stats


def build_patch_dataset(
    fine_inputs: list[str | os.PathLike],
    coarse_inputs: list[str | os.PathLike],
    out_dir: str | os.PathLike,
    params: PatchParams | None = None,
    *,
    progress: Progress | None = None,
    **options,
) -> PatchDatasetResult:
    """Build the on-disk patch dataset from aligned fine (Landsat) and coarse (MODIS) series; ``params`` (or
    its fields as keywords) say how. The coarse series must already be on the fine grid (resample it first).
    """
    p = with_overrides(PatchParams, params, options)
    progress = ensure(progress)
    p.validate()
    check_output_folder(out_dir, "build_patches", [*fine_inputs, *coarse_inputs])
    pairs = _load_pairs(fine_inputs, coarse_inputs, p.date_tolerance_days, progress)
    grid = pairs[0].fine.grid
    dates = [pair.date for pair in pairs]
    triplets = make_triplets(len(pairs), p.references)
    splits, dropped = split_triplets(dates, triplets, p.test_dates, p.test_fraction, p.val_fraction)
    rows = patch_origins(grid.height, p.patch_size, p.stride)
    cols = patch_origins(grid.width, p.patch_size, p.stride)
    train_pairs = {i for t in splits["train"] for i in t.members()}
    sources = [*fine_inputs, *coarse_inputs, *(x.path for pair in pairs for x in (pair.fine, pair.coarse))]
    with output_folder(out_dir, "build_patches", sources) as tmp:
        check_output_size(tmp, grid.width, grid.height, 9, len(pairs), "OUTPUT_FOLDER", progress)
        stored = _store_pairs(tmp, pairs, grid, rows, cols, p.patch_size, train_pairs, progress)
        counts, records = _write_indexes(tmp, splits, dates, stored.nodata, rows, cols, p)
        manifest = {
            "kind": "lst_fusion_patch_dataset",
            "version": __version__,
            "patch_size": p.patch_size, "stride": p.stride, "references": p.references,
            "date_tolerance_days": p.date_tolerance_days, "max_nodata_fraction": p.max_nodata_fraction,
            "seed": p.seed,
            "grid": {"crs": grid.crs.to_string(), "transform": list(grid.transform)[:6],
                     "width": grid.width, "height": grid.height},
            "patch_origins": {"rows": len(rows), "cols": len(cols), "per_image": int(len(rows) * len(cols))},
            "channels": ["coarse (MODIS on the fine grid)", "fine (Landsat)"],
            "pairs": [{"index": k, "date": pair.date.isoformat(), "fine": pair.fine.path, "coarse": pair.coarse.path,
                       "coarse_date": pair.coarse.date.isoformat()} for k, pair in enumerate(pairs)],
            "triplets": records,
            "dropped_triplets": [{"target": dates[t.target].isoformat(),
                                  "references": [dates[i].isoformat() for i in t.refs], "reason": why}
                                 for t, why in dropped],
            "normalisation": _normalisation(stored.sums),
            "counts": counts,
            "files": {"images": "images.npy", "observed": "observed.npy",
                      **{f"index_{s}": f"index_{s}.npy" for s in SPLITS}},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        progress.update(1.0, ", ".join(f"{s}: {c['triplets']} triplets, {c['patches']} patches"
                                       for s, c in counts.items()))
    return PatchDatasetResult(Path(out_dir) / "manifest.json", counts)


def _allocated_memmap(path: Path, dtype, shape: tuple[int, ...]) -> np.ndarray:
    """A new .npy memory map whose disk blocks are reserved now: on a full disk, writing into an
    unreserved map kills the process (SIGBUS) instead of raising an error."""
    array = np.lib.format.open_memmap(path, "w+", dtype, shape)
    if hasattr(os, "posix_fallocate"):
        with open(path, "r+b") as f:
            os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
    return array


class PatchDataset:
    """Lazy reader of one split of a patch dataset: patches are cut from memory-mapped images.

    ``dataset[i]`` is a dict of float32 arrays (patch × patch), in Kelvin or normalised
    with the training statistics: ``coarse_t1``, ``fine_t1``, ``coarse_t2``, ``fine_t2``
    (and ``coarse_t3``, ``fine_t3`` with two references), plus ``observed_t2`` (1 where
    the target was really observed, not gap-filled).
    """

    def __init__(self, folder: str | os.PathLike, split: str = "train", normalise: bool = True,
                 stats: dict | None = None):
        """``stats``: normalise with these {"fine"/"coarse": {"mean", "std"}} instead of the dataset's own (a
        model being adapted keeps the normalisation it was trained with)."""
        if split not in SPLITS:
            raise InputError(f"Unknown split {split!r}: choose one of {', '.join(SPLITS)}.")
        self.folder = Path(folder)
        manifest = self.folder / "manifest.json"
        if not manifest.exists():
            raise InputError(f"{self.folder}: not a patch dataset (no manifest.json). Run 'Build patches' first.")
        self.split = split
        self.normalise = normalise
        try:
            self.manifest = json.loads(manifest.read_text())
            if not isinstance(self.manifest, dict) or self.manifest.get("kind") != "lst_fusion_patch_dataset":
                raise InputError(f"{manifest}: not an LST Fusion patch dataset manifest.")
            self.images = np.load(self.folder / "images.npy", mmap_mode="r")
            self.observed = np.load(self.folder / "observed.npy", mmap_mode="r")
            self.index = np.load(self.folder / f"index_{split}.npy")
            self.triplets = {t["id"]: t for t in self.manifest["triplets"]}
            self.size = int(self.manifest["patch_size"])
            if stats is not None:
                self.manifest["normalisation"] = {**self.manifest["normalisation"], **stats}
            stats = self.manifest["normalisation"]
            self._stats = [(stats["coarse"]["mean"], stats["coarse"]["std"]),
                           (stats["fine"]["mean"], stats["fine"]["std"])]
            self._check()
        except InputError:
            raise
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise InputError(f"{self.folder}: the patch dataset is damaged ({type(exc).__name__}: {exc}); a file is "
                             "missing, truncated or edited. Run 'Build patches' again into a new folder.") from exc

    def _check(self) -> None:
        """Arrays and manifest must agree, so a damaged dataset fails here, not in the middle of training."""
        images, observed, index = self.images, self.observed, self.index
        pairs = len(self.manifest["pairs"])
        if images.ndim != 4 or images.shape[0] != pairs or observed.shape != (images.shape[0], *images.shape[2:]):
            raise ValueError(f"images.npy {images.shape} and observed.npy {observed.shape} do not match the manifest's "
                             f"{pairs} pair(s)")
        if index.size and (index.ndim != 2 or index.shape[1] != 3):
            raise ValueError(f"index_{self.split}.npy has shape {index.shape}, not (patches, 3)")
        if index.size:
            unknown = set(np.unique(index[:, 0]).tolist()) - set(self.triplets)
            rows, cols = images.shape[2:]
            if unknown or index[:, 1].max() + self.size > rows or index[:, 2].max() + self.size > cols:
                raise ValueError(f"index_{self.split}.npy names patches outside the images or unknown triplets")

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        tid, r, c = (int(v) for v in self.index[i])
        t = self.triplets[tid]["pair_indices"]
        window = (slice(r, r + self.size), slice(c, c + self.size))
        out = {}
        roles = [("t1", t["references"][0]), ("t2", t["target"])]
        if len(t["references"]) == 2:
            roles.append(("t3", t["references"][1]))
        for role, k in roles:
            for channel, name in ((COARSE, "coarse"), (FINE, "fine")):
                patch = np.array(self.images[k, channel][window], np.float32)
                if self.normalise:
                    mean, std = self._stats[channel]
                    patch = (patch - mean) / std
                out[f"{name}_{role}"] = patch
        out["observed_t2"] = np.array(self.observed[t["target"]][window], np.float32)
        return out
