"""Fault injection: hostile outputs, implausible inputs, full disks, unwritable folders and signals.

Every case runs an algorithm the way a user does (``processing.run`` in-process, or
``qgis_process`` in a subprocess for exits, file-size limits and signals) and checks the
contract of backend/io/outputs.py: a clear message naming the file or parameter, a failed
run (exception / non-zero exit), and nothing the user had lost or changed — every file
of the workspace is checksummed before and after, and no partial or temporary file is
left. The cases are listed at the end of the test run (see conftest.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
import resource
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from qgis.core import QgsProcessingException, QgsProcessingFeedback

from backend.io import outputs
from backend.preprocess.resample import reference_grid, resample_series
from backend.preprocess.sample_data import SampleSpec, generate_sample_dataset

REPO = Path(__file__).resolve().parents[1]
WRAPPER = REPO / "scripts" / "qgis_process"
TMP = re.compile(r"\.lstf-|\.part")


# ------------------------------------------------------------------ workspace

def digest(root: Path) -> dict[str, str]:
    """Checksum of every file (and the target of every link) under ``root``."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "link->" + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def unchanged(before: dict[str, str], after: dict[str, str]) -> bool:
    """Every file is as it was and nothing new appeared: no ``.aux.xml`` statistics beside a file that
    was there before either (GDAL's PAM must not persist them beside a user's inputs)."""
    added = set(after) - set(before)
    return all(after.get(k) == v for k, v in before.items()) and not added


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if TMP.search(p.name))


@dataclass
class Workspace:
    """A user's folder: a sample dataset, its gap-filled and resampled series, and unrelated files."""

    root: Path

    @property
    def sample(self) -> Path:
        return self.root / "sample"

    @property
    def landsat(self) -> Path:
        return self.root / "landsat"

    @property
    def modis30(self) -> Path:
        return self.root / "modis30"

    @property
    def docs(self) -> Path:
        return self.root / "MyProject"

    def filled(self, k: int) -> str:
        return str(sorted(self.landsat.glob("*_filled.tif"))[k])

    def coarse(self, k: int) -> str:
        return str(sorted(self.modis30.glob("*.tif"))[k])

    def st_b10(self, k: int = 0) -> Path:
        return sorted((self.sample / "landsat").glob("*_ST_B10.TIF"))[k]

    def modis_lst(self, k: int = 0) -> Path:
        return sorted((self.sample / "modis").glob("*LST_Day_1km*.tif"))[k]

    def fuse_params(self, **extra) -> dict:
        return {"METHOD": 0, "WINDOW": 11, "FINE_T1": self.filled(0), "COARSE_T1": self.coarse(0),
                "COARSE_T2": self.coarse(1), "OUTPUT": str(self.root / "fused.tif"), **extra}


def _user_raster(path: Path, data: np.ndarray, dtype: str, nodata=None) -> None:
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1, dtype=dtype,
                       crs="EPSG:32631", transform=Affine(30, 0, 600000, 0, -30, 5300000), nodata=nodata) as dst:
        dst.write(data.astype(dtype), 1)


@pytest.fixture(scope="module")
def base(tiny_patches, tmp_path_factory) -> Path:
    """The shared tiny chain (sample, gap-filled, resampled, patches) plus a user's own files."""
    root = tmp_path_factory.mktemp("fault_base") / "ws"
    shutil.copytree(tiny_patches.parent, root, symlinks=True)
    docs = root / "MyProject"
    docs.mkdir()
    (docs / "thesis.docx").write_bytes(b"PK\x03\x04 three years of work")
    rng = np.random.default_rng(0)
    _user_raster(docs / "dem.tif", rng.uniform(100, 300, (20, 20)), "float32")
    _user_raster(docs / "zeros_celsius.tif", np.zeros((40, 40)), "float32")
    _user_raster(docs / "reflectance.tif", rng.uniform(0.02, 0.6, (40, 40)), "float32")
    _user_raster(docs / "sr_b4_dn.tif", rng.integers(7300, 9000, (40, 40)), "uint16")
    (docs / "manifest.json").write_text('{"my": "own manifest"}')
    return root


@pytest.fixture()
def ws(base, tmp_path) -> Workspace:
    root = tmp_path / "ws"
    shutil.copytree(base, root, symlinks=True)
    return Workspace(root)


def run_alg(alg: str, params: dict, feedback: QgsProcessingFeedback | None = None) -> dict:
    import processing

    return processing.run(f"lst_fusion:{alg}", params, feedback=feedback or QgsProcessingFeedback())


# ------------------------------------------------------------- refused runs

@dataclass
class Case:
    alg: str
    params: Callable[[Workspace], dict]
    message: str  # regex the error must match: it names the file or parameter and what to do


def _gapfill(ws: Workspace, out, **extra) -> dict:
    return {"INPUT": str(ws.sample / "landsat"), "SENSOR": 1, "OUTPUT_FOLDER": str(out), **extra}


def _resample(ws: Workspace, out, **extra) -> dict:
    return {"INPUT": str(ws.sample / "modis"), "REFERENCE": ws.filled(0), "OUTPUT_FOLDER": str(out), **extra}


def _patches(ws: Workspace, out) -> dict:
    return {"FINE": str(ws.landsat), "COARSE": str(ws.modis30), "PATCH_SIZE": 16, "STRIDE": 16,
            "TEST_FRACTION": 0.0, "VAL_FRACTION": 0.0, "OUTPUT_FOLDER": str(out)}


def _evaluate(ws: Workspace, out) -> dict:
    """The gap-filled Landsat scored against the truth, beside resampled MODIS."""
    return {"PREDICTIONS": str(ws.landsat), "REFERENCE": str(ws.sample / "truth"), "COARSE": str(ws.modis30),
            "OUTPUT_FOLDER": str(out)}


def _import(path, out, **extra) -> dict:
    return {"INPUT": str(path), "OUTPUT": str(out), **extra}


CASES = {
    # ---- a raster OUTPUT that is a folder, an input, a companion, a foreign file, a wrong format
    "import-output-is-a-folder": Case(
        "import_lst", lambda w: _import(w.st_b10(), w.docs), r"OUTPUT: .*MyProject is an existing folder"),
    "import-output-is-its-own-folder": Case(
        "import_lst", lambda w: _import(w.st_b10(), w.sample / "landsat"), r"landsat is an existing folder"),
    "import-output-is-the-input": Case(
        "import_lst", lambda w: _import(w.st_b10(), w.st_b10()), r"OUTPUT: .*ST_B10.TIF is an input of this run"),
    "import-output-is-the-qa-file": Case(
        "import_lst", lambda w: _import(w.st_b10(), str(w.st_b10()).replace("ST_B10", "QA_PIXEL")),
        r"QA_PIXEL.TIF exists and was not written by LST Fusion"),
    "import-output-is-a-user-raster": Case(
        "import_lst", lambda w: _import(w.st_b10(), w.docs / "dem.tif"), r"dem.tif exists and was not written"),
    "import-output-png": Case(
        "import_lst", lambda w: _import(w.st_b10(), w.root / "lst.png"),
        r"OUTPUT: lst.png .*name the output with .tif"),
    "fuse-output-is-fine-input": Case(
        "fuse", lambda w: w.fuse_params(OUTPUT=w.filled(0)), r"OUTPUT: .*_filled.tif is an input of this run"),
    "fuse-output-is-a-folder": Case(
        "fuse", lambda w: w.fuse_params(OUTPUT=str(w.docs)), r"MyProject is an existing folder"),
    "fuse-output-is-a-link-to-an-input": Case(
        "fuse", lambda w: (os.symlink(w.coarse(1), w.root / "link.tif"),
                           w.fuse_params(OUTPUT=str(w.root / "link.tif")))[1],
        r"is an input of this run"),
    "fuse-output-inside-a-file": Case(
        "fuse", lambda w: w.fuse_params(OUTPUT=str(w.docs / "thesis.docx" / "x.tif")), r"thesis.docx is a file"),
    # ---- folder outputs: the input, inside the input, foreign, another algorithm's, a file
    "gapfill-output-is-the-input": Case(
        "gap_fill", lambda w: _gapfill(w, w.sample / "landsat"), r"OUTPUT_FOLDER: .*landsat is an input"),
    "gapfill-output-inside-the-input": Case(
        "gap_fill", lambda w: _gapfill(w, w.sample / "landsat" / "filled"), r"inside the input folder"),
    "gapfill-output-is-a-users-folder": Case(
        "gap_fill", lambda w: _gapfill(w, w.docs), r"MyProject is not empty \(.*\) and was not written by LST"),
    "gapfill-output-is-a-file": Case(
        "gap_fill", lambda w: _gapfill(w, w.docs / "thesis.docx"), r"thesis.docx is a file"),
    "gapfill-output-holds-its-inputs": Case(
        "gap_fill", lambda w: {"INPUT_FILES": [w.filled(0), w.filled(1)], "OUTPUT_FOLDER": str(w.landsat)},
        r"holds the input .*_filled.tif"),
    "resample-output-is-a-gapfill-output": Case(
        "resample", lambda w: _resample(w, w.root / "modis"), r"holds the output of 'gap_fill', not of 'resample'"),
    "resample-output-is-a-users-folder": Case(
        "resample", lambda w: _resample(w, w.docs), r"MyProject is not empty"),
    "patches-output-is-the-sample-dataset": Case(
        "build_patches", lambda w: _patches(w, w.sample), r"holds the output of 'generate_sample_dataset'"),
    "patches-output-is-the-fine-input": Case(
        "build_patches", lambda w: _patches(w, w.landsat), r"landsat is an input"),
    "sample-output-has-a-foreign-manifest": Case(
        "generate_sample_dataset", lambda w: {"OUTPUT_FOLDER": str(w.docs), "WIDTH": 16, "HEIGHT": 16},
        r"MyProject is not empty"),
    "sample-output-is-a-gapfill-output": Case(
        "generate_sample_dataset", lambda w: {"OUTPUT_FOLDER": str(w.landsat), "WIDTH": 16, "HEIGHT": 16},
        r"holds the output of 'gap_fill'"),
    "train-output-is-a-users-folder": Case(
        "train", lambda w: {"DATASET": str(w.root / "patches"), "OUTPUT_FOLDER": str(w.docs), "EPOCHS": 1},
        r"OUTPUT_FOLDER: .*MyProject is not empty"),
    "train-output-is-the-dataset": Case(
        "train", lambda w: {"DATASET": str(w.root / "patches"), "OUTPUT_FOLDER": str(w.root / "patches"),
                            "EPOCHS": 1},
        r"OUTPUT_FOLDER: .*patches is an input of this run"),
    # ---- size guard
    "resample-resolution-0.01": Case(
        "resample", lambda w: {"INPUT": str(w.sample / "modis"), "TARGET_CRS": "EPSG:32631",
                               "RESOLUTION": 0.01, "EXTENT": "600000,603600,5296400,5300000 [EPSG:32631]",
                               "OUTPUT_FOLDER": str(w.root / "r")},
        r"OUTPUT_FOLDER: the output grid would be 360,00\d × 360,00\d px .* over the limit"),
    "resample-resolution-zero": Case(
        "resample", lambda w: {"INPUT": str(w.sample / "modis"), "TARGET_CRS": "EPSG:32631", "RESOLUTION": 0,
                               "EXTENT": "600000,601000,5299000,5300000 [EPSG:32631]",
                               "OUTPUT_FOLDER": str(w.root / "r")},
        r"RESOLUTION must be a positive pixel size .* got 0"),
    # ---- values that cannot be LST
    "float-zeros-declared-celsius": Case(
        "import_lst", lambda w: _import(w.docs / "zeros_celsius.tif", w.root / "o.tif", UNIT=2),
        r"zeros_celsius.tif: every valid pixel holds 0"),
    "float-reflectance-declared-celsius": Case(
        "import_lst", lambda w: _import(w.docs / "reflectance.tif", w.root / "o.tif", UNIT=2),
        r"reflectance.tif: all values lie between 0 and 1"),
    "landsat-st-b10-forced-as-modis": Case(
        "import_lst", lambda w: _import(w.st_b10(), w.root / "o.tif", PRODUCT=1), r"its name says Landsat"),
    "modis-forced-as-landsat": Case(
        "import_lst", lambda w: _import(w.modis_lst(), w.root / "o.tif", PRODUCT=2), r"its name says MOD11A1"),
    "raw-dn-forced-as-modis": Case(
        "import_lst", lambda w: _import(w.docs / "sr_b4_dn.tif", w.root / "o.tif", PRODUCT=1),
        r"sr_b4_dn.tif: decoded as MODIS LST .* not land surface temperature \(median 1[56]\d\.\d K"),
    "raw-dn-forced-as-landsat": Case(
        "import_lst", lambda w: _import(w.docs / "sr_b4_dn.tif", w.root / "o.tif", PRODUCT=2),
        r"sr_b4_dn.tif: decoded as Landsat ST_B10 .* not land surface temperature"),
    "float-without-unit": Case(
        "import_lst", lambda w: _import(w.docs / "dem.tif", w.root / "o.tif"), r"dem.tif: a float raster without a "
        r"stored unit. Declare its unit .*\(UNIT\): Kelvin or Celsius"),
    # ---- misleading messages, now clear
    "folder-given-as-input": Case(
        "import_lst", lambda w: _import(w.sample / "landsat", w.root / "o.tif"), r"landsat: is a folder"),
    "gapfill-landsat-without-qa": Case(
        "gap_fill", lambda w: ([p.unlink() for p in (w.sample / "landsat").glob("*QA_PIXEL*")],
                               _gapfill(w, w.root / "g"))[1],
        r"6 product\(s\) have no quality file.*LC08.*ST_B10.TIF.*MISSING_QUALITY"),
    "starfm-given-a-second-pair": Case(
        "fuse", lambda w: w.fuse_params(FINE_T3=w.filled(2), COARSE_T3=w.coarse(2)),
        r"STARFM uses 1 reference pair\(s\).*2 given.*ESTARFM"),
    "starfm-zero-coarse-uncertainty": Case(
        "fuse", lambda w: w.fuse_params(COARSE_UNCERTAINTY=0.0), r"COARSE_UNCERTAINTY must be greater than 0 K"),
    # ---- an output file that another stage wrote (an input-like product), a foreign record
    "fuse-output-is-a-gapfilled-raster": Case(
        "fuse", lambda w: w.fuse_params(OUTPUT=w.filled(3)), r"OUTPUT: .*_filled.tif is an output of 'gap_fill', "
        r"not of 'fuse'; it was left alone"),
    "fuse-output-is-the-sample-truth": Case(
        "fuse", lambda w: w.fuse_params(OUTPUT=str(sorted((w.sample / "truth").glob("*.tif"))[2])),
        r"LST_truth_.*\.tif is an output of 'generate_sample_dataset', not of 'fuse'"),
    "fuse-uncertainty-over-a-gapfilled-raster": Case(
        "fuse", lambda w: (shutil.copy(w.filled(4), w.root / "mine_uncertainty.tif"),
                           w.fuse_params(OUTPUT=str(w.root / "mine.tif"), UNCERTAINTY=True))[1],
        r"OUTPUT \(its uncertainty raster\): .*mine_uncertainty.tif is an output of 'gap_fill'"),
    "gapfill-output-holds-a-users-record": Case(
        "gap_fill", lambda w: ((w.root / "g").mkdir(), (w.root / "g" / "lst_fusion_output.json").write_text(
            '{"my": "own notes"}'), _gapfill(w, w.root / "g"))[-1],
        r"OUTPUT_FOLDER: .*g holds lst_fusion_output.json, which LST Fusion did not write; nothing"),
    # ---- swapped inputs: by their tags, and by their own resolution when they carry none
    "fuse-modis-given-as-fine": Case(
        "fuse", lambda w: w.fuse_params(FINE_T1=w.coarse(0), COARSE_T1=w.filled(0)),
        r"FINE_T1: modis_.*\.tif is MODIS \(its tags say so\), given as the fine \(Landsat\) input: swap them"),
    "fuse-landsat-given-as-coarse": Case(
        "fuse", lambda w: w.fuse_params(COARSE_T2=w.filled(2)),
        r"COARSE_T2: .*_filled.tif is Landsat \(its tags say so\), given as the coarse \(MODIS\) input"),
    "fuse-untagged-modis-as-fine": Case(
        "fuse", lambda w: w.fuse_params(FINE_T1=str(w.root / "plain_20200501.tif"), UNIT=1),
        r"FINE_T1: plain_20200501.tif has no fine detail \(it varies as smoothly as an interpolated coarse raster"),
    # ---- numbers, choices and dates that cannot be, named with what is allowed
    "fuse-window-out-of-range": Case(
        "fuse", lambda w: w.fuse_params(WINDOW=1001), r"WINDOW \(Window size \(fine pixels, odd\)\) must be between "
        r"3 and 401; got 1001"),
    "fuse-window-not-whole": Case(
        "fuse", lambda w: w.fuse_params(WINDOW=11.5), r"WINDOW .* must be a whole number between 3 and 401; got 11.5"),
    "fuse-method-out-of-range": Case(
        "fuse", lambda w: w.fuse_params(METHOD=7), r"METHOD \(.*\): 7 is not one of the choices \(0: STARFM"),
    "import-impossible-date": Case(
        "import_lst", lambda w: _import(w.st_b10(), w.root / "o.tif", DATE="2020-02-30"),
        r"DATE: The date 2020-02-30 does not exist: February 2020 has 29 days"),
    "series-impossible-date": Case(
        "fuse_series", lambda w: {"FINE": str(w.landsat), "COARSE": str(w.modis30), "DATES": "2020-06-31",
                                  "OUTPUT_FOLDER": str(w.root / "s")},
        r"DATES: The date 2020-06-31 does not exist: June 2020 has 30 days"),
    "fuse-fine-in-another-crs": Case(
        "fuse", lambda w: w.fuse_params(FINE_T1=str(w.root / "other_crs_20200501.tif")),
        r"FINE_T1: other_crs_20200501.tif is not on the fine grid the other inputs share \(.*EPSG:32630"),
    "series-every-date-paired": Case(
        "fuse_series", lambda w: {"FINE": str(w.landsat), "COARSE": str(w.modis30), "OUTPUT_FOLDER": str(w.root / "s")},
        r"Nothing to predict: 6 MODIS date\(s\), 6 with Landsat.* set INCLUDE_PAIRED to predict those dates"),
    "evaluate-float-reference-without-unit": Case(
        "evaluate", lambda w: {**_evaluate(w, w.root / "e"), "REFERENCE": str(w.docs / "plain_ref"),
                               "COARSE": ""},
        r"plain_.*\.tif: a float raster without a stored unit. Declare its unit .*\(UNIT\)"),
    "gapfill-spatial-all-nan-date": Case(
        "gap_fill", lambda w: {"INPUT_FILES": [w.filled(0), str(w.root / "empty_20200601.tif")], "METHOD": 2,
                               "UNIT": 1, "OUTPUT_FOLDER": str(w.root / "g")},
        r"2020-06-01 \(empty_20200601.tif\) has no valid pixel"),
}


def _prepare_all_nan(ws: Workspace) -> None:
    with rasterio.open(ws.filled(0)) as src:
        profile, shape, tags = src.profile, src.shape, src.tags()
    with rasterio.open(ws.root / "empty_20200601.tif", "w", **profile) as dst:
        dst.write(np.full(shape, np.nan, np.float32), 1)
        dst.update_tags(**{**tags, "ACQUISITION_DATE": "2020-06-01"})


def _prepare_plain_reference(ws: Workspace) -> None:
    """The truth as a user's own float rasters: dated names, no tags, so no stored unit."""
    folder = ws.docs / "plain_ref"
    folder.mkdir()
    for path in sorted((ws.sample / "truth").glob("LST_truth_*.tif")):
        with rasterio.open(path) as src:
            profile, data = src.profile, src.read(1)
        with rasterio.open(folder / path.name.replace("LST_truth", "plain"), "w", **profile) as dst:
            dst.write(data, 1)


def _prepare_other_crs(ws: Workspace) -> None:
    """The first gap-filled Landsat date, labelled with the neighbouring UTM zone (a wrong CRS)."""
    with rasterio.open(ws.filled(0)) as src:
        profile, data, tags = src.profile, src.read(1), src.tags()
    with rasterio.open(ws.root / "other_crs_20200501.tif", "w", **{**profile, "crs": "EPSG:32630"}) as dst:
        dst.write(data, 1)
        dst.update_tags(**tags)


def _prepare_untagged_modis(ws: Workspace) -> None:
    """A user's plain float raster holding resampled MODIS values (no tags), dated in its name."""
    with rasterio.open(ws.coarse(0)) as src:
        profile, data = src.profile, src.read(1)
    with rasterio.open(ws.root / "plain_20200501.tif", "w", **profile) as dst:
        dst.write(data, 1)


@pytest.mark.parametrize("case_id", list(CASES))
def test_refused_run_loses_nothing(case_id, provider, ws):
    case = CASES[case_id]
    if case_id == "gapfill-spatial-all-nan-date":
        _prepare_all_nan(ws)
    if case_id == "fuse-untagged-modis-as-fine":
        _prepare_untagged_modis(ws)
    if case_id == "fuse-fine-in-another-crs":
        _prepare_other_crs(ws)
    if case_id == "evaluate-float-reference-without-unit":
        _prepare_plain_reference(ws)
    params = case.params(ws)  # may itself arrange the workspace (links, removed QA files)
    before = digest(ws.root)
    with pytest.raises(QgsProcessingException) as err:
        run_alg(case.alg, params)
    message = str(err.value)
    assert re.search(case.message, message, re.S), message
    assert "Traceback" not in message
    assert unchanged(before, digest(ws.root)), "the workspace changed"
    assert leftovers(ws.root) == []


# ------------------------------------------------------- runs that must work

def test_rerun_into_own_folder_keeps_the_users_files(provider, ws):
    out = ws.root / "g"
    run_alg("gap_fill", _gapfill(ws, out))
    (out / "my_notes.txt").write_text("field visit 12 May")
    first = sorted(p.name for p in out.iterdir())
    run_alg("gap_fill", _gapfill(ws, out, METHOD=2))
    assert (out / "my_notes.txt").read_text() == "field visit 12 May"
    assert sorted(p.name for p in out.iterdir()) == first
    # A run that now writes fewer dates removes only the files its predecessor listed.
    run_alg("gap_fill", {"INPUT_FILES": [str(p) for p in sorted((ws.sample / "landsat").glob("*ST_B10.TIF"))[:2]],
                         "OUTPUT_FOLDER": str(out)})
    assert len(list(out.glob("*_filled.tif"))) == 2 and (out / "my_notes.txt").exists()
    assert outputs.read_record(out)["algorithm"] == "gap_fill"


def test_user_file_named_like_an_output_is_not_replaced(provider, ws):
    out = ws.root / "g"
    run_alg("gap_fill", {"INPUT_FILES": [str(ws.st_b10(0))], "METHOD": 2, "OUTPUT_FOLDER": str(out)})
    name = ws.st_b10(1).name[:-4] + "_filled.tif"  # what the next run writes for the second date
    (out / name).write_bytes(b"mine")
    before = digest(out)
    with pytest.raises(QgsProcessingException, match=rf"already holds {re.escape(name)}, which LST Fusion did not"):
        run_alg("gap_fill", _gapfill(ws, out))
    assert unchanged(before, digest(out)) and leftovers(ws.root) == []


def test_symlinked_output_folder_is_written_through(provider, ws):
    real = ws.root / "real_out"
    (ws.root / "link_out").symlink_to(real, target_is_directory=True)
    real.mkdir()
    run_alg("gap_fill", _gapfill(ws, ws.root / "link_out"))
    run_alg("gap_fill", _gapfill(ws, ws.root / "link_out"))
    assert (ws.root / "link_out").is_symlink() and len(list(real.glob("*_filled.tif"))) == 6
    assert leftovers(ws.root) == []


def test_missing_qa_can_be_accepted_and_is_reported(provider, ws):
    for p in (ws.sample / "landsat").glob("*QA_PIXEL*"):
        p.unlink()
    feedback = QgsProcessingFeedback()
    warnings: list[str] = []
    feedback.pushWarning = warnings.append
    res = run_alg("gap_fill", _gapfill(ws, ws.root / "g", MISSING_QUALITY=1), feedback)
    import json

    report = json.loads(Path(res["REPORT"]).read_text())
    assert {d["cloud_mask"] for d in report["dates"]} == {"none"}
    assert len([w for w in warnings if "clouds are NOT masked" in w]) == 6


def test_import_without_a_date_warns(provider, ws):
    feedback = QgsProcessingFeedback()
    warnings: list[str] = []
    feedback.pushWarning = warnings.append
    rng = np.random.default_rng(1)
    _user_raster(ws.root / "lst.tif", rng.uniform(290, 310, (30, 30)), "float32")
    res = run_alg("import_lst", _import(ws.root / "lst.tif", ws.root / "o.tif", UNIT=1), feedback)
    assert res["DATE_OUT"] == "" and any("no acquisition date" in w and "DATE" in w for w in warnings)


def test_same_file_twice_is_read_once(provider, ws):
    res = run_alg("gap_fill", _gapfill(ws, ws.root / "g", INPUT_FILES=[str(ws.st_b10(0))]))
    assert res["DATE_COUNT"] == 6


def test_size_guard_sees_the_free_space(provider, ws, monkeypatch):
    usage = shutil.disk_usage(ws.root)
    monkeypatch.setattr(outputs.shutil, "disk_usage", lambda p: usage._replace(free=10_000))
    before = digest(ws.root)
    with pytest.raises(QgsProcessingException, match=r"OUTPUT_FOLDER: the output needs up to .* only 9.8 KiB is free"):
        run_alg("gap_fill", _gapfill(ws, ws.root / "g"))
    assert unchanged(before, digest(ws.root))


def test_stale_temporaries_of_dead_processes_are_removed(ws):
    from backend.io.atomic import _host

    final = ws.root / "fused.tif"
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = ws.root / f".fused.tif.lstf-{_host()}-{dead.pid}-abcdef.part.tif"
    stale.write_bytes(b"x" * 1000)
    live = ws.root / f".fused.tif.lstf-{_host()}-{os.getppid()}-abcdef.part.tif"
    live.write_bytes(b"another run, still going")
    assert outputs.check_raster_output(final, algorithm="fuse") == final.resolve()
    assert not stale.exists() and live.exists()


def test_replacing_an_output_removes_only_its_own_stale_sidecars(ws):
    """GDAL's .aux.xml/.ovr of an output we replace describe the old file and go; a user's stay."""
    from backend.errors import OutputError
    from backend.io.lst_raster import LSTRaster
    from backend.io.writers import write_lst

    raster = LSTRaster(np.full((8, 8), 300.0, np.float32), rasterio.crs.CRS.from_epsg(32631),
                       Affine(30, 0, 600000, 0, -30, 5300000), dt.date(2020, 6, 1))
    ours = ws.root / "ours.tif"
    write_lst(raster, ours, cog=False, algorithm="import_lst")
    for suffix in (".aux.xml", ".ovr"):
        Path(str(ours) + suffix).write_text("statistics of the old file")
    neighbour = ws.docs / "dem.tif.aux.xml"
    neighbour.write_text("the user's statistics")
    write_lst(raster, ours, cog=False, algorithm="import_lst")
    assert not Path(str(ours) + ".aux.xml").exists() and not Path(str(ours) + ".ovr").exists()
    # A raster LST Fusion did not write is refused, and its sidecar stays with it.
    with pytest.raises(OutputError, match="was not written by LST Fusion; it was left alone"):
        write_lst(raster, ws.docs / "dem.tif", cog=False, algorithm="import_lst")
    assert neighbour.read_text() == "the user's statistics"
    assert leftovers(ws.root) == []


# ------------------------------------------------------- real file systems

@pytest.fixture()
def readonly(tmp_path):
    """A folder no run can write into: read-only bind mount as root, permissions otherwise."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    (folder / "keep.txt").write_text("keep")
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode == 0
    mounted = mounted and subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)],
                                         capture_output=True).returncode == 0
    if not mounted:
        subprocess.run(["umount", str(folder)], capture_output=True)
        pytest.skip("cannot make a read-only folder here (root without mount permission)")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


UNWRITABLE = {
    "fuse": lambda w, ro: w.fuse_params(OUTPUT=str(ro / "sub" / "fused.tif")),
    "import_lst": lambda w, ro: _import(w.st_b10(), ro / "lst.tif"),
    "gap_fill": lambda w, ro: _gapfill(w, ro / "g"),
    "resample": lambda w, ro: _resample(w, ro / "r"),
    "build_patches": lambda w, ro: _patches(w, ro / "p"),
    "generate_sample_dataset": lambda w, ro: {"OUTPUT_FOLDER": str(ro / "s"), "WIDTH": 16, "HEIGHT": 16},
    "train": lambda w, ro: {"DATASET": str(w.root / "patches"), "OUTPUT_FOLDER": str(ro / "t"), "EPOCHS": 1},
    "evaluate": lambda w, ro: _evaluate(w, ro / "e"),
}


@pytest.mark.parametrize("alg", list(UNWRITABLE))
def test_unwritable_output_folder(alg, provider, ws, readonly):
    params = UNWRITABLE[alg](ws, readonly)
    before = digest(ws.root)
    with pytest.raises(QgsProcessingException, match=r"no permission to write in .*readonly"):
        run_alg(alg, params)
    assert unchanged(before, digest(ws.root)) and sorted(p.name for p in readonly.iterdir()) == ["keep.txt"]


@pytest.fixture()
def small_disk(tmp_path):
    """A 256 KiB tmpfs (root only), the real thing a full USB stick or quota is."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_small_disk_is_refused_before_writing(provider, ws, small_disk):
    (small_disk / "filler.bin").write_bytes(b"\0" * 240_000)
    with pytest.raises(QgsProcessingException, match=r"the output needs up to .* only .* free on the disk"):
        run_alg("resample", _resample(ws, small_disk / "r"))
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler.bin"]


# ------------------------------------------------- qgis_process: exits, limits, signals

@pytest.fixture(scope="module")
def qgis_env(tmp_path_factory):
    """A throw-away QGIS profile, initialised once so limited runs only write their outputs."""
    env = dict(os.environ)
    env["QGIS_CUSTOM_CONFIG_PATH"] = str(tmp_path_factory.mktemp("qgis_config"))
    env["QT_QPA_PLATFORM"] = "offscreen"
    env.pop("QGIS_PLUGINPATH", None)
    subprocess.run([str(WRAPPER), "list"], env=env, capture_output=True, timeout=300, check=True)
    return env


def _args(alg: str, params: dict) -> list[str]:
    args = [str(WRAPPER), "run", f"lst_fusion:{alg}", "--"]
    for key, value in params.items():
        for v in value if isinstance(value, list) else [value]:
            args.append(f"{key}={v}")
    return args


def _limit_file_size(limit: int) -> Callable[[], None]:
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    return apply


FILE_LIMIT_CASES = {
    "fuse": lambda w: w.fuse_params(),
    "import_lst": lambda w: _import(w.st_b10(), w.root / "imported.tif"),
    "gap_fill": lambda w: _gapfill(w, w.root / "filled"),
    "resample": lambda w: _resample(w, w.root / "resampled"),
    "build_patches": lambda w: _patches(w, w.root / "filled"),
    "generate_sample_dataset": lambda w: {"OUTPUT_FOLDER": str(w.root / "filled"), "WIDTH": 64, "HEIGHT": 64,
                                          "N_DATES": 2},
    "evaluate": lambda w: _evaluate(w, w.root / "filled"),
}


@pytest.mark.slow
@pytest.mark.parametrize("alg", list(FILE_LIMIT_CASES))
def test_write_failure_exits_nonzero_and_keeps_the_previous_output(alg, ws, qgis_env):
    """A file-size limit makes every write past 4 KiB fail, as a full disk does: the run must
    fail with a message naming the output, and the previous good output stay as it was."""
    params = FILE_LIMIT_CASES[alg](ws)
    done = subprocess.run(_args(alg, params), env=qgis_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    before = digest(ws.root)
    run = subprocess.run(_args(alg, params), env=qgis_env, capture_output=True, text=True, timeout=300,
                         preexec_fn=_limit_file_size(4096))
    text = run.stdout + run.stderr
    assert run.returncode != 0, text[-2000:]
    failure = r"(size limit|disk is full|could not write the whole raster)"
    assert re.search(rf"(fused.tif|imported.tif|filled|resampled): .*{failure}", text), text[-2000:]
    assert "Traceback" not in text
    assert unchanged(before, digest(ws.root))
    assert leftovers(ws.root) == []


def _wait_for_temporary(root: Path, proc: subprocess.Popen, timeout: float = 180) -> None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if leftovers(root):
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the run ended before it was interrupted: {out[-1000:]}{err[-1000:]}")
        time.sleep(0.02)
    raise AssertionError("no temporary output appeared")


@pytest.fixture(scope="module")
def large(tmp_path_factory) -> Workspace:
    """A series large enough that a run is still writing when the signal comes."""
    root = tmp_path_factory.mktemp("fault_large")
    spec = SampleSpec(width=600, height=600, n_dates=5, start=dt.date(2020, 5, 1), end=dt.date(2020, 8, 1),
                      cloudiness=0.4, seed=3)
    generate_sample_dataset(root / "sample", spec)
    # Fusion inputs: the Landsat products as given (clouds masked on reading) and MODIS on their grid.
    resample_series([root / "sample" / "modis"], root / "modis30", reference_grid(root / "sample" / "landsat"))
    return Workspace(root)


def _signal_run(ws: Workspace, alg: str, out: Path) -> list[str]:
    if alg == "fuse":
        return _args("fuse", {"METHOD": 0, "WINDOW": 51, "FINE_T1": str(ws.st_b10(0)), "COARSE_T1": ws.coarse(0),
                              "COARSE_T2": ws.coarse(1), "OUTPUT": str(out) + ".tif"})
    return _args("gap_fill", _gapfill(ws, out, MAX_DISTANCE_PX=40))


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("alg", ["gap_fill", "fuse"])
def test_signal_stops_the_run_and_removes_its_temporary(alg, sig, large, qgis_env):
    out = large.root / f"{alg}_{sig.name}"
    before = digest(large.root)
    proc = subprocess.Popen(_signal_run(large, alg, out), env=qgis_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_temporary(large.root, proc)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    assert proc.returncode != 0
    assert f"Stopped by {sig.name}" in stdout + stderr, (stdout + stderr)[-2000:]
    assert unchanged(before, digest(large.root)) and leftovers(large.root) == []
    assert not out.exists() and not Path(str(out) + ".tif").exists()


@pytest.mark.slow
def test_killed_run_leaves_a_temporary_the_next_run_removes(large, qgis_env):
    out = large.root / "killed"
    proc = subprocess.Popen(_args("gap_fill", _gapfill(large, out, MAX_DISTANCE_PX=40)), env=qgis_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for_temporary(large.root, proc)
    proc.kill()
    proc.wait()
    assert leftovers(large.root) and not out.exists()
    done = subprocess.run(_args("gap_fill", _gapfill(large, out, MAX_DISTANCE_PX=40)), env=qgis_env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert leftovers(large.root) == [] and len(list(out.glob("*_filled.tif"))) == 5


def test_gapfilling_filled_rasters_keeps_names_and_flags(provider, ws):
    """Filling a gap-filled series again (e.g. with other settings) must not write *_filled_filled.tif
    nor call observed what the first run filled."""
    out = ws.root / "again"
    files = sorted(str(p) for p in ws.landsat.glob("*_filled.tif"))
    run_alg("gap_fill", {"INPUT_FILES": files, "OUTPUT_FOLDER": str(out)})
    assert sorted(p.name for p in out.glob("*_filled.tif")) == sorted(Path(f).name for f in files)
    for name in (Path(f).name.replace("_filled.tif", "_fillflags.tif") for f in files):
        with rasterio.open(ws.landsat / name) as first, rasterio.open(out / name) as second:
            np.testing.assert_array_equal(second.read(1), first.read(1))


# ------------------------------------------------- records that cannot be forged

def _victims(ws: Workspace) -> Path:
    victims = ws.root / "victims"
    victims.mkdir()
    (victims / "victim.txt").write_text("irreplaceable")
    return victims


def _forge(folder: Path, edit: Callable[[dict], None], sign: bool = False) -> None:
    """Edit the record of ``folder`` as an attacker (or a careless script) would; ``sign`` re-signs it with
    this user's key, as if the key had leaked, to show the path checks hold on their own."""
    import json

    from backend.io import record as rec

    body = json.loads((folder / rec.RECORD).read_text())
    edit(body)
    body.pop("signature", None)
    if sign:
        body["signature"] = rec._signature(body)
    (folder / rec.RECORD).write_text(json.dumps(body))


def _add(name: str, digest: dict | None = None) -> Callable[[dict], None]:
    return lambda body: body["files"].__setitem__(name, digest or {"size": 13, "sha256": "0" * 64})


@pytest.mark.parametrize("sign", [False, True], ids=["unsigned", "signed-with-a-leaked-key"])
@pytest.mark.parametrize("entry", ["../victims/victim.txt", "ABSOLUTE", "sub/../../victims/victim.txt",
                                   "link_to_victims/victim.txt"])
def test_forged_record_naming_files_outside_deletes_nothing(entry, sign, provider, ws):
    victims = _victims(ws)
    out = ws.root / "g"
    run_alg("gap_fill", _gapfill(ws, out, INPUT_FILES=[str(ws.st_b10(0))]))
    (out / "link_to_victims").symlink_to(victims, target_is_directory=True)
    name = str(victims / "victim.txt") if entry == "ABSOLUTE" else entry
    from backend.io.record import file_digest

    _forge(out, _add(name, file_digest(victims / "victim.txt")), sign)
    before = digest(ws.root)
    with pytest.raises(QgsProcessingException) as err:
        run_alg("gap_fill", _gapfill(ws, out, INPUT_FILES=[str(ws.st_b10(1))]))
    message = str(err.value)
    expected = "is not a file inside the folder" if sign else "cannot be verified"
    assert expected in message and "nothing was touched" in message, message
    assert unchanged(before, digest(ws.root)) and leftovers(ws.root) == []
    assert (victims / "victim.txt").read_text() == "irreplaceable"


def test_record_cannot_claim_a_users_file_in_the_folder(provider, ws):
    """A user's file beside our outputs, added to the record with its true checksum, is not ours."""
    from backend.io.record import file_digest

    out = ws.root / "g"
    run_alg("gap_fill", _gapfill(ws, out, INPUT_FILES=[str(ws.st_b10(0))]))
    (out / "my_notes.txt").write_text("field visit 12 May")
    _forge(out, _add("my_notes.txt", file_digest(out / "my_notes.txt")))
    before = digest(ws.root)
    with pytest.raises(QgsProcessingException, match=r"cannot be verified .* nothing was touched"):
        run_alg("gap_fill", _gapfill(ws, out, INPUT_FILES=[str(ws.st_b10(1))]))
    assert unchanged(before, digest(ws.root)) and (out / "my_notes.txt").read_text() == "field visit 12 May"


def test_an_output_the_user_changed_is_not_replaced(provider, ws):
    """Replacing one of our outputs by the user's own file (same name) makes it theirs."""
    out = ws.root / "g"
    run_alg("gap_fill", _gapfill(ws, out))
    mine = sorted(out.glob("*_filled.tif"))[2]
    shutil.copy(ws.docs / "dem.tif", mine)
    before = digest(ws.root)
    with pytest.raises(QgsProcessingException, match=rf"{mine.name} changed since LST Fusion wrote it .*nothing was"):
        run_alg("gap_fill", _gapfill(ws, out, METHOD=2))
    assert unchanged(before, digest(ws.root)) and leftovers(ws.root) == []


def test_a_moved_output_folder_stays_its_own(provider, ws):
    run_alg("gap_fill", _gapfill(ws, ws.root / "g"))
    (ws.root / "g").rename(ws.root / "moved")
    run_alg("gap_fill", _gapfill(ws, ws.root / "moved", METHOD=2))
    assert outputs.read_record(ws.root / "moved")["algorithm"] == "gap_fill"


# --------------------------------------------------------- all-or-nothing commits

def _fail_on_move(monkeypatch, after: int, error: int = 28) -> None:
    """Every move of the commit after the first ``after`` fails with ``error`` (ENOSPC by default)."""
    real = outputs._move
    calls = {"n": 0}

    def move(source: Path, target: Path) -> None:
        calls["n"] += 1
        if calls["n"] > after:
            raise OSError(error, os.strerror(error), str(target))
        real(source, target)

    monkeypatch.setattr(outputs, "_move", move)


@pytest.mark.parametrize("after", [0, 3, 8, 14])
def test_commit_failing_part_way_leaves_the_previous_set_complete(after, provider, ws, monkeypatch):
    out = ws.root / "g"
    run_alg("gap_fill", _gapfill(ws, out))
    (out / "my_notes.txt").write_text("field visit 12 May")
    before = digest(ws.root)
    _fail_on_move(monkeypatch, after)
    with pytest.raises(QgsProcessingException) as err:
        run_alg("gap_fill", _gapfill(ws, out, METHOD=2))
    message = str(err.value)
    assert "disk is full" in message and "Nothing was changed: the previous output" in message, message
    assert unchanged(before, digest(ws.root)), _diff(before, digest(ws.root))
    assert leftovers(ws.root) == []
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    monkeypatch.undo()
    run_alg("gap_fill", _gapfill(ws, out, METHOD=2))  # and the folder is still the run's own


def test_commit_blocked_by_an_immutable_file_names_it(provider, ws):
    out = ws.root / "g"
    run_alg("gap_fill", _gapfill(ws, out))
    locked = sorted(out.glob("*_filled.tif"))[3]
    if subprocess.run(["chattr", "+i", str(locked)], capture_output=True).returncode != 0:
        pytest.skip("this file system (or user) cannot set the immutable attribute")
    try:
        before = digest(ws.root)
        with pytest.raises(QgsProcessingException) as err:
            run_alg("gap_fill", _gapfill(ws, out, METHOD=2))
        message = str(err.value)
        assert f"{locked.name}: is immutable (chattr +i)" in message, message
        assert "Nothing was changed: the previous output" in message
        assert unchanged(before, digest(ws.root)) and leftovers(ws.root) == []
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=True)


def test_fused_raster_and_uncertainty_appear_together(provider, ws, monkeypatch):
    """A failure writing the uncertainty raster (disk full) leaves neither file, and a previous pair intact."""
    from backend.fusion import fuse as fuse_module

    params = ws.fuse_params(UNCERTAINTY=True)
    run_alg("fuse", params)
    before = digest(ws.root)

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fuse_module, "write_uncertainty", full)
    with pytest.raises(QgsProcessingException, match=r"fused.tif: the disk is full"):
        run_alg("fuse", params)
    assert unchanged(before, digest(ws.root)) and leftovers(ws.root) == []
    (ws.root / "fused.tif").unlink()
    (ws.root / "fused_uncertainty.tif").unlink()
    with pytest.raises(QgsProcessingException, match=r"fused.tif: the disk is full"):
        run_alg("fuse", params)
    assert not (ws.root / "fused.tif").exists() and not (ws.root / "fused_uncertainty.tif").exists()


def test_size_check_counts_the_uncertainty_raster(provider, ws, monkeypatch):
    usage = shutil.disk_usage(ws.root)
    need_one = 96 * 96 * 4
    monkeypatch.setattr(outputs.shutil, "disk_usage", lambda p: usage._replace(free=int(need_one * 1.5)))
    before = digest(ws.root)
    with pytest.raises(QgsProcessingException, match=r"OUTPUT: the output needs up to .*\(2 raster\(s\)"):
        run_alg("fuse", ws.fuse_params(UNCERTAINTY=True))
    assert unchanged(before, digest(ws.root))


# --------------------------------------------- a stopped series keeps the earlier dates

def _series(ws: Workspace, out: Path, **extra) -> dict:
    return {"FINE": str(ws.landsat), "COARSE": str(ws.modis30), "METHOD": 0, "WINDOW": 11, "INCLUDE_PAIRED": True,
            "LOAD_OUTPUTS": False, "OUTPUT_FOLDER": str(out), **extra}


def test_sigint_during_a_series_rerun_keeps_every_earlier_date(provider, ws):
    """A real SIGINT after 2 of 6 dates of a rerun: those 2 are new, the 4 others are the earlier run's,
    and the record, fuse_series.json and the stack all describe the same 6 files."""
    import json

    out = ws.root / "series"
    run_alg("fuse_series", _series(ws, out))
    first = digest(out)
    outside = {k: v for k, v in digest(ws.root).items() if not k.startswith("series")}
    dates = sorted(p.name for p in out.glob("lst_*.tif"))
    assert len(dates) == 6
    feedback = QgsProcessingFeedback()
    finished = []
    original = feedback.pushInfo

    def info(text: str) -> None:
        original(text)
        if re.match(r"\d{4}-\d\d-\d\d: lst_", text):
            finished.append(text)
            if len(finished) == 2:
                os.kill(os.getpid(), signal.SIGINT)

    feedback.pushInfo = info
    with pytest.raises(QgsProcessingException) as err:
        run_alg("fuse_series", _series(ws, out, WINDOW=15), feedback)
    message = str(err.value)
    assert "Stopped by SIGINT" in message and "2 of 6 date(s) were finished" in message, message
    assert "The previous run's 4 other date(s) were kept" in message
    after = digest(out)
    assert sorted(p.name for p in out.glob("lst_*.tif")) == dates
    assert sum(after[name] != first[name] for name in dates) == 2  # exactly the two finished dates are new
    report = json.loads((out / "fuse_series.json").read_text())
    assert sorted(d["path"] for d in report["dates"]) == dates and report["complete"] is False
    assert sum(bool(d.get("from_previous_run")) for d in report["dates"]) == 4
    record = outputs.read_record(out)
    assert sorted(n for n in record["files"] if n.startswith("lst_") and n.endswith(".tif")) == dates
    with rasterio.open(out / report["stack"]) as stack:
        assert stack.count == 6 and [stack.descriptions[k] for k in range(6)] == sorted(
            d["target_date"] for d in report["dates"])
    assert leftovers(ws.root) == [] and not [p for p in out.iterdir() if p.is_symlink()]
    assert {k: v for k, v in digest(ws.root).items() if not k.startswith("series")} == outside
    run_alg("fuse_series", _series(ws, out))  # the next complete run takes the folder over again


def _diff(before, after):
    return {k: (before.get(k), after.get(k)) for k in set(before) | set(after) if before.get(k) != after.get(k)}


def test_a_commit_killed_part_way_points_at_its_backup(ws):
    """SIGKILL between moving the earlier files aside and the new record: the journal says where they are."""
    from backend.errors import OutputError
    from backend.io.record import write_record

    out = ws.root / "g"
    out.mkdir()
    write_record(out, "gap_fill", {}, complete=False, extra={"interrupted_commit": ".previous.lstf-x-1-abcdef.part"})
    before = digest(ws.root)
    with pytest.raises(OutputError, match=r"stopped while it replaced its files here; the files it was replacing are "
                                          r"in .*g/\.previous\.lstf-x-1-abcdef\.part"):
        outputs.check_output_folder(out, "gap_fill")
    assert unchanged(before, digest(ws.root))


def test_successful_runs_leave_no_sidecars_beside_their_inputs(provider, ws):
    """Runs that load and style their outputs (statistics computed by GDAL/QGIS) write nothing beside the
    rasters they read: only inside their own outputs."""
    import processing
    from qgis.core import QgsProject

    before = digest(ws.root)
    runs = [
        ("gap_fill", _gapfill(ws, ws.root / "out_g")),
        ("resample", _resample(ws, ws.root / "out_r")),
        ("fuse", ws.fuse_params(OUTPUT=str(ws.root / "out_f" / "fused.tif"), UNCERTAINTY=True)),
        ("fuse_series", {"FINE": str(ws.landsat), "COARSE": str(ws.modis30), "METHOD": 0, "WINDOW": 11,
                         "INCLUDE_PAIRED": True, "OUTPUT_FOLDER": str(ws.root / "out_s")}),
        ("evaluate", _evaluate(ws, ws.root / "out_e")),
        ("import_lst", _import(ws.st_b10(), ws.root / "out_i" / "lst.tif")),
    ]
    for alg, params in runs:
        processing.runAndLoadResults(f"lst_fusion:{alg}", params, feedback=QgsProcessingFeedback())
    QgsProject.instance().removeAllMapLayers()
    after = digest(ws.root)
    added = sorted(k for k in set(after) - set(before) if not k.startswith("out_"))
    assert added == [] and all(after[k] == v for k, v in before.items()), added



def test_a_rerun_removes_the_stale_sidecars_of_the_outputs_it_replaces(provider, ws):
    """QGIS's .aux.xml beside an output describes the old file: it goes with it; a user's file stays."""
    out = ws.root / "g"
    run_alg("gap_fill", _gapfill(ws, out))
    outputs_before = sorted(out.glob("*_filled.tif"))
    for path in outputs_before:
        Path(str(path) + ".aux.xml").write_text("<PAMDataset/>")
    (out / "my_notes.txt.aux.xml").write_text("mine")
    run_alg("gap_fill", {"INPUT_FILES": [str(p) for p in sorted((ws.sample / "landsat").glob("*ST_B10.TIF"))[:2]],
                         "OUTPUT_FOLDER": str(out)})
    assert not list(out.glob("*.tif.aux.xml")) and (out / "my_notes.txt.aux.xml").read_text() == "mine"


def test_evaluate_takes_the_unit_of_float_inputs(provider, ws):
    """The message above points at UNIT: Evaluate has it, and with it the same rasters are scored."""
    _prepare_plain_reference(ws)
    res = run_alg("evaluate", {**_evaluate(ws, ws.root / "e"), "REFERENCE": str(ws.docs / "plain_ref"), "UNIT": 1,
                               "LOAD_OUTPUTS": False})
    assert res["DATE_COUNT"] == 6


def test_evaluating_the_reference_against_itself_warns(provider, ws):
    feedback = QgsProcessingFeedback()
    warnings: list[str] = []
    feedback.pushWarning = warnings.append
    run_alg("evaluate", {"PREDICTIONS_FILES": [ws.filled(1)], "REFERENCE_FILES": [ws.filled(1)],
                         "LOAD_OUTPUTS": False, "OUTPUT_FOLDER": str(ws.root / "e")}, feedback)
    assert any("is the reference" in w and "perfect by construction" in w for w in warnings), warnings
    warnings.clear()
    run_alg("evaluate", {**_evaluate(ws, ws.root / "e2"), "LOAD_OUTPUTS": False}, feedback)
    assert not any("perfect by construction" in w for w in warnings)


def _readme_commands(readme: str) -> list[str]:
    """The commands of every README block that starts with 'cd demo_output', continuation lines joined."""
    commands = []
    for block in re.findall(r"```bash\n(cd demo_output.*?)```", readme, re.S):
        for command in block.replace("\\\n", " ").splitlines()[1:]:
            command = command.split(" #")[0].strip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


@pytest.mark.slow
def test_the_readme_examples_run_as_written_on_the_demo_folders(ws, qgis_env, tmp_path):
    """A folder laid out as `make demo` leaves it (landsat_filled, modis_30m, sample, training,
    fused_season_estarfm), and the README's commands run there as written, through qgis_process."""
    from backend.fusion.params import EstarfmParams
    from backend.fusion.series import fuse_series
    from backend.training.train import TrainConfig, train

    demo = tmp_path / "demo_output"
    demo.mkdir()
    for name, source in (("landsat_filled", ws.landsat), ("modis_30m", ws.modis30), ("sample", ws.sample)):
        shutil.copytree(source, demo / name)
    train(ws.root / "patches", demo / "training", TrainConfig(model="edcstfn", epochs=1, batch_size=4, max_batches=2,
                                                               pretrain_epochs=1))
    fuse_series("estarfm", [demo / "landsat_filled"], [demo / "modis_30m"], demo / "fused_season_estarfm",
                EstarfmParams(window=11), include_paired=True)
    commands = _readme_commands((REPO / "README.md").read_text())
    assert len(commands) >= 3 and all(c.startswith("../scripts/qgis_process run lst_fusion:") for c in commands)
    for command in commands:
        args = [str(WRAPPER), *command.split()[1:]]
        done = subprocess.run(args, cwd=demo, env=qgis_env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, command + "\n" + done.stdout[-1500:] + done.stderr[-1500:]
    assert (demo / "evaluation_sttfn" / "report.html").exists()
    assert len(list((demo / "season_edcstfn_degC").glob("lst_*_onnx_degC.tif"))) == 6


def test_an_immutable_output_file_is_named_as_such(provider, ws):
    params = ws.fuse_params()
    run_alg("fuse", params)
    fused = ws.root / "fused.tif"
    if subprocess.run(["chattr", "+i", str(fused)], capture_output=True).returncode != 0:
        pytest.skip("this file system (or user) cannot set the immutable attribute")
    try:
        before = digest(ws.root)
        with pytest.raises(QgsProcessingException, match=r"fused.tif: is immutable \(chattr \+i\), so it cannot be "
                                                         r"replaced or removed.*Nothing was written there"):
            run_alg("fuse", params)
        assert unchanged(before, digest(ws.root)) and leftovers(ws.root) == []
    finally:
        subprocess.run(["chattr", "-i", str(fused)], check=True)
