"""The live web demo and its REST API (``xaiface serve``).

:mod:`.service` does the work (verify, explain, soft biometrics, influencing factors, video) by
composing the library's stages; :mod:`.jobs` runs the slow methods in a bounded background queue
with progress and cancel; :mod:`.app` is the FastAPI application (the API, its OpenAPI schema,
one JSON error per bad request, the page in ``static/``, plain HTML/JS/CSS with nothing loaded
from elsewhere). :func:`serve` runs it with uvicorn on 127.0.0.1.

FastAPI and uvicorn are imported only when an app is made, so ``import xaiface`` stays light.
"""
from __future__ import annotations

import ipaddress
import shutil
import socket
import tempfile
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

from ..errors import ConfigError
from .service import DemoService, Limits

__all__ = ["DemoService", "Limits", "create_app", "is_loopback", "serve", "serving"]


def create_app(service: DemoService | None = None, limits: Limits | None = None) -> Any:
    """The FastAPI application (see :func:`xaiface.serve.app.create_app`)."""
    from .app import create_app as make

    return make(service, limits)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) resolves only to loopback addresses."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback for i in infos)


def serve(host: str = "127.0.0.1", port: int = 8000, limits: Limits | None = None, allow_remote: bool = False,
          log_level: str = "info", service: DemoService | None = None) -> None:
    """Run the demo with uvicorn on ``host:port`` until interrupted.

    The server listens on that one address only (default 127.0.0.1); an address that is not
    loopback is refused unless ``allow_remote`` (the demo has no authentication). Every temporary
    file of the server (uploads spooled by the form parser, clips) goes into one temporary folder,
    removed when the server stops.

    Raises:
        ConfigError: a port outside 1..65535, or a non-loopback host without ``allow_remote``.
    """
    import uvicorn

    if not 0 < int(port) < 65536:
        raise ConfigError(f"port must be in 1..65535, got {port}")
    if not allow_remote and not is_loopback(host):
        raise ConfigError(f"host {host!r} is not a loopback address; the demo has no authentication, so it listens "
                          "on 127.0.0.1 unless --allow-remote is given")
    root = tempfile.mkdtemp(prefix="xaiface-serve-")
    old = tempfile.tempdir
    tempfile.tempdir = root  # uploads the form parser spools to disk land here, and are removed with it
    try:
        app = create_app(service, limits)
        uvicorn.run(app, host=host, port=int(port), log_level=log_level, proxy_headers=False, server_header=False,
                    workers=1)
    finally:
        tempfile.tempdir = old
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def serving(app: Any = None, timeout: float = 60.0) -> Iterator[str]:
    """Serve ``app`` (default :func:`create_app`) with uvicorn in a background thread on a free port
    of 127.0.0.1; yields its base URL (``http://127.0.0.1:PORT``) and stops it on exit.

    For tests and scripts (the browser test, the screenshot); waits are bounded by ``timeout``.

    Raises:
        ConfigError: the server did not start within ``timeout`` seconds.
    """
    import uvicorn

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app if app is not None else create_app(), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, name="xaiface-serving", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise ConfigError(f"the demo server did not start on 127.0.0.1:{port} within {timeout:g} s")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=timeout)
