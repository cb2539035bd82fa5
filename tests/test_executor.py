"""The executor contract (:mod:`xaiface.executor`): order, chunks, per-process state, choices."""
from __future__ import annotations

import pytest

from xaiface.errors import ConfigError
from xaiface.executor import LocalExecutor, get_executor, state_key, worker_state

calls: list[int] = []


def _square(x: int) -> int:
    calls.append(x)
    return x * x


def test_local_executor_runs_every_task_in_order():
    ex = get_executor("local")
    assert isinstance(ex, LocalExecutor) and ex.n_workers == 1
    assert list(ex.map(_square, range(7), chunksize=3)) == [x * x for x in range(7)]
    assert list(ex.as_completed(_square, [3, 4])) == [(0, 9), (1, 16)]


def test_choice_of_executor():
    assert get_executor(None).kind == "local"
    assert get_executor(None, workers=0).kind == "local"
    ex = LocalExecutor()
    assert get_executor(ex) is ex  # an executor object is used as it is
    with pytest.raises(ConfigError, match="--executor must be one of"):
        get_executor("ray")
    with pytest.raises(ConfigError, match="--scheduler needs --executor dask"):
        get_executor("local", scheduler="tcp://127.0.0.1:1")


def test_worker_state_builds_once_per_key():
    built = []
    key = state_key("test", {"a": 1})
    assert state_key("test", {"a": 1}) == key != state_key("test", {"a": 2})
    for _ in range(3):
        worker_state(key, lambda: built.append(1) or object())
    assert len(built) == 1


def test_unreachable_scheduler_is_one_clear_error():
    from xaiface.errors import ExecutorError

    with pytest.raises(ExecutorError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        from xaiface.executor import DaskExecutor

        DaskExecutor("tcp://127.0.0.1:9", connect_timeout=2)
