"""The review page's ASGI app (Starlette): the page, its three static files, the run's images, the
labels API and the calibration fit.

Security (the page is local; these keep another site or user from using it):
- label-changing requests (``POST``) need the per-server token of the page in ``X-Review-Token``;
  a cross-site form or script cannot set that header, so it gets 403;
- only the run's own images are served, by their key: ``..``, ``.``, empty segments, backslashes,
  absolute paths and percent-encoded ``/`` ``\\`` ``.`` are refused before any file is looked at,
  and a file whose real path (symlinks resolved) leaves the image root / run folder gets 403;
- on a loopback bind only loopback ``Host`` headers are answered (DNS rebinding);
- every error is JSON ``{"error": message}`` with a 4xx/5xx code, never a traceback.
"""

from __future__ import annotations

import io
import json
import re
import secrets
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from ..verdict import FLAGS
from .fit import FitJob
from .run import ReviewRun, public_row
from .store import VERDICTS, LabelStore, StoreError, label_studio_tasks

STATIC = Path(__file__).parent / "static"
ASSETS = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
BROWSER_IMAGES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
                  ".gif": "image/gif", ".bmp": "image/bmp"}  # fmt: skip
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
_ENCODED = re.compile(rb"%(2f|5c|2e|00)", re.IGNORECASE)
_MAX_BODY = 64 * 1024  # one label is ~200 bytes
_HEADERS = {
    # no inline script or style, nothing from elsewhere: the page works offline and an injected
    # string in a file name cannot run
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=_HEADERS)


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers={**_HEADERS, "Cache-Control": "no-store"})


class Review:
    """State of one review server: the run, its label store, the token and the fit job."""

    def __init__(self, run: ReviewRun, labels: Path, *, loopback_only: bool = True, token: str | None = None):
        self.run = run
        self.labels_path = labels
        self.store = LabelStore(labels, [r["key"] for r in run.rows], run.vocab)
        self.token = token or secrets.token_urlsafe(32)
        self.loopback_only = loopback_only
        self.fit = FitJob(run, labels)

    # -- helpers ---------------------------------------------------------------------------------
    def progress(self, labels: dict[str, Any]) -> dict[str, int]:
        keys = {r["key"] for r in self.run.rows}
        return {"labelled": sum(k in keys for k in labels), "total": len(keys)}

    def _check_token(self, request: Request) -> None:
        sent = request.headers.get("x-review-token", "")
        if not secrets.compare_digest(sent.encode(), self.token.encode()):
            raise HTTPException(403, "missing or wrong X-Review-Token: reload the review page")

    async def _body(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > _MAX_BODY:
            raise HTTPException(413, f"request body of {len(raw)} bytes; at most {_MAX_BODY}")
        try:
            data = json.loads(raw or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise HTTPException(400, "request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise HTTPException(400, "request body must be a JSON object")
        return data

    # -- routes ----------------------------------------------------------------------------------
    async def index(self, request: Request) -> Response:
        html = (STATIC / "index.html").read_text(encoding="utf-8").replace("{{TOKEN}}", self.token)
        return Response(
            html, media_type="text/html; charset=utf-8", headers={**_HEADERS, "Cache-Control": "no-store"}
        )

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            raise HTTPException(404, f"no asset {name!r}")
        return FileResponse(STATIC / name, media_type=ASSETS[name], headers=_HEADERS)

    async def image(self, request: Request) -> Response:
        raw = request.scope.get("raw_path") or b""
        if _ENCODED.search(raw):
            raise HTTPException(400, "percent-encoded '/', '\\', '.' or NUL in an image path are refused")
        key = request.path_params["key"]
        segs = key.split("/")
        if (
            key.startswith("/")
            or "\\" in key
            or "\x00" in key
            or re.match(r"^[A-Za-z]:", key)
            or any(s in ("", ".", "..") for s in segs)
        ):
            raise HTTPException(
                400, f"image path {key!r} refused: give a run image's path as the page lists it"
            )
        row = self.run.row(key)
        if row is None:
            raise HTTPException(404, f"{key!r} is not an image of this run")
        path = row["abspath"]
        if not self.run.allowed(path) or not path.is_file():
            raise HTTPException(
                403, f"{key!r} resolves outside the run's image folder (symlink?); not served"
            )
        real = path.resolve()
        media = BROWSER_IMAGES.get(real.suffix.lower())
        if media:
            return FileResponse(real, media_type=media, headers=_HEADERS)
        from PIL import Image  # other formats (TIFF...): decoded as scoring decodes them, sent as PNG

        from ..imageio import load_image

        buf = io.BytesIO()
        Image.fromarray(load_image(real, max_pixels=None).rgb).save(buf, "PNG")
        return Response(buf.getvalue(), media_type="image/png", headers=_HEADERS)

    async def state(self, request: Request) -> Response:
        labels = self.store.all()
        run = self.run
        return _json({
            "run": str(run.run_dir), "root": str(run.root), "labels_file": str(self.labels_path),
            "vocab": run.vocab, "verdicts": list(VERDICTS), "flags": list(FLAGS),
            "rows": [public_row(r) for r in run.rows], "order": run.order,
            "labels": {k: v for k, v in labels.items() if run.row(k) is not None},
            "progress": self.progress(labels), "skipped": run.skipped,
            "has_archetypes": any(r.get("archetype") for r in run.rows),
            "fit": self.fit.state(),
        })  # fmt: skip

    async def set_label(self, request: Request) -> Response:
        self._check_token(request)
        data = await self._body(request)
        key = data.get("file")
        if not isinstance(key, str) or self.run.row(key) is None:
            raise HTTPException(404, f"file {key!r} is not an image of this run")
        has_set, has_replace = isinstance(data.get("set"), dict), isinstance(data.get("replace"), dict)
        if has_set == has_replace:
            raise HTTPException(
                422, "give exactly one of `set` (fields to change) or `replace` (the whole label), an object"
            )
        try:
            label = self.store.update(
                key,
                data["replace" if has_replace else "set"],
                replace=has_replace,
                copies=self.run.copies.get(key, ()),
            )
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        except StoreError as e:
            return _error(507, str(e))
        return _json({"file": key, "label": label, "progress": self.progress(self.store.all())})

    async def export_label_studio(self, request: Request) -> Response:
        labels = {k: v for k, v in self.store.all().items() if self.run.row(k) is not None}
        body = json.dumps(label_studio_tasks(labels), indent=1, ensure_ascii=False)
        return Response(body, media_type="application/json", headers={
            **_HEADERS, "Content-Disposition": 'attachment; filename="labels.labelstudio.json"'})  # fmt: skip

    async def start_fit(self, request: Request) -> Response:
        self._check_token(request)
        n = self.progress(self.store.all())["labelled"]
        if n == 0:
            raise HTTPException(409, "nothing labelled yet: label some images, then fit")
        if not self.fit.start(n):
            raise HTTPException(409, "a fit is already running")
        return _json(self.fit.state(), 202)

    async def fit_state(self, request: Request) -> Response:
        return _json(self.fit.state())


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, str(exc.detail))


async def _server_error(request: Request, exc: Exception) -> Response:
    return _error(500, f"internal error ({type(exc).__name__}); the labels file is unchanged")


def create_app(review: Review) -> HostGuard:
    """The ASGI app of ``review``."""
    routes = [
        Route("/", review.index),
        Route("/static/{name}", review.asset),
        Route("/img/{key:path}", review.image),
        Route("/api/state", review.state),
        Route("/api/labels", review.set_label, methods=["POST"]),
        Route("/api/export/labelstudio", review.export_label_studio),
        Route("/api/fit", review.start_fit, methods=["POST"]),
        Route("/api/fit", review.fit_state, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error, Exception: _server_error})
    return HostGuard(app, review.loopback_only)


class HostGuard:
    """ASGI wrapper answering only loopback ``Host`` headers on a loopback bind: a page of another
    site whose name was re-pointed at 127.0.0.1 (DNS rebinding) cannot read the run."""

    def __init__(self, app: Starlette, loopback_only: bool):
        self.app, self.loopback_only = app, loopback_only

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and self.loopback_only:
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            name = host if host.endswith("]") else host.rsplit(":", 1)[0]
            if name not in LOOPBACK_HOSTS:
                await _error(400, f"Host {host!r} refused: open the page at http://127.0.0.1")(
                    scope, receive, send
                )
                return
        await self.app(scope, receive, send)
