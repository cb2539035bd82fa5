"""Patch-LFW on a real Dask cluster: a scheduler and two workers started as separate processes on
127.0.0.1 with the ``dask scheduler`` / ``dask worker`` commands.

* a small run through them stores the rows a local run stores (bit-identical outcomes);
* a worker killed (SIGKILL) in the middle of a run: the run still finishes, identical;
* the scheduler killed in the middle of a run: one ExecutorError; the same run against a new
  cluster computes only the missing pairs and ends identical.

Every wait here is bounded (processes are started with a deadline and killed at the end).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xaiface.bench import ResultStore, run_patch_lfw
from xaiface.errors import ExecutorError

pytest.importorskip("distributed")

METHODS = ["random", "xssab"]
N_PAIRS = 4
DASK = Path(sys.executable).with_name("dask")
SRC = Path(__file__).resolve().parents[2] / "src"
START_S = 180.0


class Cluster:
    """A scheduler and worker processes on 127.0.0.1 (their own process groups, so a kill is total)."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.file = folder / "scheduler.json"
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
                        OMP_NUM_THREADS="1")
        self.scheduler = self._spawn("scheduler", [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0",
                                                   "--no-dashboard", "--scheduler-file", str(self.file)])
        deadline = time.monotonic() + START_S
        while not self.file.is_file():
            if time.monotonic() > deadline or self.scheduler.poll() is not None:
                self.close()
                raise RuntimeError(f"the scheduler did not start; see {folder}/scheduler.log")
            time.sleep(0.2)
        time.sleep(0.2)
        self.address = json.loads(self.file.read_text())["address"]
        assert self.address.startswith("tcp://127.0.0.1:")
        self.workers: list[subprocess.Popen] = []

    def _spawn(self, name: str, cmd: list[str]) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "ab")
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)

    def add_workers(self, n: int) -> None:
        for _ in range(n):
            k = len(self.workers)
            self.workers.append(self._spawn(f"worker{k}", [
                str(DASK), "worker", self.address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                "--host", "127.0.0.1", "--name", f"w{k}"]))
        self.wait_for(len(self.alive()))

    def alive(self) -> list[subprocess.Popen]:
        return [w for w in self.workers if w.poll() is None]

    def wait_for(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=30, set_as_default=False) as c:
            c.wait_for_workers(n, timeout=START_S)

    @staticmethod
    def kill(p: subprocess.Popen) -> None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(timeout=30)

    def close(self) -> None:
        for p in [*self.workers, self.scheduler]:
            self.kill(p)


@pytest.fixture(scope="module")
def local_rows(small_ds, dlib_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "bench"
    s = run_patch_lfw(out, methods=METHODS, model=dlib_model, dataset=small_ds.root, n_pairs=N_PAIRS, progress=False,
                      write=False, threads=1)
    return _outcomes(out, s)


def _outcomes(out: Path, summary: dict) -> dict:
    with ResultStore(out / "results.sqlite") as s:
        return {m: [r.outcome() for r in s.results(k)] for m, k in summary["run_keys"].items()}


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    try:
        c.add_workers(2)
        yield c
    finally:
        c.close()


def _run(out: Path, ds, address: str, **kw):
    return run_patch_lfw(out, methods=METHODS, model="dlib-resnet", dataset=ds.root, n_pairs=N_PAIRS, progress=False,
                         write=False, scheduler=address, chunk_pairs=1, **kw)


def test_cluster_run_equals_local_run(cluster, small_ds, local_rows, tmp_path):
    s = _run(tmp_path / "bench", small_ds, cluster.address)
    assert _outcomes(tmp_path / "bench", s) == local_rows
    assert all(r["n_pairs"] == N_PAIRS for r in s["methods"].values())


def test_killed_worker_run_finishes_identical(cluster, small_ds, local_rows, tmp_path):
    killed = []

    def kill_a_worker(method, index):
        if not killed:  # after the first stored pair: one worker dies with work in flight
            victim = cluster.alive()[0]
            cluster.kill(victim)
            killed.append(victim.pid)

    s = _run(tmp_path / "bench", small_ds, cluster.address, on_pair=kill_a_worker)
    assert killed and len(cluster.alive()) == 1
    assert _outcomes(tmp_path / "bench", s) == local_rows


def test_killed_scheduler_resumes_identical(cluster, small_ds, local_rows, tmp_path):
    out = tmp_path / "bench"
    seen = []

    def kill_the_scheduler(method, index):
        seen.append((method, index))
        if len(seen) == 2:
            cluster.kill(cluster.scheduler)

    with pytest.raises(ExecutorError, match="lost the Dask scheduler .* run the same command again"):
        _run(out, small_ds, cluster.address, on_pair=kill_the_scheduler)
    with ResultStore(out / "results.sqlite") as st:
        stored = sum(len(st.done(r["run_key"])) for r in st.runs())
    assert 2 <= stored < len(METHODS) * N_PAIRS
    cluster.close()

    again = Cluster(tmp_path / "second")
    try:
        again.add_workers(2)
        recomputed = []
        s = _run(out, small_ds, again.address, on_pair=lambda m, i: recomputed.append((m, i)))
    finally:
        again.close()
    assert len(recomputed) == len(METHODS) * N_PAIRS - stored  # only what was missing
    assert _outcomes(out, s) == local_rows
