"""Latency of the REST API against the same calls in-process, in one run; then concurrent verifies.

A real server (``xaiface serve`` in a subprocess, on 127.0.0.1 and a free port, the same
``OMP_NUM_THREADS`` as this process) and this process's in-process calls, on the same real LFW
pair (fold 1's first genuine pair), interleaved call by call so both see the same machine load:

* ``verify``: in-process ``FacePipeline.verify(bytes_a, bytes_b)`` (decode, detect, align, embed,
  score) against ``POST /api/verify`` with the two files (multipart upload, the same work, JSON back);
* ``xssab``: in-process decode + align + ``get_explainer("xssab").explain(pair)`` (the library call)
  against ``POST /api/explain methods=xssab`` (the same, plus painting and PNG-encoding the 8
  overlays, JSON, transfer); the service's in-process ``explain`` (painting and encoding, no HTTP)
  is timed as well, to split the overhead into encoding and HTTP;
* 20 concurrent ``POST /api/verify`` from 20 client threads: errors, p50 / p95 latency, wall time.

Overhead = (median HTTP - median in-process) / median in-process. The goal of the issue: at most
15% on the xssab call.

    python benchmarks/serve_latency.py [--repeat 15] [--concurrent 20] [--out docs/results/serve/latency.json]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(port: int) -> subprocess.Popen:
    import httpx

    code = "import sys; from xaiface.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, "serve", "--port", str(port), "--log-level", "warning"],
                            env=os.environ.copy(), stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/models", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start within 120 s")


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def main() -> None:
    import httpx

    from xaiface.datasets import LFW
    from xaiface.explain import Verifier, get_explainer
    from xaiface.explain.base import FacePair
    from xaiface.io import load_image
    from xaiface.pipeline import FacePipeline
    from xaiface.serve import DemoService

    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--concurrent", type=int, default=20)
    ap.add_argument("--out", default="docs/results/serve/latency.json")
    args = ap.parse_args()
    pair = next(p for p in LFW().pairs(folds=[0], per_fold=2) if p.same)
    da, db = pair.path_a.read_bytes(), pair.path_b.read_bytes()
    files = {"image_a": (pair.path_a.name, da), "image_b": (pair.path_b.name, db)}

    pipe = FacePipeline()
    verifier = Verifier.from_pipeline(pipe)
    xssab = get_explainer("xssab", verifier)
    svc = DemoService()

    def local_verify():
        return pipe.verify(da, db).similarity

    def local_xssab():
        fa, fb = pipe.align(load_image(da)), pipe.align(load_image(db))
        return xssab.explain(FacePair(fa, fb)).score

    def service_xssab():
        return svc.explain(svc.photo(da, "a"), svc.photo(db, "b"), ["xssab"])["original"]["verdict"]["similarity"]

    port = _free_port()
    server = _start_server(port)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=120) as http:
            server_ms: dict[str, list[float]] = {"verify_http": [], "xssab_http": []}

            def _server(key: str, r: httpx.Response) -> None:
                r.raise_for_status()
                server_ms[key].append(float(r.headers["server-timing"].split("dur=")[1]))

            def http_verify():
                r = http.post("/api/verify", files=files)
                _server("verify_http", r)
                return r.json()["similarity"]

            def http_xssab():
                r = http.post("/api/explain", files=files, data={"methods": "xssab"})
                _server("xssab_http", r)
                return r.json()["original"]["verdict"]["similarity"], len(r.content)

            for fn in (local_verify, http_verify, local_xssab, service_xssab, http_xssab):  # warm-up
                fn()
            times: dict[str, list[float]] = {k: [] for k in ("verify_inproc", "verify_http", "xssab_inproc",
                                                             "xssab_service", "xssab_http")}
            scores = {}
            size = 0
            for _ in range(args.repeat):
                for key, fn in (("verify_inproc", local_verify), ("verify_http", http_verify),
                                ("xssab_inproc", local_xssab), ("xssab_service", service_xssab),
                                ("xssab_http", http_xssab)):
                    t = time.perf_counter()
                    out = fn()
                    times[key].append(time.perf_counter() - t)
                    if key == "xssab_http":
                        out, size = out
                    scores[key] = out

        def one(_: int) -> tuple[float, int, str]:
            with httpx.Client(base_url=url, timeout=300) as c:
                t = time.perf_counter()
                r = c.post("/api/verify", files=files)
                return time.perf_counter() - t, r.status_code, r.json().get("decision", r.text[:80])

        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.concurrent) as pool:
            results = list(pool.map(one, range(args.concurrent)))
        wall = time.perf_counter() - t0
    finally:
        server.terminate()
        server.wait(timeout=30)

    med = {k: statistics.median(v) for k, v in times.items()}
    lat = [r[0] for r in results]
    summary = {
        "pair": [pair.path_a.name, pair.path_b.name], "repeat": args.repeat,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "cpus": os.cpu_count(),
        "median_ms": {k: round(1000 * v, 1) for k, v in med.items()},
        "server_side_median_ms": {k: round(statistics.median(v[1:]), 1) for k, v in server_ms.items()},
        "verify_http_overhead": round(med["verify_http"] / med["verify_inproc"] - 1, 4),
        "xssab_http_overhead": round(med["xssab_http"] / med["xssab_inproc"] - 1, 4),
        "xssab_encoding_overhead": round(med["xssab_service"] / med["xssab_inproc"] - 1, 4),
        "xssab_response_bytes": size,
        "scores_agree": max(scores.values()) - min(scores.values()) < 1e-5,
        "concurrent": {"requests": args.concurrent, "errors": sum(r[1] != 200 for r in results),
                       "decisions": sorted({r[2] for r in results}), "wall_s": round(wall, 2),
                       "p50_ms": round(1000 * _pct(lat, 0.5), 1), "p95_ms": round(1000 * _pct(lat, 0.95), 1),
                       "max_ms": round(1000 * max(lat), 1)},
    }
    print(f"pair {pair.path_a.name} / {pair.path_b.name}; {args.repeat} interleaved repeats; "
          f"OMP_NUM_THREADS={summary['omp_num_threads']}")
    print(f"{'call':<34}{'median ms':>10}")
    for k, label in (("verify_inproc", "verify in-process"), ("verify_http", "POST /api/verify"),
                     ("xssab_inproc", "xssab in-process (library)"), ("xssab_service", "xssab in-process + PNG/JSON"),
                     ("xssab_http", "POST /api/explain xssab")):
        print(f"{label:<34}{1000 * med[k]:>10.1f}")
    print(f"server side (Server-Timing, the app's own time): verify {summary['server_side_median_ms']['verify_http']:.1f} ms, "
          f"xssab {summary['server_side_median_ms']['xssab_http']:.1f} ms")
    print(f"overhead: verify {100 * summary['verify_http_overhead']:+.1f}%, xssab {100 * summary['xssab_http_overhead']:+.1f}% "
          f"(of which encoding {100 * summary['xssab_encoding_overhead']:+.1f}%); xssab response {size / 1024:.0f} KiB")
    c = summary["concurrent"]
    print(f"{c['requests']} concurrent POST /api/verify: {c['errors']} errors, p50 {c['p50_ms']:.0f} ms, "
          f"p95 {c['p95_ms']:.0f} ms, max {c['max_ms']:.0f} ms, wall {c['wall_s']:.1f} s; decisions {c['decisions']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
