"""Running the work of a series here, or as tasks on a Dask cluster.

Without a scheduler address the dates run one after another in this process (each date's
tiles use every core through numba or ONNX Runtime). With an address the caller submits
tasks to a ``dask.distributed`` cluster (for a series: one per date and band of tiles, and
one per date that assembles them); workers write into the run's staging folder, which must
therefore be on storage every worker sees (a shared or network file system). A task whose
worker dies is run again elsewhere (Dask reschedules it; ``retries`` covers failures inside
a task), so a lost worker costs time, not dates. An address where no scheduler answers is
an error within ``timeout``.
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
        return results, exc
    return results, None


def collect(futures: Sequence[Any], labels: Sequence[str], progress: Progress | None = None,
            on_done: Callable[[int], None] | None = None) -> tuple[list[Any], Cancelled | None]:
    """Wait for Dask futures as they finish; returns the results finished (in the order of ``futures``)
    and the cancellation that stopped the wait, if any (the futures left are cancelled)."""
    from distributed import as_completed

    progress = ensure(progress)
    index = {f.key: k for k, f in enumerate(futures)}
    results: dict[int, Any] = {}
    try:
        for done, future in enumerate(as_completed(futures), start=1):
            k = index[future.key]
            results[k] = future.result()
            if on_done is not None:
                on_done(k)
            progress.info(labels[k])
            progress.update(done / len(futures))
    except Cancelled as exc:
        for future in futures:
            future.cancel()
        return [results[k] for k in sorted(results)], exc
    return [results[k] for k in sorted(results)], None
