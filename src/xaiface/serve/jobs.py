"""Background jobs of the demo: a bounded queue, progress and cooperative cancel.

Slow methods (``corrrise``, ``xface*``, ``rise``, ``libf-ebm``) and video verification run here,
so an HTTP request answers at once with a job id. Chosen:

* **One worker thread** (:class:`~concurrent.futures.ThreadPoolExecutor` of ``workers=1`` by
  default): the explanations are CPU-bound and torch already uses the cores; two at once would
  only share them.
* **A bounded queue**: at most ``max_pending`` jobs queued or running; one more is refused with
  :class:`JobQueueFull` (HTTP 429), not queued without end.
* **Cooperative cancel**: :meth:`JobQueue.cancel` sets the job's flag; the job's progress
  callback raises :class:`JobCancelled` at its next call (after each forward batch of a
  perturbation method, between methods, between video frames), so the worker unwinds at once and
  nothing half-done is kept. A job not yet started is dropped from the queue.
* **Finished jobs are kept** (the last ``keep`` of them) so a client can read a result once
  more; older ones are forgotten.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import ConfigError, XaifaceError

__all__ = ["Job", "JobCancelled", "JobNotFound", "JobQueue", "JobQueueFull"]


class JobQueueFull(XaifaceError):
    """Too many background jobs are queued or running (HTTP 429); try again when one has finished."""


class JobCancelled(XaifaceError):
    """Raised inside a job's work when the job was cancelled (stops it between two steps)."""


class JobNotFound(XaifaceError, KeyError):
    """No job of that id (never made, or forgotten after finishing)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass
class Job:
    """One background job: ``state`` is ``queued``, ``running``, ``done``, ``failed`` or ``cancelled``."""

    id: str
    kind: str
    state: str = "queued"
    progress: float = 0.0
    stage: str = ""
    result: Any = None
    error: dict[str, str] | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event, repr=False)

    def report(self, fraction: float, stage: str = "") -> None:
        """The work's progress callback: records ``fraction`` (0..1); raises :class:`JobCancelled` when cancelled."""
        if self.cancel_requested.is_set():
            raise JobCancelled(f"job {self.id} cancelled")
        self.progress = max(self.progress, min(1.0, float(fraction)))
        if stage:
            self.stage = stage

    def status(self, with_result: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "kind": self.kind, "state": self.state, "progress": round(self.progress, 4),
                             "stage": self.stage, "error": self.error}
        if with_result and self.state == "done":
            d["result"] = self.result
        return d


class JobQueue:
    """A bounded queue of background jobs (see the module docstring).

    Args:
        max_pending: jobs queued or running at once (>= 1). workers: worker threads.
        keep: finished jobs remembered.
        error_payload: turns an exception of a failed job into its ``error`` dict (default: type and message).
    """

    def __init__(self, max_pending: int = 4, workers: int = 1, keep: int = 32,
                 error_payload: Callable[[BaseException], dict[str, str]] | None = None):
        if max_pending < 1 or workers < 1 or keep < 1:
            raise ConfigError(f"job queue: max_pending, workers and keep must be >= 1, got {max_pending}, {workers}, {keep}")
        self.max_pending, self.keep = int(max_pending), int(keep)
        self._pool = ThreadPoolExecutor(max_workers=int(workers), thread_name_prefix="xaiface-job")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._error_payload = error_payload or (lambda e: {"error": type(e).__name__, "detail": str(e)})

    def submit(self, kind: str, work: Callable[[Job], Any]) -> Job:
        """Queue ``work(job)`` (it calls ``job.report(fraction, stage)`` as it goes); JobQueueFull when full."""
        with self._lock:
            pending = sum(j.state in ("queued", "running") for j in self._jobs.values())
            if pending >= self.max_pending:
                raise JobQueueFull(f"{pending} jobs are queued or running (at most {self.max_pending}); "
                                   "wait for one to finish or cancel one")
            job = Job(uuid.uuid4().hex, kind)
            self._jobs[job.id] = job
            self._forget_old()
        self._pool.submit(self._run, job, work)
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id!r} (unknown, or forgotten after {self.keep} newer jobs)")
        return job

    def cancel(self, job_id: str) -> Job:
        """Ask a job to stop: a queued one is dropped, a running one stops at its next progress call."""
        job = self.get(job_id)
        job.cancel_requested.set()
        with self._lock:
            if job.state == "queued":
                job.state, job.finished = "cancelled", time.time()
        return job

    def shutdown(self) -> None:
        """Cancel every job and wait for the worker to stop."""
        with self._lock:
            jobs = list(self._jobs.values())
        for j in jobs:
            j.cancel_requested.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, job: Job, work: Callable[[Job], Any]) -> None:
        with self._lock:
            if job.state != "queued":  # cancelled while waiting
                return
            job.state = "running"
        try:
            result = work(job)
        except JobCancelled:
            job.state = "cancelled"
        except Exception as e:  # a failed job records its error; the worker goes on
            job.error = self._error_payload(e)
            job.state = "failed"
        else:
            job.result, job.progress, job.state = result, 1.0, "done"
        job.finished = time.time()

    def _forget_old(self) -> None:
        done = [k for k, j in self._jobs.items() if j.state not in ("queued", "running")]
        for k in done[: max(0, len(done) - self.keep)]:
            del self._jobs[k]
