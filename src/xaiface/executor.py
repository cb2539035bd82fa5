"""Where a data-set run computes: in this process, or on a Dask distributed cluster.

Every data-set run (the batch face stage's detection, Patch-LFW, the factor studies, ``eval lfw``,
the soft-biometric runs) hands its per-item work to one :class:`Executor`:

* ``local`` (:class:`LocalExecutor`): in this process, one item after the other;
* ``dask`` (:class:`DaskExecutor`): tasks on a `Dask distributed <https://distributed.dask.org>`_
  cluster, either an existing one (``scheduler="tcp://host:8786"``, started with the
  ``dask scheduler`` / ``dask worker`` commands) or, when only ``workers=N`` is given, a
  ``LocalCluster`` of ``N`` worker processes bound to 127.0.0.1 with no dashboard (unless
  asked): nothing listens beyond loopback.

The contract is two generators: :meth:`Executor.map` (results in task order) and
:meth:`Executor.as_completed` (``(task number, result)`` as results arrive, so a driver stores
each one at once). Tasks are module-level functions of picklable arguments; the driver keeps the
store (SQLite) and writes every result itself, so the store is the single source of truth and a
worker needs neither the store nor a shared file system. A worker process keeps what is costly to
build (a model, an explainer, a detector) in :func:`worker_state`, built on first use and reused
by every later task of the same configuration.

Faults: a killed worker's tasks are run again on another worker by Dask (its
``distributed.scheduler.allowed-failures``, default 3, bounds the retries of one task); a lost
scheduler ends the run with :class:`~xaiface.errors.ExecutorError` (one line), and since the
driver stored every result that had arrived, running the same command again computes only what
is missing.

Security: Dask's protocol unpickles the messages of its scheduler and workers, so a cluster must
be one you trust (your own machines on a private network, or TLS, see Dask's security docs); the
default cluster never leaves loopback.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from .errors import ConfigError, ExecutorError

EXECUTORS = ("local", "dask")
"""The executor kinds of ``--executor``."""

_STATE: dict[str, Any] = {}
_SETUP_DONE: set[str] = set()


def state_key(*parts: Any) -> str:
    """A stable key of JSON-able ``parts`` (a configuration), for :func:`worker_state`."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def worker_state(key: str, build: Callable[[], Any]) -> Any:
    """This process's object for ``key``, built by ``build()`` on first use and kept.

    A worker process (or this process, for the local executor) builds its model, explainer or
    detector once per configuration; later tasks of the same configuration reuse it.
    """
    if key not in _STATE:
        _STATE[key] = build()
    return _STATE[key]


def forget_worker_state(key: str) -> None:
    """Drop this process's object for ``key`` (a driver's own, once its run is over)."""
    _STATE.pop(key, None)


def _configure_process(threads: int | None, setup: Callable[..., None] | None, setup_args: tuple[Any, ...]) -> None:
    """Once per process: the thread counts of torch and OpenCV, and the run's ``setup``."""
    tag = state_key("threads", threads)
    if threads is not None and tag not in _SETUP_DONE:
        import torch

        if torch.get_num_threads() != int(threads):
            torch.set_num_threads(int(threads))
        try:
            import cv2

            cv2.setNumThreads(int(threads))
        except ImportError:  # pragma: no cover - opencv is a dependency
            pass
        _SETUP_DONE.add(tag)
    if setup is not None:
        stag = state_key("setup", f"{setup.__module__}.{setup.__qualname__}", setup_args)
        if stag not in _SETUP_DONE:
            setup(*setup_args)
            _SETUP_DONE.add(stag)


def _run_chunk(fn: Callable[[Any], Any], items: Sequence[Any], threads: int | None,
               setup: Callable[..., None] | None, setup_args: tuple[Any, ...]) -> list[Any]:
    """The task every executor runs: configure the process once, then ``fn`` on each item."""
    _configure_process(threads, setup, setup_args)
    return [fn(it) for it in items]


def _chunks(tasks: Iterable[Any], size: int) -> Iterator[list[Any]]:
    buf: list[Any] = []
    for t in tasks:
        buf.append(t)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


class Executor:
    """The contract of an executor (see the module docstring).

    Args:
        threads: torch / OpenCV threads of each process that runs tasks (``None``: leave them).
        setup, setup_args: a module-level function run once in each such process before its first
            task (e.g. registering plug-ins).
    """

    kind = "base"

    def __init__(self, threads: int | None = 1, setup: Callable[..., None] | None = None, setup_args: Sequence[Any] = ()):
        self.threads = None if threads is None else int(threads)
        self.setup = setup
        self.setup_args = tuple(setup_args)

    @property
    def n_workers(self) -> int:
        """Processes that run tasks (1 for the local executor)."""
        return 1

    def as_completed(self, fn: Callable[[Any], Any], tasks: Iterable[Any], chunksize: int = 1) -> Iterator[tuple[int, Any]]:
        """``(i, fn(tasks[i]))`` for every task, in the order results arrive (``fn`` module-level)."""
        raise NotImplementedError

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[Any], chunksize: int = 1) -> Iterator[Any]:
        """``fn(task)`` for every task, in task order (results are held back until their turn)."""
        pending: dict[int, Any] = {}
        nxt = 0
        for i, r in self.as_completed(fn, tasks, chunksize=chunksize):
            pending[i] = r
            while nxt in pending:
                yield pending.pop(nxt)
                nxt += 1

    def describe(self) -> str:
        return self.kind

    def close(self) -> None:
        """Release the workers (the local executor holds none)."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class LocalExecutor(Executor):
    """Every task in this process, in order (``--executor local``, the default)."""

    kind = "local"

    def as_completed(self, fn: Callable[[Any], Any], tasks: Iterable[Any], chunksize: int = 1) -> Iterator[tuple[int, Any]]:
        _configure_process(self.threads, self.setup, self.setup_args)
        for i, t in enumerate(tasks):
            yield i, fn(t)


def _one_line(e: BaseException, limit: int = 160) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:limit]}{'...' if len(text) > limit else ''}"


def _scheduler_lost(address: str, e: BaseException) -> ExecutorError:
    return ExecutorError(f"lost the Dask scheduler at {address} ({_one_line(e)}); every result that had "
                         "arrived is stored: run the same command again to compute only what is missing")


WORKER_CONFIG: dict[str, Any] = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
}
"""Dask settings of the local cluster's workers: glibc's own malloc trimming (Dask's nannies set
``MALLOC_TRIM_THRESHOLD_=65536``, which also fixes glibc's mmap threshold, so every large tensor
is mapped and unmapped afresh) and no statistical profiler sampling the task thread. For
``dask worker`` on other machines the same: ``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False``
and ``--no-nanny`` (one command per worker process), as the README's recipe does."""


class DaskExecutor(Executor):
    """Tasks on a Dask distributed cluster.

    Args:
        scheduler: address of a running scheduler (``tcp://host:8786``); ``None``: start a
            ``LocalCluster`` of ``workers`` processes on 127.0.0.1.
        workers: processes of the local cluster (default 2; ignored with ``scheduler``).
        threads: threads per task process (default 1; the local cluster's workers run one task at
            a time each, ``threads_per_worker=1``).
        dashboard: serve the local cluster's dashboard on 127.0.0.1 (a free port; default off).
        window: tasks in flight per worker (default 2: one running, one queued, so a worker never
            waits for the driver).
        setup, setup_args: see :class:`Executor`.
    Raises:
        ConfigError: ``distributed`` is not installed. ExecutorError: the scheduler cannot be reached.
    """

    kind = "dask"

    def __init__(self, scheduler: str | None = None, workers: int | None = None, threads: int | None = 1,
                 dashboard: bool = False, window: int = 2, setup: Callable[..., None] | None = None,
                 setup_args: Sequence[Any] = (), connect_timeout: float = 20.0):
        super().__init__(threads, setup, setup_args)
        try:
            from distributed import Client, LocalCluster
        except ImportError as e:  # pragma: no cover - a dependency
            raise ConfigError("the dask executor needs the 'distributed' package (pip install distributed)") from e
        self.window = max(1, int(window))
        self._cluster = None
        # a lost scheduler is reported once, as ExecutorError; not as the client's reconnect tracebacks
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
        if scheduler is None:
            n = 2 if workers is None else int(workers)
            if n < 1:
                raise ConfigError(f"--workers must be at least 1 for the dask executor, got {n}")
            import dask

            os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)  # left behind by an earlier cluster's nannies
            with dask.config.set(WORKER_CONFIG):
                self._cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                             dashboard_address="127.0.0.1:0" if dashboard else None,
                                             silence_logs=logging.ERROR)
            self.address = self._cluster.scheduler_address
            self.client = Client(self._cluster, set_as_default=False)
        else:
            self.address = str(scheduler)
            try:
                self.client = Client(self.address, timeout=connect_timeout, set_as_default=False)
            except (OSError, TimeoutError) as e:
                raise ExecutorError(f"cannot reach the Dask scheduler at {self.address} ({_one_line(e)})") from e

    @property
    def n_workers(self) -> int:
        try:
            return max(1, len(self.client.scheduler_info(n_workers=-1)["workers"]))
        except Exception:  # noqa: BLE001 - informational only
            return 1

    @property
    def dashboard_link(self) -> str | None:
        return self.client.dashboard_link if self._cluster is not None and self._cluster.dashboard_link else None

    def describe(self) -> str:
        return f"dask {self.address} ({self.n_workers} workers)"

    def as_completed(self, fn: Callable[[Any], Any], tasks: Iterable[Any], chunksize: int = 1) -> Iterator[tuple[int, Any]]:
        from asyncio import CancelledError as AsyncCancelled
        from concurrent.futures import CancelledError

        from distributed import as_completed
        from distributed.comm.core import CommClosedError
        from distributed.scheduler import KilledWorker

        chunks = enumerate(_chunks(tasks, max(1, int(chunksize))))
        start: dict[Any, tuple[int, int]] = {}
        first = 0
        ac = as_completed(loop=self.client.loop)

        def submit() -> bool:
            nonlocal first
            try:
                k, items = next(chunks)
            except StopIteration:
                return False
            fut = self.client.submit(_run_chunk, fn, items, self.threads, self.setup, self.setup_args, pure=False,
                                     key=f"xaiface-{fn.__name__}-{os.getpid()}-{k}-{state_key(id(self), k)}")
            start[fut] = (first, len(items))
            first += len(items)
            ac.add(fut)
            return True

        try:
            for _ in range(self.window * max(1, self.n_workers)):
                if not submit():
                    break
            for fut in ac:
                i0, _n = start.pop(fut)
                try:
                    results = fut.result()
                except KilledWorker as e:
                    raise ExecutorError(f"a task was on every worker that died ({_one_line(e)}); the stored results "
                                        "are kept: run the same command again to compute only what is missing") from e
                except (CommClosedError, OSError, TimeoutError, CancelledError, AsyncCancelled) as e:
                    raise _scheduler_lost(self.address, e) from e
                fut.release()
                submit()
                for j, r in enumerate(results):
                    yield i0 + j, r
        except (CommClosedError, OSError) as e:
            raise _scheduler_lost(self.address, e) from e
        finally:
            for fut in list(start):
                fut.cancel()

    def close(self) -> None:
        try:
            self.client.close(timeout=10)
        except Exception:  # noqa: BLE001 - closing a client whose scheduler is gone
            pass
        if self._cluster is not None:
            try:
                self._cluster.close(timeout=20)
            except Exception:  # noqa: BLE001
                pass
            self._cluster = None


def get_executor(executor: str | Executor | None = None, *, workers: int | None = None, scheduler: str | None = None,
                 threads: int | None = 1, dashboard: bool = False, setup: Callable[..., None] | None = None,
                 setup_args: Sequence[Any] = ()) -> Executor:
    """The executor a run asked for.

    Args:
        executor: ``"local"``, ``"dask"``, an :class:`Executor` (returned as it is), or ``None``:
            ``dask`` when ``scheduler`` is given or ``workers`` is at least 1, else ``local``.
        workers: processes of a local Dask cluster (``--workers N``).
        scheduler: address of an existing Dask scheduler (``--scheduler ADDRESS``).
        threads, dashboard, setup, setup_args: see :class:`DaskExecutor`.
    Raises:
        ConfigError: an unknown kind, or ``local`` together with a scheduler.
    """
    if isinstance(executor, Executor):
        return executor
    kind = executor
    if kind is None:
        kind = "dask" if scheduler is not None or (workers is not None and int(workers) >= 1) else "local"
    if kind not in EXECUTORS:
        raise ConfigError(f"--executor must be one of {EXECUTORS}, got {kind!r}")
    if kind == "local":
        if scheduler is not None:
            raise ConfigError("--scheduler needs --executor dask (or no --executor)")
        return LocalExecutor(threads, setup, setup_args)
    return DaskExecutor(scheduler, workers, threads, dashboard, setup=setup, setup_args=setup_args)
