"""The job queue's mechanics (bounded, progress, cooperative cancel, failures recorded), with toy work."""
from __future__ import annotations

import threading
import time

import pytest

from xaiface.errors import ConfigError, NoFaceError
from xaiface.serve.jobs import JobCancelled, JobNotFound, JobQueue, JobQueueFull


def _wait(q: JobQueue, job_id: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while q.get(job_id).state in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return q.get(job_id).state


def test_queue_is_bounded_and_cancels_cooperatively():
    q = JobQueue(max_pending=2)
    gate, steps = threading.Event(), []

    def slow(job):
        for i in range(1000):  # stops at the first report after cancel
            gate.wait(5)
            job.report(i / 1000, "step")
            steps.append(i)
            time.sleep(0.001)
        return "finished"

    first = q.submit("toy", slow)
    second = q.submit("toy", lambda job: "second done")
    with pytest.raises(JobQueueFull, match="at most 2"):
        q.submit("toy", lambda job: None)
    assert q.get(second.id).state == "queued"
    q.cancel(second.id)  # a queued job is dropped before it starts
    assert q.get(second.id).state == "cancelled"
    gate.set()
    while not steps:
        time.sleep(0.01)
    q.cancel(first.id)
    assert _wait(q, first.id) == "cancelled"
    assert 0 < len(steps) < 1000 and q.get(first.id).result is None
    assert q.get(second.id).result is None  # never ran
    third = q.submit("toy", lambda job: 42)  # room again
    assert _wait(q, third.id) == "done" and q.get(third.id).status()["result"] == 42
    assert q.get(third.id).progress == 1.0
    q.shutdown()


def test_failures_are_recorded_and_old_jobs_forgotten():
    q = JobQueue(max_pending=1, keep=2)

    def fails(job):
        raise NoFaceError("no face found in clip frame 3")

    j = q.submit("toy", fails)
    assert _wait(q, j.id) == "failed"
    assert q.get(j.id).status() == {"id": j.id, "kind": "toy", "state": "failed", "progress": 0.0, "stage": "",
                                    "error": {"error": "NoFaceError", "detail": "no face found in clip frame 3"}}
    ids = []
    for k in range(3):
        ids.append(q.submit("toy", lambda job, k=k: k).id)
        _wait(q, ids[-1])
    with pytest.raises(JobNotFound):
        q.get(j.id)  # forgotten: only the last 2 finished jobs are kept
    assert q.get(ids[-1]).result == 2
    with pytest.raises(JobNotFound):
        q.cancel("nope")
    with pytest.raises(ConfigError):
        JobQueue(max_pending=0)
    q.shutdown()


def test_report_raises_once_cancelled():
    from xaiface.serve.jobs import Job

    job = Job("x", "toy")
    job.report(0.5, "half")
    job.report(0.25)  # progress never goes back
    assert (job.progress, job.stage) == (0.5, "half")
    job.cancel_requested.set()
    with pytest.raises(JobCancelled):
        job.report(0.6)
