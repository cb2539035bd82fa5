"""Fixtures of the server tests: a test client, photos, and a live uvicorn server on 127.0.0.1."""
from __future__ import annotations

import socket
import threading
import time

import pytest

pytest.importorskip("fastapi", reason="the web demo needs fastapi (pip install -e '.[test]')")


@pytest.fixture(scope="session")
def app():
    from xaiface.serve import create_app

    return create_app()


@pytest.fixture(scope="session")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:  # runs the lifespan: the job queue and the temporary folder
        yield c


@pytest.fixture(scope="session")
def genuine_pair(lfw):
    """A genuine LFW View 2 pair (fold 1): its two files."""
    p = next(p for p in lfw.pairs(folds=[0], per_fold=2) if p.same)
    return p.path_a, p.path_b


@pytest.fixture(scope="session")
def impostor_pair(lfw):
    p = next(p for p in lfw.pairs(folds=[0], per_fold=2) if not p.same)
    return p.path_a, p.path_b


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def live_server():
    """``http://127.0.0.1:PORT``: the demo served by uvicorn in a thread (started and stopped with bounded waits)."""
    import uvicorn

    from xaiface.serve import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            pytest.fail("uvicorn did not start within 60 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)
