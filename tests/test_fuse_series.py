"""Fusing a season: choice of reference pairs, equality with single-date fusion, stack, cancel, QGIS."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from qgis.core import QgsProcessingFeedback, QgsProject

from backend.errors import Cancelled, InputError
from backend.fusion.fuse import fuse
from backend.fusion.params import StarfmParams
from backend.fusion.series import fuse_series, plan_series
from backend.io.outputs import read_record
from backend.io.readers import read_lst
from backend.io.series import SeriesItem
from backend.preprocess.patches import Pair
from backend.progress import Progress


def _item(day: int, sensor: str) -> SeriesItem:
    return SeriesItem(f"{sensor}_{day}.tif", dt.date(2020, 6, day), sensor, sensor, None)


def test_nearest_pairs_are_chosen():
    pairs = [Pair(dt.date(2020, 6, d), _item(d, "landsat"), _item(d, "modis")) for d in (1, 4)]
    coarse = [_item(d, "modis") for d in range(1, 6)]
    tasks, skipped = plan_series(pairs, coarse, 1)
    assert [(t.target.date.day, [p.date.day for p in t.pairs]) for t in tasks] == [(2, [1]), (3, [4]), (5, [4])]
    tasks, skipped = plan_series(pairs, coarse, 2)
    assert [(t.target.date.day, [p.date.day for p in t.pairs]) for t in tasks] == [(2, [1, 4]), (3, [1, 4])]
    assert skipped == [(dt.date(2020, 6, 5), "no reference pair after it")]
    tasks, _ = plan_series(pairs, coarse, 1, include_paired=True)
    assert [(t.target.date.day, [p.date.day for p in t.pairs]) for t in tasks] == \
        [(1, [4]), (2, [1]), (3, [4]), (4, [1]), (5, [4])]
    tasks, _ = plan_series(pairs, coarse, 1, dates=[dt.date(2020, 6, 3)], reference_dates=[dt.date(2020, 6, 1)])
    assert [(t.target.date.day, [p.date.day for p in t.pairs]) for t in tasks] == [(3, [1])]
    with pytest.raises(InputError, match="DATES: no MODIS raster for 2020-06-09"):
        plan_series(pairs, coarse, 1, dates=[dt.date(2020, 6, 9)])
    with pytest.raises(InputError, match="REFERENCE_DATES: 2020-06-02 have no Landsat"):
        plan_series(pairs, coarse, 1, reference_dates=[dt.date(2020, 6, 2)])
    with pytest.raises(InputError, match="uses 2 reference pair"):
        plan_series(pairs, coarse, 2, reference_dates=[dt.date(2020, 6, 1)])


@pytest.fixture(scope="module")
def season(tiny_patches) -> tuple[list[str], list[str]]:
    """Landsat on 3 of the 6 dates (the others are MODIS-only), MODIS on all 6, on one grid."""
    root = tiny_patches.parent
    fine = sorted(str(p) for p in (root / "landsat").glob("*_filled.tif"))
    coarse = sorted(str(p) for p in (root / "modis30").glob("*.tif"))
    return [fine[0], fine[2], fine[5]], coarse


def test_series_equals_single_date_fusion(season, tmp_path):
    fine, coarse = season
    params = StarfmParams(window=11)
    result = fuse_series("starfm", fine, coarse, tmp_path / "out", params)
    assert [r.target_date for r in result.outputs] == [str(read_lst(c).date) for c in (coarse[1], coarse[3],
                                                                                           coarse[4])]
    # 2nd date: nearest pair is the 1st or the 3rd date, whichever is closer.
    for r in result.outputs:
        ref = next(f for f in fine if str(read_lst(f).date) == r.reference_dates[0])
        ref_coarse = coarse[[str(read_lst(c).date) for c in coarse].index(r.reference_dates[0])]
        target = next(c for c in coarse if str(read_lst(c).date) == r.target_date)
        single = fuse("starfm", [(ref, ref_coarse)], target, tmp_path / f"single_{r.target_date}.tif", params)
        np.testing.assert_array_equal(read_lst(r.path).data, read_lst(single.path).data)
    with rasterio.open(result.stack) as stack:
        assert stack.count == 3
        assert list(stack.descriptions) == [r.target_date for r in result.outputs]
        np.testing.assert_array_equal(stack.read(2), read_lst(result.outputs[1].path).data)
    report = json.loads(result.report.read_text())
    assert report["complete"] and len(report["dates"]) == 3
    assert read_record(tmp_path / "out")["algorithm"] == "fuse_series"


def test_cancel_keeps_the_finished_dates(season, tmp_path):
    fine, coarse = season
    state = {"dates": 0}

    def message(text: str) -> None:
        state["dates"] += "lst_" in text  # the line a finished date logs

    progress = Progress(on_message=message, is_cancelled=lambda: state["dates"] >= 1)
    with pytest.raises(Cancelled, match=r"1 of 3 date\(s\) were finished and kept"):
        fuse_series("starfm", fine, coarse, tmp_path / "out", StarfmParams(window=11), progress=progress)
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len([n for n in names if n.endswith(".tif")]) == 1 and "lst_stack_starfm.vrt" in names
    assert not json.loads((tmp_path / "out" / "fuse_series.json").read_text())["complete"]
    assert not [p for p in tmp_path.rglob("*") if ".lstf-" in p.name]


def test_nothing_to_predict(season, tmp_path):
    fine, coarse = season
    with pytest.raises(InputError, match="Nothing to predict"):
        fuse_series("estarfm", fine, [coarse[0], coarse[2], coarse[5]], tmp_path / "out")
    with pytest.raises(InputError, match="swap them"):
        fuse_series("starfm", coarse, fine, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_algorithm_loads_dated_layers(provider, season, tmp_path):
    import processing
    from qgis.core import QgsDateTimeRange

    fine, coarse = season
    project = QgsProject.instance()
    project.removeAllMapLayers()
    res = processing.runAndLoadResults("lst_fusion:fuse_series", {
        "FINE_FILES": fine, "COARSE_FILES": coarse, "METHOD": 1, "WINDOW": 11,
        "OUTPUT_FOLDER": str(tmp_path / "season")}, feedback=QgsProcessingFeedback())
    assert res["DATE_COUNT"] == 3  # ESTARFM: every MODIS-only date lies between two pairs
    layers = sorted(project.mapLayers().values(), key=lambda lyr: lyr.name())
    assert [lyr.name().split()[0] for lyr in layers] == ["LST"] * 3
    for layer in layers:
        temporal = layer.temporalProperties()
        assert temporal.isActive() and layer.renderer().type() == "singlebandpseudocolor"
        day = layer.name().split()[1]
        assert isinstance(temporal.fixedTemporalRange(), QgsDateTimeRange)
        assert temporal.fixedTemporalRange().begin().date().toString("yyyy-MM-dd") == day
    assert Path(res["STACK"]).exists()
    project.removeAllMapLayers()


# ------------------------------------------------------------------ Dask

@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as local:
        yield local


def _arrays(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: read_lst(p).data for p in sorted(folder.glob("lst_*.tif"))}


@pytest.mark.slow
def test_dask_cluster_gives_the_in_process_result(season, cluster, tmp_path):
    fine, coarse = season
    params = StarfmParams(window=11)
    here = fuse_series("starfm", fine, coarse, tmp_path / "here", params)
    there = fuse_series("starfm", fine, coarse, tmp_path / "there", params, scheduler=cluster.scheduler_address)
    a, b = _arrays(here.folder), _arrays(there.folder)
    assert list(a) == list(b) and len(a) == 3
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert not [p for p in tmp_path.rglob("*") if ".lstf-" in p.name]


@pytest.mark.slow
def test_lost_worker_still_gives_every_date(season, cluster, tmp_path):
    fine, coarse = season
    params = StarfmParams(window=11)
    here = _arrays(fuse_series("starfm", fine, coarse, tmp_path / "here", params).folder)
    killed = []

    def kill_a_worker(text: str) -> None:
        if "lst_" in text and not killed:
            nanny = next(iter(cluster.workers.values()))
            nanny.process.process.kill()  # the machine goes away mid-series; its nanny restarts it
            killed.append(True)

    result = fuse_series("starfm", fine, coarse, tmp_path / "there", params, scheduler=cluster.scheduler_address,
                         progress=Progress(on_message=kill_a_worker))
    assert killed and len(result.outputs) == 3
    there = _arrays(result.folder)
    for name in here:
        np.testing.assert_array_equal(here[name], there[name])


def test_unreachable_scheduler_is_a_clear_error(season, tmp_path):
    import time

    pytest.importorskip("distributed")
    fine, coarse = season
    start = time.monotonic()
    with pytest.raises(InputError, match=r"SCHEDULER: no Dask scheduler answers at tcp://127.0.0.1:9 within"):
        fuse_series("starfm", fine, coarse, tmp_path / "out", StarfmParams(window=11), scheduler="tcp://127.0.0.1:9")
    assert time.monotonic() - start < 60
    assert not (tmp_path / "out").exists() and not list(tmp_path.iterdir())


def test_graphical_model_extends_the_chain_to_fusion(provider, tmp_path):
    import processing
    from qgis.core import QgsProcessingModelAlgorithm

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(Path(__file__).resolve().parents[1] / "examples" / "lst_chain_fusion.model3"))
    res = processing.run(model, {"WIDTH": 96, "HEIGHT": 96, "N_DATES": 4, "START_DATE": "2020-06-01",
                                 "END_DATE": "2020-08-05", "PATCH_SIZE": 48, "STRIDE": 24,
                                 "patches:PATCHES": str(tmp_path / "p"), "fuse:FUSED": str(tmp_path / "fused")},
                         feedback=QgsProcessingFeedback())
    assert res["fuse:FUSED"] == str(tmp_path / "fused")
    fused = sorted((tmp_path / "fused").glob("lst_*_estarfm.tif"))
    assert len(fused) == 2  # ESTARFM, leave-one-out: the dates between two others
    assert all(np.isfinite(read_lst(f).data).mean() > 0.95 for f in fused)


# ------------------------------------------- Dask faults, against servers started here on 127.0.0.1

def _listener(answer: bytes | None, greeting: bytes = b""):
    """A TCP server on 127.0.0.1 that accepts and then never answers (None), answers ``answer`` to whatever
    it receives (a web server), or greets each connection with ``greeting`` (an SSH server's banner);
    returns (address, stop)."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    stop = threading.Event()
    held = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            held.append(conn)
            if greeting:
                conn.sendall(greeting)
            if answer is not None:
                conn.settimeout(2)
                with __import__("contextlib").suppress(OSError):
                    conn.recv(65536)
                    conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def close() -> None:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        server.close()

    return f"tcp://127.0.0.1:{server.getsockname()[1]}", close


@pytest.mark.parametrize("answer, greeting", [
    (None, b""), (b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n", b""), (None, b"SSH-2.0-OpenSSH_9.2\r\n")],
    ids=["never-answers", "web-server", "ssh-banner"])
def test_a_scheduler_address_that_is_not_dask_ends_with_a_message(answer, greeting, season, tmp_path, monkeypatch):
    import time

    pytest.importorskip("distributed")
    monkeypatch.setenv("LST_FUSION_DASK_TIMEOUT", "2")
    address, close = _listener(answer, greeting)
    fine, coarse = season
    try:
        start = time.monotonic()
        with pytest.raises(InputError, match=r"accepts connections but does not answer as a Dask scheduler does "
                                             r"within 2 s \(a web server or another service") as err:
            fuse_series("starfm", fine, coarse, tmp_path / "out", StarfmParams(window=11), scheduler=address)
        assert address in str(err.value) and time.monotonic() - start < 20
    finally:
        close()
    assert not list(tmp_path.iterdir())


def _dask(tmp_path: Path, *args: str, env: dict | None = None):
    import os
    import subprocess
    import sys

    # No LST Fusion on the path; the folders that only provide packages (an installer's target) stay.
    repo = Path(__file__).resolve().parents[1]
    kept = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
            if p and not Path(p).resolve().is_relative_to(repo) and not (Path(p) / "backend").is_dir()]
    env = dict(env or {})
    first = [env.pop("PYTHONPATH")] if "PYTHONPATH" in env else []  # the test's own folder goes first
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if first or kept:
        clean["PYTHONPATH"] = os.pathsep.join([*first, *kept])
    return subprocess.Popen([sys.executable, "-m", *args], cwd=tmp_path, env={**clean, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture()
def scheduler(tmp_path):
    """A scheduler started as the docs say, in a folder without LST Fusion: (address, start_worker)."""
    import time

    pytest.importorskip("distributed")
    file = tmp_path / "scheduler.json"
    procs = [_dask(tmp_path, "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                   "--no-dashboard", "--scheduler-file", str(file))]
    start = time.monotonic()
    while not file.exists() and time.monotonic() - start < 60:
        time.sleep(0.2)
    address = json.loads(file.read_text())["address"]

    def worker(*extra: str, env: dict | None = None):
        proc = _dask(tmp_path, "distributed.cli.dask_worker", address, "--nthreads", "1", "--no-dashboard",
                     *extra, env=env)
        procs.append(proc)
        return proc

    yield address, worker
    for proc in procs:
        proc.kill()
        proc.wait()


def _wait_for_workers(address: str, n: int) -> None:
    from distributed import Client

    with Client(address, timeout="20s") as client:
        client.wait_for_workers(n, timeout=60)


@pytest.mark.slow
def test_workers_without_the_code_get_it_from_the_client(season, scheduler, tmp_path):
    """'dask scheduler' + 'dask worker ADDRESS' in a folder where 'backend' cannot be imported."""
    from distributed import Client

    address, worker = scheduler
    worker()
    _wait_for_workers(address, 1)
    with Client(address) as client:
        lacking = client.run(lambda: __import__("importlib").util.find_spec("backend") is None)
        assert lacking and all(lacking.values()), lacking
    fine, coarse = season
    params = StarfmParams(window=11)
    here = _arrays(fuse_series("starfm", fine, coarse, tmp_path / "here", params).folder)
    there = _arrays(fuse_series("starfm", fine, coarse, tmp_path / "there", params, scheduler=address).folder)
    assert list(here) == list(there) and len(here) == 3
    for name in here:
        np.testing.assert_array_equal(here[name], there[name])


@pytest.mark.slow
def test_workers_that_cannot_run_it_give_one_message(season, scheduler, tmp_path):
    address, worker = scheduler
    blocked = tmp_path / "no_numba"
    (blocked / "numba").mkdir(parents=True)
    (blocked / "numba" / "__init__.py").write_text("raise ImportError('numba is not installed here')\n")
    worker(env={"PYTHONPATH": str(blocked)})
    _wait_for_workers(address, 1)
    fine, coarse = season
    with pytest.raises(InputError, match=r"SCHEDULER: 1 of 1 Dask worker\(s\) at tcp://127.0.0.1:\d+ cannot run LST "
                                         r"Fusion: .* lacks backend.fusion.starfm \(ImportError: numba is not "):
        fuse_series("starfm", fine, coarse, tmp_path / "out", StarfmParams(window=11), scheduler=address)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_the_only_worker_killed_ends_the_run_with_a_message(season, scheduler, tmp_path, monkeypatch):
    import time

    from backend.progress import Progress

    monkeypatch.setenv("LST_FUSION_DASK_WORKER_TIMEOUT", "3")
    address, worker = scheduler
    proc = worker("--no-nanny")
    _wait_for_workers(address, 1)
    fine, coarse = season

    def kill_after_the_first_date(text: str) -> None:
        if text.startswith("2020-") and proc.poll() is None:
            proc.kill()

    start = time.monotonic()
    with pytest.raises(Cancelled, match=r"No Dask worker has been connected to the scheduler at tcp://127.0.0.1:\d+ "
                                        r"for 3 s .* 1 of 3 date\(s\) were finished and kept"):
        fuse_series("starfm", fine, coarse, tmp_path / "out", StarfmParams(window=11), scheduler=address,
                    progress=Progress(on_message=kill_after_the_first_date))
    assert time.monotonic() - start < 60
    assert len(list((tmp_path / "out").glob("lst_*.tif"))) == 1
    assert not [p for p in tmp_path.rglob("*") if ".lstf-" in p.name]
