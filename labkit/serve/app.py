"""The REST service of the capstone pipeline (FastAPI): the same models and the same frame
record as ``labkit run``, one image per request.

Endpoints (OpenAPI document at ``/openapi.json``, interactive docs at ``/docs``):

* ``POST /v1/detect``: an image (multipart field ``file``, or a raw ``image/*`` body) -> the
  frame record of :mod:`labkit.pipeline.records` (boxes in the image's pixels, class ids and
  names, scores) plus the model's name and checkpoint sha256;
* ``POST /v1/segment``: the same with each box's mask and the label map as COCO RLE;
* ``POST /v1/track``, ``POST /v1/track/{session}``, ``DELETE /v1/track/{session}``: tracking
  sessions (below);
* ``GET /healthz``: liveness and the loaded models;
* ``GET /metrics``: Prometheus text (requests and errors by endpoint and status, a latency
  histogram).

Bad input gets a JSON error ``{"error": {"status", "message"}}`` and never stops the server:
400 not an image or a truncated one, 413 more bytes or pixels than the config's ``serve``
limits, 415 a content type other than ``multipart/form-data`` or ``image/*``, 404 an unknown
or expired tracking session, 409 a frame out of order.

Tracking (when the config has a tracker): ``POST /v1/track`` opens a session (one
:class:`labkit.track.tracker.Tracker`), ``POST /v1/track/{session}`` sends its next frame (the
optional query ``frame=N`` must be the next number) and answers the frame record with track ids
and states, ``DELETE /v1/track/{session}`` closes it; a session idle for ``session_ttl_s``
expires.

Inference runs in a worker thread, one request at a time (a lock): torch on the CPU already
uses the cores, and single-threaded inference gives the same numbers as ``labkit run``.
"""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.routing import Match
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from labkit.errors import DataError
from labkit.pipeline.config import PipelineConfig, load_config
from labkit.pipeline.loader import Frame
from labkit.serve.sessions import Sessions

#: The request body both image endpoints accept, for the OpenAPI document.
IMAGE_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                       "properties": {"file": {"type": "string", "format": "binary"}}}},
    "image/*": {"schema": {"type": "string", "format": "binary"}}}}}
#: Prometheus latency buckets, seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)


class HTTPProblem(Exception):
    """A request the service refuses: HTTP status and a message for the JSON error body."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def decode_upload(data: bytes, *, max_pixels: int) -> np.ndarray:
    """Uploaded bytes -> RGB uint8 (EXIF orientation applied); the pixel limit is checked on the
    header, before decoding."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    from labkit.data.images import _pil_open, to_rgb_array  # noqa: PLC2701 - Pillow's unpatched opener

    try:
        img = _pil_open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise HTTPProblem(400, "the body is not an image Pillow can read") from None
    w, h = img.size
    if w * h > max_pixels:
        raise HTTPProblem(413, f"image is {w}x{h} = {w * h} pixels, the limit is {max_pixels}")
    try:
        img.load()
        img = ImageOps.exif_transpose(img)
        return to_rgb_array(img, source="upload")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise HTTPProblem(400, f"cannot decode the image ({exc})") from None
    except DataError as exc:
        raise HTTPProblem(400, str(exc)) from None


def create_app(config: str | Path | Mapping[str, Any] | PipelineConfig) -> FastAPI:
    """The FastAPI application serving the models of a capstone config."""
    from labkit.pipeline.run import Pipeline

    cfg = config if isinstance(config, PipelineConfig) else load_config(config)
    pipeline = Pipeline(cfg)
    models = pipeline.models()
    lock = threading.Lock()
    registry = CollectorRegistry()
    requests = Counter("labkit_requests", "HTTP requests by endpoint and status", ["endpoint", "status"],
                       registry=registry)
    errors = Counter("labkit_errors", "Requests answered with an error status", ["endpoint", "status"],
                     registry=registry)
    latency = Histogram("labkit_request_latency_seconds", "Wall time per request", ["endpoint"],
                        buckets=LATENCY_BUCKETS, registry=registry)
    app = FastAPI(title="labkit capstone service", version="1.0",
                  description="Detection and segmentation of the capstone pipeline; answers are frame records "
                              "(labkit.pipeline.records).")
    limits = cfg.serve

    @app.middleware("http")
    async def count(request: Request, call_next: Any) -> Any:
        start = time.perf_counter()
        endpoint = next((r.path for r in app.routes if r.matches(request.scope)[0] == Match.FULL), "other")
        try:
            response = await call_next(request)
        except Exception as exc:  # noqa: BLE001 - any failure becomes a JSON 500, the server keeps serving
            response = JSONResponse({"error": {"status": 500, "message": f"{type(exc).__name__}: {exc}"}},
                                    status_code=500)
        requests.labels(endpoint, str(response.status_code)).inc()
        if response.status_code >= 400:
            errors.labels(endpoint, str(response.status_code)).inc()
        latency.labels(endpoint).observe(time.perf_counter() - start)
        return response

    @app.exception_handler(HTTPProblem)
    async def problem(_: Request, exc: HTTPProblem) -> Any:
        return JSONResponse({"error": {"status": exc.status, "message": exc.message}}, status_code=exc.status)

    @app.exception_handler(404)
    async def not_found(request: Request, _: Exception) -> Any:
        return JSONResponse({"error": {"status": 404, "message": f"no such endpoint: {request.url.path}"}},
                            status_code=404)

    @app.exception_handler(405)
    async def bad_method(request: Request, _: Exception) -> Any:
        return JSONResponse({"error": {"status": 405, "message": f"{request.method} is not allowed here"}},
                            status_code=405)

    async def read_image(request: Request) -> np.ndarray:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limits.max_bytes + 4096:
            raise HTTPProblem(413, f"request of {declared} bytes; the limit is {limits.max_bytes} bytes of image")
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "multipart/form-data":
            form = await request.form(max_files=1, max_fields=1, max_part_size=limits.max_bytes + 1)
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise HTTPProblem(400, "multipart body without a 'file' field")
            data = await upload.read(limits.max_bytes + 1)
        elif kind.startswith("image/"):
            chunks, size = [], 0
            async for chunk in request.stream():  # a body without Content-Length is cut at the limit too
                size += len(chunk)
                if size > limits.max_bytes:
                    raise HTTPProblem(413, f"image of more than {limits.max_bytes} bytes")
                chunks.append(chunk)
            data = b"".join(chunks)
        else:
            raise HTTPProblem(415, f"content type {kind or '(none)'!r}: send multipart/form-data with a 'file' "
                                   "field or a raw image/* body")
        if len(data) > limits.max_bytes:
            raise HTTPProblem(413, f"image of more than {limits.max_bytes} bytes")
        if not data:
            raise HTTPProblem(400, "empty image")
        return await run_in_threadpool(decode_upload, data, max_pixels=limits.max_pixels)

    def infer(image: np.ndarray, segment: bool) -> dict[str, Any]:
        frame = Frame(1, 0.0, "upload", image)
        with lock:
            record = pipeline.process([frame], segment=segment)[0]
        used = {"detector": models["detector"]} | ({"segmenter": models["segmenter"]} if segment else {})
        record["models"] = {role: {"name": m["name"], "sha256": m["sha256"]} for role, m in used.items()}
        return record

    @app.post("/v1/detect", summary="Detect objects in one image", openapi_extra=IMAGE_BODY)
    async def detect(request: Request) -> Any:
        image = await read_image(request)
        return await run_in_threadpool(infer, image, False)

    @app.post("/v1/segment", summary="Detect objects and segment them (masks as COCO RLE)",
              openapi_extra=IMAGE_BODY)
    async def segment(request: Request) -> Any:
        if pipeline.segmenter is None:
            raise HTTPProblem(501, "this service's config has no segmenter")
        image = await read_image(request)
        return await run_in_threadpool(infer, image, True)

    sessions = Sessions(pipeline.new_tracker, limits.session_ttl_s)

    def tracking() -> None:
        if cfg.tracker is None:
            raise HTTPProblem(501, "this service's config has no tracker")

    @app.post("/v1/track", summary="Open a tracking session", status_code=201)
    async def open_session() -> Any:
        tracking()
        sid = sessions.create()
        if sid is None:
            raise HTTPProblem(503, f"{sessions.max_sessions} tracking sessions are open; close one or wait "
                                   f"{limits.session_ttl_s:g} s for idle ones to expire")
        return JSONResponse({"session": sid, "expires_after_idle_s": limits.session_ttl_s}, status_code=201)

    @app.post("/v1/track/{session}", summary="Track the session's next frame", openapi_extra=IMAGE_BODY)
    async def track(session: str, request: Request, frame: int | None = None) -> Any:
        tracking()
        state = sessions.get(session)
        if state is None:
            raise HTTPProblem(404, f"unknown or expired tracking session {session!r}; open one with POST /v1/track")
        image = await read_image(request)

        def step() -> dict[str, Any]:
            with state.lock:
                expected = state.frames + 1
                if frame is not None and frame != expected:
                    raise HTTPProblem(409, f"frame {frame} out of order: this session expects frame {expected}")
                with lock:
                    record = pipeline.process([Frame(expected, 0.0, f"session {session}", image)], segment=False,
                                              tracker=state.tracker)[0]
                state.frames = expected
            record["models"] = {"detector": {"name": models["detector"]["name"], "sha256": models["detector"]["sha256"]}}
            return record

        return await run_in_threadpool(step)

    @app.delete("/v1/track/{session}", summary="Close a tracking session")
    async def close_session(session: str) -> Any:
        if not sessions.delete(session):
            raise HTTPProblem(404, f"unknown or expired tracking session {session!r}")
        return {"session": session, "closed": True}

    @app.get("/healthz", summary="Liveness and the loaded models")
    async def healthz() -> Any:
        return {"status": "ok", "models": {role: {"name": m["name"], "sha256": m["sha256"]} for role, m in models.items()
                                           if role != "tracker"},
                "limits": {"max_bytes": limits.max_bytes, "max_pixels": limits.max_pixels}}

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics() -> Any:
        return PlainTextResponse(generate_latest(registry).decode(), media_type=CONTENT_TYPE_LATEST)

    return app
