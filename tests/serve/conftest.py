"""Fixtures of the server tests: a test client, photos, and a live uvicorn server on 127.0.0.1."""
from __future__ import annotations

import pytest


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


@pytest.fixture(scope="module")
def live_server():
    """``http://127.0.0.1:PORT``: the demo served by uvicorn in a thread (started and stopped with bounded waits)."""
    from xaiface.serve import serving

    with serving(timeout=60) as url:
        yield url
