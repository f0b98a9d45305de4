"""Running the work of a series here, or as tasks on a Dask cluster.

Without a scheduler address the dates run one after another in this process (each date's
tiles use every core through numba or ONNX Runtime). With an address the caller submits
tasks to a ``dask.distributed`` cluster (for a series: one per date and band of tiles, and
one per date that assembles them); workers write into the run's staging folder, which must
therefore be on storage every worker sees (a shared or network file system). A task whose
worker dies is run again elsewhere (Dask reschedules it; ``retries`` covers failures inside
a task), so a lost worker costs time, not dates; a cluster left with no worker at all stops
the run after ``LST_FUSION_DASK_WORKER_TIMEOUT`` seconds (60), finished dates kept. An
address where no scheduler answers, or where another service answers, is an error within
``LST_FUSION_DASK_TIMEOUT`` seconds (10) + 5. The workers get LST Fusion's code from the
client (backend/fusion/worker_code.py) and are checked before any task runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import Cancelled, ClusterLost, InputError
from ..io.atomic import stop_acknowledged
from ..progress import Progress, ensure

CONNECT_TIMEOUT_ENV = "LST_FUSION_DASK_TIMEOUT"
WORKER_TIMEOUT_ENV = "LST_FUSION_DASK_WORKER_TIMEOUT"
START_HINT = ("Start one ('dask scheduler', then 'dask worker ADDRESS' on each machine; LST Fusion sends its own "
              "code to the workers) or leave SCHEDULER empty to run on this computer.")


def _seconds(env: str, default: float) -> float:
    try:
        return max(0.1, float(os.environ.get(env, default)))
    except ValueError:
        return default


def _probe(address: str, timeout: float) -> None:
    """Before Dask's client touches a tcp:// address: a Dask scheduler greets a new connection with a
    handshake frame (its first 8 bytes count the frames). Silence, or other bytes (a web server, another
    service), would leave Dask's client hanging or allocating exabytes, so they end here instead."""
    import socket
    import struct
    from urllib.parse import urlsplit

    if not address.startswith("tcp://"):
        return
    try:
        parts = urlsplit(address)
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or not port:
        raise InputError(f"SCHEDULER: {address} is not a scheduler address; write it as tcp://HOST:PORT.")
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            header = b""
            while len(header) < 8:
                chunk = conn.recv(8 - len(header))
                if not chunk:
                    break
                header += chunk
    except TimeoutError:
        header = None
    except OSError as exc:
        raise InputError(f"SCHEDULER: no Dask scheduler answers at {address} within {timeout:g} s ({exc}). "
                         f"{START_HINT}") from exc
    if header is None or len(header) < 8 or not 0 < struct.unpack("<Q", header)[0] < 100_000:
        raise InputError(f"SCHEDULER: {address} accepts connections but does not answer as a Dask scheduler does "
                         f"within {timeout:g} s (a web server or another service on that port, or a stalled "
                         f"scheduler). Check the address and port. {START_HINT}")


def _connect(address: str, timeout: float):
    """``Client(address)`` under a hard deadline: Dask's own timeout covers the TCP connection, not a
    listener that accepts and then never answers, nor a service that answers in another protocol."""
    from distributed import Client

    outcome: dict[str, Any] = {}

    def connect() -> None:
        try:
            outcome["client"] = Client(address, timeout=f"{timeout}s")
        except BaseException as exc:  # noqa: BLE001 - reported below, whatever it is
            outcome["error"] = exc

    thread = threading.Thread(target=connect, name="lst-fusion-dask-connect", daemon=True)
    thread.start()
    thread.join(timeout + 5)
    if thread.is_alive():
        raise InputError(f"SCHEDULER: {address} accepts connections but does not answer as a Dask scheduler "
                         f"within {timeout + 5:g} s (another service on that port, or a stalled scheduler). "
                         f"Check the address and port. {START_HINT}")
    error = outcome.get("error")
    if isinstance(error, (OSError, TimeoutError)):
        raise InputError(f"SCHEDULER: no Dask scheduler answers at {address} within {timeout:g} s ({error}). "
                         f"{START_HINT}") from error
    if isinstance(error, ValueError) and "address" in str(error).lower():
        raise InputError(f"SCHEDULER: {address} is not a scheduler address ({error}); write it as "
                         "tcp://HOST:PORT.") from error
    if error is not None:
        raise InputError(f"SCHEDULER: something answers at {address}, but not as a Dask scheduler does (a web "
                         f"server or another service on that port?): {type(error).__name__}. Check the address "
                         f"and port. {START_HINT}") from error
    return outcome["client"]


@contextlib.contextmanager
def client_for(address: str, timeout: float | None = None) -> Iterator[Any]:
    """A Dask client connected to ``address``; a clear error when no scheduler answers there."""
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise InputError("SCHEDULER: running on a Dask cluster needs the Python package 'distributed' "
                         "(pip install 'dask[distributed]').") from exc
    timeout = timeout if timeout is not None else _seconds(CONNECT_TIMEOUT_ENV, 10.0)
    _probe(address, timeout)
    client = _connect(address, timeout)
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close(timeout=5)


def prepare_workers(client: Any, address: str, modules: tuple[str, ...], progress: Progress | None = None,
                    timeout: float | None = None) -> int:
    """Send LST Fusion's code to every worker of ``client`` (and to those that join later) and check that
    each can import ``modules``; returns the number of workers. One clear error otherwise."""
    import cloudpickle

    from .. import __version__
    from . import worker_code

    progress = ensure(progress)
    timeout = timeout if timeout is not None else _seconds(WORKER_TIMEOUT_ENV, 60.0)
    deadline = time.monotonic() + timeout
    while not client.nthreads():
        if time.monotonic() > deadline:
            raise InputError(f"SCHEDULER: no Dask worker is connected to the scheduler at {address} (waited "
                             f"{timeout:g} s). Start one with 'dask worker {address}'.")
        time.sleep(0.5)
    archive = worker_code.code_archive(Path(__file__).resolve().parents[2])
    cloudpickle.register_pickle_by_value(worker_code)  # the workers may not have our code to unpickle it
    try:
        ship = (archive, __version__, hashlib.sha256(archive).hexdigest())
        with warnings.catch_warnings():  # a second run on the same cluster replaces the plugins: expected
            warnings.filterwarnings("ignore", message=".*already contains a plugin")
            client.register_plugin(worker_code.ShipCodeToScheduler(*ship), name=worker_code.ShipCodeToScheduler.name)
            client.register_plugin(worker_code.ShipCode(*ship), name=worker_code.ShipCode.name)
        reports = client.run(worker_code.probe, modules)
    finally:
        cloudpickle.unregister_pickle_by_value(worker_code)
    broken = {w: r for w, r in reports.items() if r["missing"] or r["version"] != __version__}
    if broken:
        worker, report = next(iter(broken.items()))
        what = (", ".join(report["missing"]) if report["missing"]
                else f"LST Fusion {report['version']} instead of {__version__}")
        raise InputError(f"SCHEDULER: {len(broken)} of {len(reports)} Dask worker(s) at {address} cannot run LST "
                         f"Fusion: {worker} (Python {report['python']}) lacks {what}. Install the plugin's "
                         "Python packages in the workers' Python (requirements/fusion.txt) and restart them.")
    progress.info(f"LST Fusion's code sent to {len(reports)} Dask worker(s)")
    return len(reports)


def run_locally(
    function: Callable[..., Any],
    arguments: Sequence[tuple],
    labels: Sequence[str],
    progress: Progress | None = None,
) -> tuple[list[Any], Cancelled | None]:
    """``function(*args, progress=...)`` for each entry, in this process; returns the results finished (in
    order) and the cancellation that stopped the run early, if any."""
    progress = ensure(progress)
    results: list[Any] = []
    try:
        for k, args in enumerate(arguments):
            progress.check()
            results.append(function(*args, progress=progress.sub(k / len(arguments), (k + 1) / len(arguments))))
            progress.info(labels[k])
    except Cancelled as exc:
        stop_acknowledged()
        return results, exc
    return results, None


def collect(futures: Sequence[Any], labels: Sequence[str], progress: Progress | None = None,
            on_done: Callable[[int], None] | None = None, worker_timeout: float | None = None,
            address: str = "") -> tuple[list[Any], Cancelled | None]:
    """Wait for Dask futures as they finish; returns the results finished (in the order of ``futures``)
    and what stopped the wait, if anything: a cancellation, or :class:`ClusterLost` when no worker has
    been connected for ``worker_timeout`` seconds (the futures left are cancelled)."""
    from distributed import wait

    progress = ensure(progress)
    timeout = worker_timeout if worker_timeout is not None else _seconds(WORKER_TIMEOUT_ENV, 60.0)
    index = {f.key: k for k, f in enumerate(futures)}
    results: dict[int, Any] = {}
    pending = set(futures)
    alone_since: float | None = None
    try:
        while pending:
            progress.check()
            try:
                finished, pending = wait(pending, timeout=min(1.0, timeout), return_when="FIRST_COMPLETED")
            except TimeoutError:  # nothing finished in that second
                finished = set()
            for future in finished:
                k = index[future.key]
                results[k] = future.result()
                if on_done is not None:
                    on_done(k)
                progress.info(labels[k])
                progress.update(len(results) / len(futures))
            if pending and not finished:
                alone_since = _check_workers(futures[0].client, alone_since, timeout, address)
    except Cancelled as exc:
        stop_acknowledged()
        for future in futures:
            future.cancel()
        return [results[k] for k in sorted(results)], exc
    return [results[k] for k in sorted(results)], None


def _check_workers(client: Any, alone_since: float | None, timeout: float, address: str) -> float | None:
    """Raise :class:`ClusterLost` once the cluster has had no live worker for ``timeout`` seconds.

    A worker counts while its heartbeat is younger than ``timeout``: a machine that vanished without
    closing its connection stays listed by the scheduler for minutes (its worker TTL)."""
    def heartbeat_ages(dask_scheduler) -> list[float]:  # runs on the scheduler (pickled by value)
        import time as clock

        return [clock.time() - worker.last_seen for worker in dask_scheduler.workers.values()]

    try:
        ages = client.run_on_scheduler(heartbeat_ages)
    except Exception as exc:  # noqa: BLE001 - the scheduler itself went away
        raise ClusterLost(f"The Dask scheduler at {address} stopped answering ({type(exc).__name__}).") from exc
    if any(age < timeout for age in ages):
        return None
    now = time.monotonic()
    if alone_since is None:
        return now
    if now - alone_since > timeout:
        raise ClusterLost(f"No Dask worker has been connected to the scheduler at {address} for {timeout:g} s "
                          f"(the last one stopped); start one with 'dask worker {address}' and run again.")
    return alone_since
