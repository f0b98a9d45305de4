#!/usr/bin/env python3
"""`make demo`: the main job end to end through qgis_process, then a styled QGIS project.

Steps (each a Processing algorithm run headless by scripts/qgis_process):
1. generate_sample_dataset — a small Orléans-like MODIS + Landsat series (a cloudy season);
2. import_lst — decode every Landsat ST_B10 and MODIS LST file to Kelvin;
3. gap_fill — fill the clouds of both series;
4. resample — MODIS onto the Landsat 30 m grid;
5. build_patches — triplets and training patches;
6. train — a short CPU training of EDCSTFN, exported to ONNX with its report;
7. fuse — ESTARFM prediction of a cloudy date from the dates before and after it, and the
   same date from the pretrained STTFN shipped in models/shipped/ (ONNX Runtime);
8. fuse_series — every date of the season predicted by the shipped model, by ESTARFM, by the
   season regression (every other pair) and by the EDCSTFN just trained, from the other dates
   (leave-one-out); then the shipped model adapted to the season's earlier dates (ADAPT_MINUTES)
   predicts its last three;
9. evaluate — the four seasons against the simulated truth, beside resampled MODIS and the last
   Landsat, per land-cover class: evaluation/report.html (and report.png when Chromium is installed).
Then it writes demo.qgz with the layers grouped, styled and dated (the Temporal Controller
steps through the season), and overview.png.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WRAPPER = REPO / "scripts" / "qgis_process"


def qgis_process(algorithm: str, **params) -> dict:
    args = [str(WRAPPER), "run", f"lst_fusion:{algorithm}", "--json", "--"]
    for k, v in params.items():  # a list repeats the parameter (multiple inputs)
        args += [f"{k}={x}" for x in v] if isinstance(v, list) else [f"{k}={v}"]
    run = subprocess.run(args, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"qgis_process {algorithm} failed:\n{run.stdout[-3000:]}{run.stderr[-3000:]}")
    out = run.stdout
    return json.loads(out[out.index("{"):])["results"]


def build_project(out: Path, layers: dict[str, list[tuple[str, Path]]], landcover: Path, show: int) -> Path:
    """A .qgz with one group per product, every LST layer styled, and an overview picture.

    Date number ``show`` is the visible one in each group and the one in the overview.
    """
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(REPO))
    import rasterio
    from qgis.core import (
        QgsApplication,
        QgsMapRendererParallelJob,
        QgsMapSettings,
        QgsPalettedRasterRenderer,
        QgsProject,
        QgsRasterLayer,
        QgsReferencedRectangle,
    )
    from qgis.PyQt.QtCore import QSize, Qt
    from qgis.PyQt.QtGui import QColor, QFont, QImage, QPainter

    from backend.io.display_range import display_range
    from backend.preprocess.sample_data import CLASSES
    from lst_fusion_plugin.styling import apply_lst_style, set_date

    app = QgsApplication([], False)
    app.initQgis()
    project = QgsProject.instance()
    root = project.layerTreeRoot()
    first = {}
    for group_name, items in layers.items():
        group = root.addGroup(group_name)
        for i, (name, path) in enumerate(items):
            layer = QgsRasterLayer(str(path), name)
            apply_lst_style(layer)
            with rasterio.open(path) as src:
                date = src.tags().get("ACQUISITION_DATE")
            if date:
                set_date(layer, date)  # the Temporal Controller steps through the season
            project.addMapLayer(layer, False)
            shown = i == (show if len(items) > 1 else 0)
            group.addLayer(layer).setItemVisibilityChecked(shown)
            if shown:
                first[group_name] = layer
    lc = QgsRasterLayer(str(landcover), "Land cover (simulated)")
    colors = ["#2b83ba", "#d7191c", "#1a9641", "#fdae61", "#ffffbf", "#a6611a"]
    lc.setRenderer(QgsPalettedRasterRenderer(lc.dataProvider(), 1, [
        QgsPalettedRasterRenderer.Class(k, QColor(colors[k]), v) for k, v in CLASSES.items()]))
    project.addMapLayer(lc, False)
    root.addLayer(lc).setItemVisibilityChecked(False)
    # Open on the scene, in the Landsat grid's CRS (a project written without a canvas has no view yet).
    project.setCrs(lc.crs())
    project.viewSettings().setDefaultViewExtent(QgsReferencedRectangle(lc.extent(), lc.crs()))
    qgz = out / "demo.qgz"
    project.write(str(qgz))

    # Overview: the chosen date of each group side by side, rendered by QGIS with the styles above.
    panels = [(g, first[g]) for g in first if "decoded)" not in g and "on the Landsat" not in g and "season" not in g]
    shared = display_range([layer.source() for _, layer in panels])  # one colour scale: the panels compare
    for _, layer in panels:
        apply_lst_style(layer, value_range=shared)
    size, pad = 360, 28
    canvas = QImage(len(panels) * size, size + pad, QImage.Format.Format_ARGB32)
    canvas.fill(QColor("white"))
    painter = QPainter(canvas)
    painter.setFont(QFont("Sans", 11))
    extent = next(iter(first.values())).extent()
    for i, (_, layer) in enumerate(panels):
        settings = QgsMapSettings()
        settings.setLayers([layer])
        settings.setDestinationCrs(next(iter(first.values())).crs())
        settings.setExtent(extent)
        settings.setOutputSize(QSize(size, size))
        job = QgsMapRendererParallelJob(settings)
        job.start()
        job.waitForFinished()
        painter.drawImage(i * size, pad, job.renderedImage())
        painter.setPen(QColor("black"))
        painter.drawText(i * size, 0, size, pad, Qt.AlignmentFlag.AlignCenter, layer.name())
    painter.end()
    canvas.save(str(out / "overview.png"))
    app.exitQgis()
    return qgz


def screenshot(html: Path, png: Path, width: int = 1250, height: int = 4200) -> None:
    """A picture of the HTML report with Debian's headless Chromium, when it is installed."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("   (no chromium: report.png not made)")
        return
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size={width},{height}", f"--screenshot={png}", html.as_uri()],
                   capture_output=True, timeout=120)
    print(f"   report picture: {png}" if png.exists() else "   (chromium made no picture)")


Groups = dict[str, list[tuple[str, Path]]]


def make_sample(out: Path, size: int, n_dates: int) -> tuple[Path, dict]:
    sample = out / "sample"
    print(f">> 1/10 lst_fusion:generate_sample_dataset -> {sample}")
    res = qgis_process("generate_sample_dataset", OUTPUT_FOLDER=sample, WIDTH=size, HEIGHT=size,
                       N_DATES=n_dates, START_DATE="2020-04-01", END_DATE="2020-09-30", SEED=42, CLOUDINESS=0.3)
    return sample, json.loads(Path(res["MANIFEST"]).read_text())


def import_all(out: Path, sample: Path, manifest: dict, groups: Groups) -> Path:
    lst = out / "lst"
    lst.mkdir(exist_ok=True)
    print(f">> 2/10 lst_fusion:import_lst for {len(manifest['dates'])} dates x 2 sensors -> {lst}")
    for rec in manifest["dates"]:
        day = rec["date"].replace("-", "")
        for key, sensor, group in (("landsat_st_b10", "landsat", "Landsat LST (decoded, clouds masked)"),
                                   ("modis_lst", "modis", "MODIS LST (decoded)")):
            target = lst / f"{sensor}_{day}.tif"
            r = qgis_process("import_lst", INPUT=sample / rec[key], OUTPUT=target)
            label = "Landsat" if sensor == "landsat" else "MODIS"
            groups[group].append((f"{label} {rec['date']} ({r['VALID_FRACTION']:.0%} valid)", target))
        groups["Truth (simulated, cloud-free)"].append((f"Truth {rec['date']}", sample / rec["truth"]))
    return lst


def gap_fill_both(out: Path, sample: Path, groups: Groups) -> list[Path]:
    """Both series gap-filled; the Landsat files, by date."""
    print(">> 3/10 lst_fusion:gap_fill (Landsat, then MODIS)")
    filled = {}
    for sensor in ("landsat", "modis"):
        r = qgis_process("gap_fill", INPUT=sample, SENSOR=sensor, OUTPUT_FOLDER=out / f"{sensor}_filled")
        filled[sensor] = json.loads(Path(r["REPORT"]).read_text())
        print(f"   {sensor}: {r['FILLED_FRACTION']:.0%} of pixels filled on average")
    for d in filled["landsat"]["dates"]:
        groups["Landsat LST (gap-filled)"].append(
            (f"Landsat {d['date']} gap-filled", out / "landsat_filled" / d["output"]))
    return [out / "landsat_filled" / d["output"] for d in filled["landsat"]["dates"]]


def resample_modis(out: Path, groups: Groups) -> list[Path]:
    """MODIS on the Landsat grid; its files, by date."""
    print(">> 4/10 lst_fusion:resample (MODIS onto the Landsat 30 m grid, bicubic)")
    qgis_process("resample", INPUT=out / "modis_filled", REFERENCE_FOLDER=out / "landsat_filled",
                 OUTPUT_FOLDER=out / "modis_30m")
    report = json.loads((out / "modis_30m" / "resample_report.json").read_text())
    for d in report["dates"]:
        groups["MODIS LST (on the Landsat grid)"].append(
            (f"MODIS {d['date']} at 30 m", out / "modis_30m" / d["output"]))
    return [out / "modis_30m" / d["output"] for d in report["dates"]]


def patch_and_train(out: Path) -> dict:
    print(">> 5/10 lst_fusion:build_patches (95 x 95, stride 20)")
    r = qgis_process("build_patches", FINE=out / "landsat_filled", COARSE=out / "modis_30m",
                     OUTPUT_FOLDER=out / "patches")
    print(f"   {r['TRIPLETS']} triplets: {r['TRAIN_PATCHES']} train, {r['VAL_PATCHES']} validation, "
          f"{r['TEST_PATCHES']} test patches")
    print(">> 6/10 lst_fusion:train (EDCSTFN, a short CPU run: 3 epochs of 10 batches)")
    trained = qgis_process("train", DATASET=out / "patches", MODEL="edcstfn", EPOCHS=3, BATCH_SIZE=8, MAX_BATCHES=10,
                           OUTPUT_FOLDER=out / "training")
    print(f"   best epoch {trained['BEST_EPOCH']}, validation RMSE {trained['VAL_RMSE']:.2f} K")
    return trained


def date_to_show(dates: list[dict]) -> int:
    """The cloudiest inner date that still has most of its pixels: clouds, gap-filling and a fusion with
    references on both sides are visible."""
    cover = [r["landsat_cloud_fraction"] if 0 < i < len(dates) - 1 and r["landsat_cloud_fraction"] < 0.6 else -1
             for i, r in enumerate(dates)]
    return cover.index(max(cover))


def fuse_shown(out: Path, fine: list[Path], coarse: list[Path], dates: list[dict], show: int,
               groups: Groups) -> Path:
    fused = out / f"estarfm_{dates[show]['date'].replace('-', '')}.tif"
    print(f">> 7/10 lst_fusion:fuse ESTARFM for {dates[show]['date']} from {dates[show - 1]['date']} and "
          f"{dates[show + 1]['date']}")
    r = qgis_process("fuse", METHOD="estarfm", FINE_T1=fine[show - 1], COARSE_T1=coarse[show - 1],
                     FINE_T3=fine[show + 1], COARSE_T3=coarse[show + 1], COARSE_T2=coarse[show], OUTPUT=fused)
    groups["Fused LST (ESTARFM)"] = [(f"ESTARFM {r['DATE']}", fused)]
    return fused


def with_shipped_model(out: Path, sample: Path, fine: list[Path], coarse: list[Path], dates: list[dict],
                       show: int, groups: Groups, trained: dict, model: str) -> None:
    """Steps 7 (the shipped model's date), 8 (three seasons) and 9 (their evaluation)."""
    deep = out / f"{model}_{dates[show]['date'].replace('-', '')}.tif"
    print(f"   and with the pretrained {model} (ONNX Runtime) from {dates[show - 1]['date']}")
    r = qgis_process("fuse", METHOD="onnx", SHIPPED_MODEL=model,
                     FINE_T1=fine[show - 1], COARSE_T1=coarse[show - 1], COARSE_T2=coarse[show], OUTPUT=deep)
    groups[f"Fused LST ({model})"] = [(f"{model} {r['DATE']}", deep)]
    season = {"FINE": out / "landsat_filled", "COARSE": out / "modis_30m", "INCLUDE_PAIRED": True,
              "LOAD_OUTPUTS": False}
    print(f">> 8/10 lst_fusion:fuse_series: every date predicted by {model} from the nearest other date")
    r = qgis_process("fuse_series", METHOD="onnx", SHIPPED_MODEL=model, OUTPUT_FOLDER=out / "fused_season",
                     **season)
    report = json.loads(Path(r["REPORT"]).read_text())
    groups[f"Fused season ({model}, dated)"] = [
        (f"{model} {d['target_date']}", out / "fused_season" / d["path"]) for d in report["dates"]]
    print("   and by ESTARFM, every date between two others")
    qgis_process("fuse_series", METHOD="estarfm", OUTPUT_FOLDER=out / "fused_season_estarfm", **season)
    print("   and by the season regression, every date from all the other pairs (the recommended method)")
    qgis_process("fuse_series", METHOD="season", OUTPUT_FOLDER=out / "fused_season_regression", **season)
    print("   and by the EDCSTFN trained in step 6 (briefly: expect little of it)")
    qgis_process("fuse_series", METHOD="onnx", MODEL=trained["ONNX"], OUTPUT_FOLDER=out / "fused_season_edcstfn",
                 **season)
    later = [d["date"] for d in dates[-3:]]
    print(f"   and by {model} adapted for a minute to the earlier dates, predicting {', '.join(later)}")
    r = qgis_process("fuse_series", METHOD="onnx", SHIPPED_MODEL=model, ADAPT_MINUTES=1, DATES=",".join(later),
                     OUTPUT_FOLDER=out / "fused_adapted", **season)
    adaptation = json.loads(Path(r["REPORT"]).read_text())["adaptation"]
    print(f"   adapted on {len(adaptation['dates'])} dates in {adaptation['minutes']:.1f} min: validation RMSE "
          f"{adaptation['base_validation_rmse_k']:.2f} -> {adaptation['validation_rmse_k']:.2f} K "
          f"({out / 'fused_adapted' / adaptation['model']})")
    print(">> 9/10 lst_fusion:evaluate: the seasons against the truth, beside MODIS and the last Landsat")
    r = qgis_process("evaluate", PREDICTIONS=out / "fused_season_estarfm",
                     PREDICTIONS_FILES=[out / "fused_season", out / "fused_season_regression",
                                        out / "fused_season_edcstfn"],
                     REFERENCE=sample / "truth", COARSE=out / "modis_30m", FINE=out / "landsat_filled",
                     LAND_COVER=sample / "truth" / "landcover.tif", OUTPUT_FOLDER=out / "evaluation")
    evaluation = json.loads(Path(r["METRICS_JSON"]).read_text())["summary"]["all"]
    for label, row in evaluation.items():
        print(f"   {label:28s} RMSE {row['rmse']:.2f} K  SSIM {row['ssim']:.3f}  ({row['dates']} dates)")
    screenshot(Path(r["OUTPUT_HTML"]), out / "evaluation" / "report.png")


def shipped_models() -> list[str]:
    sys.path.insert(0, str(REPO))
    from backend.fusion.onnx_model import shipped_models as listed

    return listed()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "demo_output")
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--dates", type=int, default=8)
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    groups: Groups = {
        "Landsat LST (decoded, clouds masked)": [], "Landsat LST (gap-filled)": [], "MODIS LST (decoded)": [],
        "MODIS LST (on the Landsat grid)": [], "Fused LST (ESTARFM)": [], "Truth (simulated, cloud-free)": []}
    sample, manifest = make_sample(out, args.size, args.dates)
    lst = import_all(out, sample, manifest, groups)
    fine = gap_fill_both(out, sample, groups)
    coarse = resample_modis(out, groups)
    trained = patch_and_train(out)
    dates = manifest["dates"]
    show = date_to_show(dates)
    fused = fuse_shown(out, fine, coarse, dates, show, groups)
    shipped = shipped_models()
    if shipped:
        with_shipped_model(out, sample, fine, coarse, dates, show, groups, trained, shipped[0])
    else:
        print(">> 8/10 skipped: no pretrained model in models/shipped/ (scripts/train_shipped_model.py makes one)")
    print(">> 10/10 writing the QGIS project")
    qgz = build_project(out, groups, sample / "truth" / "landcover.tif", show=show)
    print("\nDemo outputs:")
    print(f"  sample dataset : {sample}")
    print(f"  decoded LST    : {lst}")
    print(f"  gap-filled     : {out / 'landsat_filled'}, {out / 'modis_filled'}")
    print(f"  MODIS at 30 m  : {out / 'modis_30m'}")
    print(f"  patch dataset  : {out / 'patches'}")
    print(f"  EDCSTFN model  : {trained['ONNX']}  (report: {trained['REPORT']})")
    print(f"  fused (ESTARFM): {fused}")
    if shipped:
        print(f"  fused season   : {out / 'fused_season'}  ({shipped[0]}, one file per date + VRT stack)")
        print(f"  evaluation     : {out / 'evaluation' / 'report.html'}")
    print(f"  QGIS project   : {qgz}   (open it with: qgis {qgz})")
    print(f"  overview       : {out / 'overview.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
