"""Running the dates of a series here, or as tasks on a Dask cluster.

Without a scheduler address the dates run one after another in this process (each date's
tiles use every core through numba or ONNX Runtime). With an address they are submitted
to a ``dask.distributed`` cluster, one task per date: each worker writes its date's file
atomically into the run's staging folder, which must therefore be on storage every worker
sees (a shared or network file system). A task whose worker dies is run again elsewhere
(Dask reschedules it; ``retries`` covers failures inside a task), so a lost worker costs
time, not dates. An address where no scheduler answers is an error within ``timeout``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..errors import Cancelled, InputError
from ..progress import Progress, ensure


@contextlib.contextmanager
def client_for(address: str, timeout: float = 10.0) -> Iterator[Any]:
    """A Dask client connected to ``address``; a clear error when nothing answers there."""
    try:
        from distributed import Client
    except ImportError as exc:
        raise InputError("SCHEDULER: running on a Dask cluster needs the Python package 'distributed' "
                         "(pip install 'dask[distributed]').") from exc
    try:
        client = Client(address, timeout=f"{timeout}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"SCHEDULER: no Dask scheduler answers at {address} within {timeout:g} s ({exc}). "
                         "Start one ('dask scheduler', then 'dask worker ADDRESS' on each machine) or leave "
                         "SCHEDULER empty to run on this computer.") from exc
    try:
        yield client
    finally:
        client.close()


def run_tasks(
    function: Callable[..., Any],
    arguments: Sequence[tuple],
    labels: Sequence[str],
    scheduler: str | None = None,
    retries: int = 2,
    progress: Progress | None = None,
) -> tuple[list[Any], Cancelled | None]:
    """``function(*args)`` for every entry of ``arguments``; returns the results finished, in order of
    ``arguments``, and the cancellation that stopped the run early, if any."""
    progress = ensure(progress)
    results: dict[int, Any] = {}
    stopped: Cancelled | None = None
    if not scheduler:
        try:
            for k, args in enumerate(arguments):
                progress.check()
                results[k] = function(*args, progress=progress.sub(k / len(arguments), (k + 1) / len(arguments)))
                progress.info(labels[k])
        except Cancelled as exc:
            stopped = exc
        return [results[k] for k in sorted(results)], stopped
    from distributed import as_completed

    with client_for(scheduler) as client:
        progress.info(f"Running {len(arguments)} task(s) on the Dask cluster at {scheduler} "
                      f"({len(client.scheduler_info()['workers'])} worker(s))")
        futures = [client.submit(function, *args, retries=retries, pure=False, key=f"lst-fusion-{label}-{k}")
                   for k, (args, label) in enumerate(zip(arguments, labels))]
        index = {f.key: k for k, f in enumerate(futures)}
        try:
            for done, future in enumerate(as_completed(futures), start=1):
                results[index[future.key]] = future.result()
                progress.info(labels[index[future.key]])
                progress.update(done / len(futures))
        except Cancelled as exc:
            stopped = exc
            client.cancel(futures)
    return [results[k] for k in sorted(results)], stopped
