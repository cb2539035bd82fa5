"""The REST API and the page of ``xaiface serve`` (FastAPI), over :class:`~.service.DemoService`.

Endpoints (their schema is ``GET /openapi.json``; the page at ``/`` uses only these):

* ``GET /api/models``, ``GET /api/explainers``, ``GET /api/factors``, ``GET /api/samples``
  (and ``GET /api/samples/{id}/{a|b}``: a sample's photo), ``GET /api/legend.png``;
* ``POST /api/verify``: two photos (multipart ``image_a``, ``image_b``, or ``sample``) -> the verdict;
* ``POST /api/explain``: the same with ``methods`` (comma-separated), ``soft``, ``factor`` /
  ``level`` / ``apply``, ``arrays`` -> the verdict, the maps as PNG (and arrays), the evidence.
  Fast methods (gradient and baseline families: xssab, gradient, random) answer at once (200); any
  other makes a background job
  (202, its status at ``Location``);
* ``POST /api/verify-video``: a reference photo and a clip -> a job;
* ``GET /api/jobs/{id}`` (state, progress, the result when done), ``DELETE /api/jobs/{id}`` (cancel).

Safety, chosen here: the request body is limited (:class:`BodyLimit`: 413 from its length, or while it arrives), as are
the form's files and fields; photos are decoded by :func:`xaiface.io.load_image` (content
sniffing, pixel limit from the header), clips sniffed by their magic bytes; every refusal is one
JSON object ``{"error": type, "detail": message}`` with the project's error type mapped to a
status (:data:`STATUS`); the job queue is bounded (429); a clip is written only into the app's
own temporary folder, removed when it stops; the page loads nothing from elsewhere (a
Content-Security-Policy of ``'self'`` (and ``data:`` / ``blob:`` images) says so to the browser), and the
Swagger/ReDoc pages (which load scripts from a CDN) are off. FastAPI's telemetry is off.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from ..errors import (
    ConfigError, DatasetError, ImageError, ModelNotFoundError, NoFaceError, NumericalError, WeightsError, XaifaceError,
)
from .jobs import JobCancelled, JobNotFound, JobQueue, JobQueueFull
from .service import DemoService, Limits, Photo, is_fast, method_entry, png_uri

__all__ = ["STATUS", "BodyLimit", "create_app", "error_payload", "status_of"]

#: HTTP status of each project error (the first matching class wins; any other XaifaceError: 400)
STATUS: tuple[tuple[type, int], ...] = (
    (JobQueueFull, 429), (JobNotFound, 404), (ModelNotFoundError, 404), (NoFaceError, 422), (ImageError, 422),
    (ConfigError, 400), (WeightsError, 503), (DatasetError, 503), (NumericalError, 500), (JobCancelled, 409),
)

_STATIC = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
           "style.css": "text/css; charset=utf-8"}
_CSP = ("default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class BodyLimit:
    """ASGI middleware refusing a request body over ``max_bytes`` with 413 and the API's JSON error:
    at once from its ``Content-Length``, else while it arrives (chunked), before it is all read."""

    def __init__(self, app: Any, max_bytes: int):
        self.app, self.max_bytes = app, int(max_bytes)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"request body over the limit of {self.max_bytes} bytes"
        length = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            await JSONResponse({"error": "HTTPError", "detail": message}, status_code=413)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, message)
            return msg

        await self.app(scope, counted, send)


def status_of(exc: BaseException) -> int:
    """The HTTP status of a project error (see :data:`STATUS`)."""
    for cls, code in STATUS:
        if isinstance(exc, cls):
            return code
    return 400


def error_payload(exc: BaseException) -> dict[str, str]:
    """``{"error": the error type, "detail": its message}``."""
    return {"error": type(exc).__name__, "detail": str(exc)}


def create_app(service: DemoService | None = None, limits: Limits | None = None) -> Any:
    """The FastAPI application (see the module docstring).

    Args:
        service: the computations (default ``DemoService(limits)``).
        limits: the request limits (default :class:`Limits`; ignored when ``service`` is given).
    """
    svc = service or DemoService(limits)
    lim = svc.limits
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: Any):
        state["tmp"] = Path(tempfile.mkdtemp(prefix="xaiface-serve-"))
        state["jobs"] = JobQueue(max_pending=lim.max_pending_jobs, error_payload=error_payload)
        try:
            yield
        finally:
            state["jobs"].shutdown()
            shutil.rmtree(state["tmp"], ignore_errors=True)

    app = FastAPI(
        title="xaiface demo", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
        description="Explainable face verification: two photos in, the verdict and its evidence out.",
        form_limits={"max_files": 2, "max_fields": 16, "max_part_size": 4096},
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.service = svc
    app.add_middleware(BodyLimit, max_bytes=lim.max_upload_bytes)

    # ---- errors: one JSON object each ------------------------------------------------------
    @app.exception_handler(XaifaceError)
    async def _project_error(request: Request, exc: XaifaceError):
        return JSONResponse(error_payload(exc), status_code=status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        msgs = []
        for e in exc.errors():
            where = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            msgs.append(f"{where}: {e.get('msg', 'invalid')}")
        return JSONResponse({"error": "ValidationError", "detail": "; ".join(msgs) or "invalid request"}, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return JSONResponse({"error": "HTTPError", "detail": detail}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception):
        return JSONResponse({"error": "InternalError", "detail": f"{type(exc).__name__}: {exc}"}, status_code=500)

    @app.middleware("http")
    async def _headers(request: Request, call_next):
        t0 = time.perf_counter()
        response = await call_next(request)
        response.headers["Server-Timing"] = f"app;dur={1000 * (time.perf_counter() - t0):.1f}"
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    # ---- helpers ----------------------------------------------------------------------------
    def _read(upload: UploadFile | None, label: str) -> bytes:
        if upload is None:
            raise ConfigError(f"{label}: missing; send two photos (image_a, image_b) or a sample id")
        return upload.file.read()

    def _photos(image_a: UploadFile | None, image_b: UploadFile | None, sample: int | None) -> tuple[Photo, Photo]:
        if sample is not None:
            if image_a is not None or image_b is not None:
                raise ConfigError("send either two photos or a sample id, not both")
            return svc.sample_photos(sample)
        la = f"image_a ({image_a.filename})" if image_a is not None and image_a.filename else "image_a"
        lb = f"image_b ({image_b.filename})" if image_b is not None and image_b.filename else "image_b"
        return svc.photo(_read(image_a, "image_a"), la), svc.photo(_read(image_b, "image_b"), lb)

    def _job_response(job: Any) -> Any:
        return JSONResponse(job.status(), status_code=202, headers={"Location": f"/api/jobs/{job.id}"})

    # ---- the page ---------------------------------------------------------------------------
    def _static(name: str) -> Any:
        data = resources.files(__package__).joinpath("static", name).read_bytes()
        return Response(data, media_type=_STATIC[name], headers={"Cache-Control": "no-cache"})

    @app.get("/", include_in_schema=False)
    def index():
        return _static("index.html")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon():
        return Response(status_code=204)

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str):
        if name not in _STATIC:
            raise HTTPException(404, f"no static file {name!r}")
        return _static(name)

    # ---- registries -------------------------------------------------------------------------
    @app.get("/api/models", summary="Registered face models, whether each can run here, their operating points")
    def models():
        return {"models": svc.models()}

    @app.get("/api/explainers", summary="Registered explanation methods (mode: sync answers at once, job runs in background)")
    def explainers():
        return {"explainers": svc.explainers()}

    @app.get("/api/factors", summary="Registered influencing factors (level meaning, example levels)")
    def factors():
        return {"factors": svc.factors()}

    @app.get("/api/samples", summary="Sample LFW View 2 pairs (empty without the data)")
    def samples():
        return {"samples": svc.samples()}

    @app.get("/api/samples/{sample_id}/{side}", summary="A sample pair's photo (side a or b)",
             response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
    def sample_photo(sample_id: int, side: str):
        return Response(svc.sample_path(sample_id, side).read_bytes(), media_type="image/jpeg")

    @app.get("/api/legend.png", summary="The colour scale of the maps: pink -1 (dissimilar) .. green +1 (similar)",
             response_class=Response, responses={200: {"content": {"image/png": {}}}})
    def legend():
        import base64

        from ..explain.visualize import legend_strip

        uri = png_uri(legend_strip(320, 16))
        return Response(base64.b64decode(uri.split(",", 1)[1]), media_type="image/png")

    # ---- verify / explain -------------------------------------------------------------------
    @app.post("/api/verify", summary="The verdict on two photos (as `xaiface verify`)")
    def verify(image_a: UploadFile | None = File(None, description="photo A (JPEG, PNG, BMP, GIF, TIFF, WebP)"),
               image_b: UploadFile | None = File(None, description="photo B"),
               sample: int | None = Form(None, description="instead of photos: a sample id of GET /api/samples"),
               model: str = Form("dlib-resnet"), threshold: str = Form("eer", description="eer, fmr=1e-2, fmr=1e-3 or a number")):
        a, b = _photos(image_a, image_b, sample)
        return JSONResponse(svc.verify(a, b, model, threshold))

    @app.post("/api/explain", summary="Verdict, maps (PNG, arrays) and evidence; slow methods as a job (202)",
              responses={202: {"description": "a background job: poll GET /api/jobs/{id}"}})
    def explain(image_a: UploadFile | None = File(None), image_b: UploadFile | None = File(None),
                sample: int | None = Form(None), model: str = Form("dlib-resnet"), threshold: str = Form("eer"),
                methods: str = Form("xssab", description="comma-separated method names (GET /api/explainers)"),
                soft: bool = Form(False, description="add the soft-biometric explanation (gender, age)"),
                factor: str | None = Form(None, description="an influencing factor (GET /api/factors)"),
                level: float | None = Form(None, description="the factor's level"),
                apply: str = Form("both", description="apply the factor to 'both' photos or the 'probe' (B)"),
                arrays: bool = Form(False, description="add the maps as arrays"),
                all_maps: bool = Form(False, description="both the similarity and dissimilarity maps "
                                                         "(default: the one arguing for the verdict)"),
                painted: bool = Form(False, description="add the maps painted by the server on crops and photos "
                                                        "(RGB PNGs); by default the maps come as grey PNGs the page paints"),
                background: bool = Form(False, description="run as a job even when every method is fast")):
        names = svc.check_methods([m.strip() for m in methods.split(",")])
        a, b = _photos(image_a, image_b, sample)
        kw = dict(methods=names, model=model, threshold=threshold, soft=soft, factor=factor or None, level=level,
                  apply=apply, arrays=arrays, all_maps=all_maps,
                  painted=painted)
        if not background and all(is_fast(m) for m in names):
            return JSONResponse(svc.explain(a, b, **kw))  # plain JSON already: skip FastAPI's re-encoding walk
        svc.check_factor(factor or None, level, apply)  # a bad factor or level fails now, not inside the job
        job = state["jobs"].submit("explain", lambda j: svc.explain(a, b, progress=j.report, **kw))
        return _job_response(job)

    @app.post("/api/verify-video", summary="A reference photo against a clip: per-frame scores, the decision (a job)",
              status_code=202)
    def verify_video(reference: UploadFile = File(..., description="the reference photo"),
                     clip: UploadFile = File(..., description="the clip (MP4, AVI, MKV/WebM, MOV, MPEG, Ogg)"),
                     model: str = Form("dlib-resnet"), threshold: str = Form("eer"),
                     top_k: int = Form(3, ge=1, le=50), stride: int = Form(1, ge=1, le=100),
                     explain: str = Form("xssab", description="method explaining the best deciding frame ('' none)")):
        from ..video.frames import sniff_container

        ref = svc.photo(reference.file.read(), f"reference ({reference.filename or 'upload'})")
        clip_label = f"clip ({clip.filename or 'upload'})"
        head = clip.file.read(16)
        sniff_container(head, clip_label)
        if explain:
            svc.check_methods([explain])
        pl = svc.pipeline(model, threshold)  # a bad model or threshold fails now
        fd, name = tempfile.mkstemp(suffix=".clip", dir=state["tmp"])
        path = Path(name)
        with os.fdopen(fd, "wb") as f:
            f.write(head)
            shutil.copyfileobj(clip.file, f)

        def work(job: Any) -> dict[str, Any]:
            from ..video.verify import verify_video as run

            try:
                with pl[1]:  # the detector is not known to be thread-safe
                    v = run(ref.image, path, pl[0], top_k=top_k, stride=stride, max_frames=lim.max_video_frames,
                            explain=explain or None, reference_name=ref.name, clip_name=clip_label, progress=job.report)
                d = v.to_dict()
                plot = state["tmp"] / f"{job.id}.png"
                v.plot(plot)
                from PIL import Image

                with Image.open(plot) as im:
                    d["plot"] = png_uri(np.asarray(im.convert("RGB")))
                plot.unlink()
                d["best_frame"] = png_uri(v.best_frame)
                if v.explanation is not None:
                    d["explanation"] = method_entry(v.explanation, (ref.image, v.best_frame), "", painted=True)
                return d
            finally:
                path.unlink(missing_ok=True)

        try:
            job = state["jobs"].submit("verify-video", work)
        except JobQueueFull:
            path.unlink(missing_ok=True)
            raise
        return _job_response(job)

    # ---- jobs -------------------------------------------------------------------------------
    @app.get("/api/jobs/{job_id}", summary="A job's state and progress; its result when done")
    def job_status(job_id: str):
        return state["jobs"].get(job_id).status()

    @app.delete("/api/jobs/{job_id}", summary="Cancel a job (a running one stops at its next step)")
    def job_cancel(job_id: str):
        return state["jobs"].cancel(job_id).status(with_result=False)

    return app
