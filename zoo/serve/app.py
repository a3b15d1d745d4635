"""The demo page's Starlette application: the page, its files, and three JSON routes.

    GET  /                 the page (static/index.html); /static/... its script and style
    GET  /api/checkpoints  the checkpoints to choose from, and the upload limits
    POST /api/face         form fields ``audio`` (a clip) and ``checkpoint``: the face
    POST /api/interpolate  ``first``, ``second``, ``steps``, ``checkpoint``: the strip

Every failure is JSON ``{"error": one line}`` with a 4xx status (5xx only for a bug, still one
line): bad audio gets the same reason as ``generate`` gives it. Bodies over the size limit are
refused before they are read whole. Drawing runs in a worker thread, so the page and other
requests are served meanwhile; each answer carries its latency.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from zoo.callbacks import SILENT, Progress
from zoo.errors import AudioError, AudioTooLongError, CheckpointError, UsageError, ZooError, last_line
from zoo.serve.faces import MAX_SECONDS, MAX_UPLOAD_BYTES, STEPS_RANGE, FaceService, Upload

STATIC = Path(__file__).parent / "static"


class UploadTooLargeError(ZooError):
    """The request body is over the upload limit."""


# The most specific class of a ZooError decides its status; anything else the user sent is 400.
STATUS = [(UploadTooLargeError, 413), (AudioTooLongError, 413), (AudioError, 422), (CheckpointError, 404),
          (ZooError, 400)]


def _too_large(limit: int, size: int | None = None) -> UploadTooLargeError:
    what = f"the upload is {size / 2**20:.1f} MB," if size is not None else "the upload is"
    return UploadTooLargeError(f"{what} over the {limit / 2**20:g} MB limit; "
                               f"send a shorter clip or a compressed one (ogg, mp3, webm)")


def error_response(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    """The one shape of every failure: ``{"error": one line}``."""
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status, headers=headers)


class BodyLimit:
    """ASGI middleware: refuse a body over ``max_bytes`` from its announced length, or (sent in
    chunks without one) as soon as the bytes received pass the limit."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        announced = dict(scope["headers"]).get(b"content-length", b"")
        if announced.isdigit() and int(announced) > self.max_bytes:
            exc = _too_large(self.max_bytes, int(announced))
            await error_response(413, str(exc), {"Connection": "close"})(scope, receive, send)
            return
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _too_large(self.max_bytes)
            return message

        await self.app(scope, counted, send)


async def index(request: Request) -> FileResponse:
    return FileResponse(STATIC / "index.html")


async def list_checkpoints(request: Request) -> JSONResponse:
    service: FaceService = request.app.state.service
    choices = await run_in_threadpool(service.choices)
    return JSONResponse({"checkpoints": choices,
                         "limits": {"max_bytes": request.app.state.max_bytes, "max_seconds": MAX_SECONDS,
                                    "steps": list(STEPS_RANGE)}})


async def _form(request: Request) -> tuple[dict, dict]:
    """The form's files (as ``Upload``) and its text fields."""
    form = await request.form(max_files=2, max_fields=8)
    files, fields = {}, {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            files[key] = Upload(value.filename or "", await value.read())
        else:
            fields[key] = value
    return files, fields


def _clip(files: dict, field: str) -> Upload:
    if field not in files:
        raise UsageError(f"send the clip as the file field '{field}' of a multipart form")
    return files[field]


def _face(service: FaceService, files: dict, fields: dict) -> dict:
    return service.face(fields.get("checkpoint"), _clip(files, "audio"))


def _interpolation(service: FaceService, files: dict, fields: dict) -> dict:
    steps = fields.get("steps", "8")
    if not steps.strip().isdigit():
        raise UsageError(f"steps must be a whole number, not '{steps}'")
    return service.interpolation(fields.get("checkpoint"), _clip(files, "first"), _clip(files, "second"),
                                 int(steps))


async def _answer(request: Request, work) -> JSONResponse:
    """Run ``work(service, files, fields)`` in a worker thread; its result or one error line."""
    started = time.perf_counter()
    progress: Progress = request.app.state.progress
    try:
        files, fields = await _form(request)
        payload = await run_in_threadpool(work, request.app.state.service, files, fields)
    except HTTPException:
        raise
    except ZooError as exc:
        status = next(code for kind, code in STATUS if isinstance(exc, kind))
        progress.message(f"{request.url.path}: {status} {last_line(exc)}")
        return error_response(status, str(exc))
    except Exception as exc:  # a bug, not the user's doing: one line, and the server goes on
        progress.message(f"{request.url.path}: 500 {last_line(exc, with_type=True)}")
        return error_response(500, f"internal error: {last_line(exc, with_type=True)}")
    payload["checkpoint"] = fields.get("checkpoint") or None
    payload["latency_s"] = round(time.perf_counter() - started, 3)
    progress.message(f"{request.url.path}: {', '.join(payload.get('files', [payload.get('file')]))} "
                     f"in {payload['latency_s']:.2f} s")
    return JSONResponse(payload)


async def face(request: Request) -> JSONResponse:
    return await _answer(request, _face)


async def interpolation(request: Request) -> JSONResponse:
    return await _answer(request, _interpolation)


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """Starlette's own refusals (no such route, wrong method, a malformed form) as one JSON line."""
    message = f"{request.method} {request.url.path}: {exc.detail}"
    request.app.state.progress.message(f"{exc.status_code} {message}")
    return error_response(exc.status_code, message, exc.headers)


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` for the server (port 0: a free one), or one line why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:  # in use, not allowed, or no such address
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror or last_line(exc)}); "
                         f"choose another --port or --host") from None
    return sock


def create_app(service: FaceService, *, max_bytes: int = MAX_UPLOAD_BYTES, progress: Progress = SILENT) -> Starlette:
    """The application serving ``service``'s checkpoints; ``progress`` hears one line per request."""
    routes = [Route("/", index), Route("/api/checkpoints", list_checkpoints),
              Route("/api/face", face, methods=["POST"]),
              Route("/api/interpolate", interpolation, methods=["POST"]),
              Mount("/static", StaticFiles(directory=STATIC), name="static")]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error},
                    middleware=[Middleware(BodyLimit, max_bytes=max_bytes)])
    app.state.service, app.state.progress, app.state.max_bytes = service, progress, max_bytes
    return app
