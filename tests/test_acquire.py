"""Download from a STAC archive, against a STAC API the tests serve on 127.0.0.1 (tests/stac_server.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.warp import transform_bounds
from rasterio.windows import from_bounds

sys.path.insert(0, str(Path(__file__).parent))
import acquire_archive as archive  # noqa: E402
from stac_server import StacServer  # noqa: E402

from backend.acquire import stac  # noqa: E402
from backend.acquire.download import MANIFEST, download_lst  # noqa: E402
from backend.acquire.fetch import HttpOptions  # noqa: E402
from backend.errors import Cancelled, InputError  # noqa: E402
from backend.io.readers import read_lst  # noqa: E402
from backend.io.record import verified_record  # noqa: E402
from backend.io.series import load_series  # noqa: E402
from backend.progress import Progress  # noqa: E402

pytestmark = pytest.mark.skipif(not archive.LANDSAT_REAL.parent.is_dir(), reason=(
    "needs the real test data in ../shared/data (see README: Real test data)"))

SEASON = {"start": "2013-04-01", "end": "2013-06-30"}
FAST = HttpOptions(timeout=5, retries=2, backoff=0.05)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stac_assets")
    return folder, archive.build_assets(folder)


@pytest.fixture
def server(assets):
    folder, grids = assets
    with StacServer(folder) as srv:
        archive.publish(srv, grids)
        source = stac.register(stac.StacSource(
            "test_local", srv.url, archive.LANDSAT_COLLECTION,
            {"MOD11A1": archive.MODIS_COLLECTION, "MYD11A1": archive.MODIS_COLLECTION}))
        srv.source = source
        yield srv
        stac.SOURCES.pop("test_local", None)


def _download(out, srv, bbox=None, **kw):
    kw = {**SEASON, "source": "test_local", **kw}
    options = kw.pop("options", FAST)
    return download_lst(out, bbox or archive.area_wgs84(), options=options, **kw)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
            and p.name != "lst_fusion_output.json"}


def test_search_keeps_clear_dates_pairs_them_and_says_why_others_were_dropped(server, tmp_path):
    result = _download(tmp_path / "dl", server)
    manifest = json.loads(result.manifest.read_text())
    table = {row["date"]: row for row in manifest["pairs"]}
    assert result.pairs == ["2013-05-05", "2013-05-21"]
    assert {d: r["kind"] for d, r in table.items()} == {
        "2013-04-19": "dropped", "2013-05-05": "same-day pair", "2013-05-13": "MODIS only",
        "2013-05-21": "same-day pair", "2013-06-06": "MODIS only"}
    assert "2013-06-22" not in table  # 95 % scene cloud cover: not searched for (MAX_CLOUD_COVER 80)
    assert table["2013-05-05"]["landsat_valid"] == 1.0 and table["2013-05-05"]["modis_valid"] == 1.0
    dropped = {(d["date"], d["sensor"]): d["reason"] for d in result.dropped}
    assert set(dropped) == {("2013-04-19", "landsat"), ("2013-04-19", "modis"), ("2013-06-06", "landsat")}
    assert "after QA_PIXEL (below 80%)" in dropped[("2013-06-06", "landsat")]
    assert "after QC (below 90%)" in dropped[("2013-04-19", "modis")]
    assert all(".A" in p.name and p.name.startswith("MOD11A1") for p in result.modis)  # Aqua's item left out
    # The folder is what Import, Gap-fill and the series stages read, decoded with the items' scale and offset.
    landsat = load_series([str(p) for p in result.landsat], sensor="landsat")
    modis = load_series([str(p) for p in result.modis], sensor="modis")
    assert [str(i.date) for i in landsat] == ["2013-05-05", "2013-05-21"] and len(modis) == 4
    lst = read_lst(result.landsat[0])
    with rasterio.open(result.landsat[0]) as src:
        dn = src.read(1).astype(np.float64)
    np.testing.assert_allclose(lst.data, (dn * archive.SCALE + archive.OFFSET).astype(np.float32), rtol=1e-6)
    assert not list(result.folder.rglob("*.aux.xml"))


def _local_window(path: Path, written: Path) -> np.ndarray:
    with rasterio.open(written) as out, rasterio.open(path) as src:
        assert out.crs == src.crs
        window = from_bounds(*out.bounds, transform=src.transform).round_offsets().round_lengths()
        return src.read(1, window=window, boundless=True, fill_value=0)


def test_only_the_areas_bytes_are_read_and_files_equal_a_local_windowed_read(server, assets, tmp_path):
    folder, _ = assets
    result = _download(tmp_path / "dl", server)
    touched = {name for name in server.bytes_served if name.endswith((".tif",))}
    served = sum(server.bytes_served.values())
    sizes = sum((folder / name).stat().st_size for name in touched)
    assert served < 0.25 * sizes, (served, sizes)
    by_date = {p.name.split("_")[3]: p for p in result.landsat}
    with rasterio.open(by_date["20130505"]) as src:
        written, qa_written = src.read(1), None
    np.testing.assert_array_equal(written, _local_window(folder / "clear_ST_B10.tif", by_date["20130505"]))
    qa_file = Path(str(by_date["20130505"]).replace("ST_B10", "QA_PIXEL"))
    with rasterio.open(qa_file) as src:
        qa_written = src.read(1)
    np.testing.assert_array_equal(qa_written, _local_window(folder / "clear_QA_PIXEL.tif", by_date["20130505"]))
    modis = next(p for p in result.modis if ".A2013133." in p.name)
    with rasterio.open(modis) as src:
        np.testing.assert_array_equal(src.read(1), _local_window(folder / "MOD_h11_20130513_LST_Day_1km.tif", modis))


def test_same_day_rows_of_a_path_are_mosaicked(server, assets, tmp_path):
    folder, grids = assets
    result = _download(tmp_path / "dl", server, sensors="landsat")
    mosaic = next(p for p in result.landsat if "_20130521_" in p.name)
    truth = np.load(folder / "mosaic_truth.npy")
    crs, transform, _ = grids["landsat"]
    with rasterio.open(mosaic) as src:
        window = from_bounds(*src.bounds, transform=transform).round_offsets().round_lengths()
        data = src.read(1)
        assert src.tags()["STAC_ITEMS"] == "LC08_L2SP_017036_20130521_02_T1,LC08_L2SP_017037_20130521_02_T1"
    rows = slice(window.row_off, window.row_off + window.height)
    cols = slice(window.col_off, window.col_off + window.width)
    assert window.row_off < 250 and window.row_off + window.height > 300  # the area needs both rows
    np.testing.assert_array_equal(data, truth[rows, cols])


def test_an_area_across_two_modis_tiles_is_mosaicked(server, assets, tmp_path):
    folder, grids = assets
    bbox = transform_bounds(grids["h11"][0], "EPSG:4326", *archive.EDGE_SINU)
    result = _download(tmp_path / "dl", server, bbox=bbox, sensors="modis")
    day = next(p for p in result.modis if ".A2013125." in p.name)
    assert ".h11v05h12v05." in day.name
    with rasterio.open(day) as src:
        data, out_bounds = src.read(1), src.bounds
    edge = archive.MODIS_LEFT + 12 * archive.TILE * archive.MODIS_PIXEL
    assert out_bounds.left < edge < out_bounds.right
    left = _local_window(folder / "MOD_h11_20130505_LST_Day_1km.tif", day)
    right = _local_window(folder / "MOD_h12_20130505_LST_Day_1km.tif", day)
    np.testing.assert_array_equal(data, np.where(left > 0, left, right))
    assert (left > 0).any() and (right > 0).any() and (data > 0).all()


def test_a_rerun_skips_what_is_complete_and_a_cancelled_run_keeps_only_complete_dates(server, tmp_path):
    reference = _files(_download(tmp_path / "whole", server).folder)
    server.reset_counts()
    finished = []
    progress = Progress(on_message=finished.append, is_cancelled=lambda: any("written" in m for m in finished))
    with pytest.raises(Cancelled, match="run again into the same folder"):
        _download(tmp_path / "dl", server, progress=progress, parallel=1)
    out = tmp_path / "dl"
    record = verified_record(out)
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["complete"] is False and manifest["dates"]
    assert set(record["files"]) == set(_files(out))  # every file there is complete and recorded
    first = _files(out)
    done = {(e["date"], e["sensor"]) for e in manifest["dates"]}
    server.reset_counts()
    result = _download(out, server)
    again = _files(result.folder)
    assert set(again) == set(reference) and all(again[n] == reference[n] for n in reference if n != MANIFEST)
    assert all(again[n] == first[n] for n in first if n != MANIFEST)  # kept, not rewritten
    assert not [name for name in server.bytes_served if (_date_of(name), _sensor_of(name)) in done]
    assert json.loads(again[MANIFEST])["complete"] is True
    server.reset_counts()
    _download(out, server)  # complete: nothing but the search and one header is fetched again
    assert set(server.bytes_served) <= {"real_ST_B10.tif"}, dict(server.bytes_served)


ASSET_DATES = {"real": "2013-04-19", "clear": "2013-05-05", "row036": "2013-05-21", "row037": "2013-05-21",
               "cloudy": "2013-06-06"}


def _date_of(asset: str) -> str:
    if asset.startswith("MOD_h"):
        day = asset.split("_")[2]
        return f"{day[:4]}-{day[4:6]}-{day[6:]}"
    return "2013-04-19" if asset.startswith("MOD_real") else ASSET_DATES[asset.split("_")[0]]


def _sensor_of(asset: str) -> str:
    return "modis" if asset.startswith("MOD") else "landsat"


def test_a_download_killed_mid_run_leaves_nothing_and_a_rerun_completes(server, tmp_path):
    reference = _files(_download(tmp_path / "whole", server).folder)
    for name in ("cloudy_ST_B10.tif", "MOD_h11_20130606_LST_Day_1km.tif"):
        server.faults[name] = ["stall"] * 20
    server.stall_s = 30
    script = (f"import sys; sys.path.insert(0, {str(Path.cwd())!r})\n"
              "from backend.acquire.download import download_lst\n"
              f"download_lst({str(tmp_path / 'dl')!r}, {archive.area_wgs84()!r}, start='2013-04-01', "
              f"end='2013-06-30', source_url={server.url!r}, landsat_collection='landsat-c2-l2', "
              "modis_collection='modis-11A1-061', timeout=60)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parents[1])
    deadline = time.time() + 60
    while time.time() < deadline and not any(n.startswith("cloudy") for n in server.requests):
        time.sleep(0.2)
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    out = tmp_path / "dl"
    assert not out.exists() or not [p for p in out.rglob("*.TIF")]
    server.faults.clear()
    result = _download(out, server)
    again = _files(result.folder)
    assert set(again) == set(reference)
    assert all(again[n] == reference[n] for n in reference if n != MANIFEST)
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_expired_signature_is_signed_again_and_server_errors_are_retried(server, tmp_path):
    server.token = "fresh"
    tokens, forgotten = ["stale"], []

    def sign(href):
        return f"{href}?token={tokens[-1]}"

    def forget():
        forgotten.append(True)
        tokens.append("fresh")

    stac.register(replace(server.source, name="test_signed", sign=sign, forget_signatures=forget))
    server.faults["clear_ST_B10.tif"] = ["500", "503"]
    try:
        result = _download(tmp_path / "dl", server, source="test_signed", sensors="landsat")
    finally:
        stac.SOURCES.pop("test_signed", None)
    assert forgotten and result.pairs == [] and len(result.landsat) == 2
    assert server.requests.count("clear_ST_B10.tif") >= 3


def test_a_stalled_connection_times_out_with_a_message_naming_the_item(server, tmp_path):
    server.faults["clear_ST_B10.tif"] = ["stall"] * 10
    server.stall_s = 3
    with pytest.raises(stac.NetworkError, match=r"LC08_L2SP_017036_20130505_02_T1.*timeout"):
        _download(tmp_path / "dl", server, sensors="landsat", options=HttpOptions(timeout=1, retries=1, backoff=0.05))
    assert not (tmp_path / "dl").exists() or not list((tmp_path / "dl").rglob("*.TIF"))


@pytest.mark.parametrize(("change", "message"), [
    ({"landsat_collection": "landsat-c9"}, "has no collection 'landsat-c9'"),
    ({"start": "2001-01-01", "end": "2001-02-01"}, "No landsat or modis scene over the area"),
    ({"max_area_km2": 100.0}, "over MAX_AREA_KM2"),
    ({"end": "2013-03-01"}, r"END \(2013-03-01\) is before START"),
])
def test_bad_requests_are_refused_clearly(server, tmp_path, change, message):
    with pytest.raises(InputError, match=message):
        _download(tmp_path / "dl", server, **change)
    assert not (tmp_path / "dl").exists()


def test_rate_limits_and_no_network_say_what_to_do(server, tmp_path):
    server.search_status = 429
    with pytest.raises(stac.NetworkError, match="rate limit"):
        _download(tmp_path / "dl", server)
    server.search_status = None
    with pytest.raises(stac.NetworkError, match="cannot be reached"):
        _download(tmp_path / "dl", server, source_url="http://127.0.0.1:9/stac")


def _extent_text(bbox_utm) -> str:
    """A typed extent in another CRS than the archive's, as the toolbox and qgis_process take it."""
    west, south, east, north = bbox_utm
    return f"{west},{east},{south},{north} [EPSG:32617]"


def _processing_parameters(server, out) -> dict:
    return {"EXTENT": _extent_text(archive.AREA_UTM), "START": "2013-04-01", "END": "2013-06-30",
            "SOURCE_URL": server.url, "LANDSAT_COLLECTION": archive.LANDSAT_COLLECTION,
            "MODIS_COLLECTION": archive.MODIS_COLLECTION, "OUTPUT_FOLDER": str(out)}


def test_download_through_processing_run(provider, server, tmp_path):
    import processing
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    res = processing.run("lst_fusion:download_lst", _processing_parameters(server, tmp_path / "dl"),
                         feedback=QgsProcessingFeedback())
    assert res["PAIRS"] == "2013-05-05,2013-05-21" and res["LANDSAT_COUNT"] == 2 and res["MODIS_COUNT"] == 4
    assert Path(res["MANIFEST"]).is_file() and Path(res["LANDSAT_FOLDER"]).is_dir()
    algorithm = provider.algorithm("download_lst")
    assert algorithm.group() == provider.algorithm("import_lst").group()
    assert algorithm.parameterDefinition("SOURCE").usesStaticStrings()
    with pytest.raises(QgsProcessingException, match="START and END"):
        processing.run("lst_fusion:download_lst", {**_processing_parameters(server, tmp_path / "x"), "START": ""},
                       feedback=QgsProcessingFeedback())


@pytest.mark.slow
def test_download_through_qgis_process(server, tmp_path):
    env = {**os.environ, "QGIS_CUSTOM_CONFIG_PATH": str(tmp_path / "profile"), "QT_QPA_PLATFORM": "offscreen"}
    args = [f"{k}={v}" for k, v in _processing_parameters(server, tmp_path / "dl").items()]
    run = subprocess.run([str(Path(__file__).parents[1] / "scripts" / "qgis_process"), "run",
                          "lst_fusion:download_lst", "--json", "--", *args], env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    results = json.loads(run.stdout[run.stdout.index("{"):])["results"]
    assert results["PAIRS"] == "2013-05-05,2013-05-21"
    first = sorted(p.name for p in (tmp_path / "dl" / "modis").iterdir())[0]
    assert first == "MOD11A1.A2013125.h11v05.061_LST_Day_1km.tif"


def test_the_download_to_season_model_runs_on_what_was_downloaded(provider, server, tmp_path):
    """examples/lst_download_to_season.model3: download → gap-fill both → resample → fuse time series."""
    import processing
    from qgis.core import QgsProcessingFeedback, QgsProcessingModelAlgorithm

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(Path(__file__).resolve().parents[1] / "examples" / "lst_download_to_season.model3"))
    res = processing.run(model, {"EXTENT": _extent_text(archive.AREA_UTM), "START": "2013-04-01",
                                 "END": "2013-06-30", "SOURCE_URL": server.url,
                                 "download:downloaded": str(tmp_path / "dl"), "fuse:fused": str(tmp_path / "fused")},
                         feedback=QgsProcessingFeedback())
    assert res["fuse:fused"] == str(tmp_path / "fused")
    fused = sorted(p.name for p in (tmp_path / "fused").glob("lst_*_estarfm.tif"))
    assert fused == ["lst_20130513_estarfm.tif"]  # the MODIS-only day between the two same-day pairs
    lst = read_lst(tmp_path / "fused" / fused[0])
    assert np.isfinite(lst.data).mean() > 0.95 and 280 < float(np.nanmean(lst.data)) < 320


def test_scale_and_offset_come_from_the_items_metadata(server, tmp_path):
    """An archive whose items state another scale and offset is decoded with those, not the usual constants."""
    for items in server.items.values():
        for item in items:
            for asset in ("lwir11", "LST_Day_1km"):
                if asset in item["assets"]:
                    band = item["assets"][asset]["raster:bands"][0]
                    band.update({"scale": 0.0034, "offset": 150.0} if asset == "lwir11" else {"scale": 0.019})
    result = _download(tmp_path / "dl", server)
    for path, scale, offset in ((result.landsat[0], 0.0034, 150.0), (result.modis[0], 0.019, 0.0)):
        with rasterio.open(path) as src:
            dn = src.read(1).astype(np.float64)
        np.testing.assert_allclose(read_lst(path).data, (dn * scale + offset).astype(np.float32), rtol=1e-6)


def test_items_are_read_by_their_own_asset_keys_and_bands():
    """MOD21A1's single LST_1KM/QC layers, an LST band found by its eo:bands common name, Landsat 7 left out."""
    from backend.acquire.stac import _landsat_scene, _modis_scene

    band = {"raster:bands": [{"scale": 0.02, "nodata": 0}]}
    mod21 = {"id": "MOD21A1D.A2022152.h18v04.061.2022153", "properties": {"start_datetime": "2022-06-01T00:00:00Z",
             "modis:horizontal-tile": 18, "modis:vertical-tile": 4},
             "assets": {"LST_1KM": {"href": "a.tif", **band}, "QC": {"href": "q.tif"}}}
    assert _modis_scene(mod21, "MOD21A1", "LST_Night_1km") is None  # the day item, not the night one
    scene = _modis_scene(mod21, "MOD21A1", "LST_Day_1km")
    assert (scene.data_href, scene.quality_href, scene.tile, str(scene.date)) == ("a.tif", "q.tif", "h18v04",
                                                                                   "2022-06-01")
    assert _modis_scene(mod21, "MOD11A1", "LST_Day_1km") is None  # another product of the collection
    landsat = {"id": "LC09_L2SP_200027_20220601_02_T1",
               "properties": {"datetime": "2022-06-01T10:40:00Z", "platform": "landsat-9", "landsat:wrs_path": "200",
                              "landsat:wrs_row": "27", "eo:cloud_cover": 3.0},
               "assets": {"thermal": {"href": "st.tif", "eo:bands": [{"common_name": "lwir11"}],
                                      "raster:bands": [{"scale": 0.00341802, "offset": 149.0}]},
                          "qa_pixel": {"href": "qa.tif"}}}
    scene = _landsat_scene(landsat)
    assert (scene.product, scene.tile, scene.data_href, scene.scale) == ("LC09", "200027", "st.tif", 0.00341802)
    assert _landsat_scene({**landsat, "properties": {**landsat["properties"], "platform": "landsat-7"}}) is None
