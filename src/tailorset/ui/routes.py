"""/ui: the caption review workbench, served as one HTML shell plus static ES modules and CSS.

Why plain JavaScript modules calling the public JSON API rather than server-rendered pages: the
workbench is interactive by nature (keyboard review, live FIBO validation, dry-run previews,
progress polling), and the API already answers every question it asks, with the errors users
must see. Driving it from the browser keeps one code path for people and scripts, no build step,
no npm in CI and no second, cookie-based way to authenticate (so no CSRF surface): the token a
user signs in with stays in the tab's sessionStorage and goes out in the `api_token` header.
A strict Content-Security-Policy (no inline script, nothing from other origins) stands between a
caption's text and the page; the scripts only ever put captions in the DOM as text.
"""

from __future__ import annotations

import hashlib
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from tailorset.domain.errors import NotFound

router = APIRouter(include_in_schema=False)

_STATIC = files("tailorset.ui") / "static"
_TYPES = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml", "json": "application/json"}


def _load() -> dict[str, tuple[bytes, str]]:
    """Every file the UI serves, read once: name → (bytes, ETag). Nothing outside this table is served."""
    found = {entry.name: entry.read_bytes() for entry in _STATIC.iterdir() if entry.name.rsplit(".", 1)[-1] in _TYPES}
    # The structured FIBO editor builds its form from the same schema the server validates against.
    found["fibo-schema.json"] = (files("tailorset.fibo") / "caption.schema.json").read_bytes()
    return {name: (data, '"' + hashlib.sha256(data).hexdigest()[:16] + '"') for name, data in found.items()}


_FILES = _load()
_SHELL = (files("tailorset.ui") / "index.html").read_bytes()


def _csp(request: Request) -> str:
    # Thumbnails come from the service itself, or from TAILORSET_PUBLIC_URL behind a proxy.
    public_url = request.app.state.services.settings.public_url
    images = "'self' data:" + (f" {public_url.rstrip('/')}" if public_url else "")
    return (
        f"default-src 'self'; img-src {images}; script-src 'self'; style-src 'self'; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


@router.get("/")
async def root():
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui")
async def ui_redirect():
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui/")
async def shell(request: Request):
    return Response(
        _SHELL,
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": _csp(request),
            "Cache-Control": "no-cache",
            "Referrer-Policy": "same-origin",
        },
    )


@router.get("/ui/static/{name}")
async def static(name: str, request: Request):
    if name not in _FILES:
        raise NotFound("No such file in the web UI.")
    data, etag = _FILES[name]
    # Revalidated on every load (cheap 304s), so a new release is never mixed with cached modules.
    headers = {"ETag": etag, "Cache-Control": "no-cache"}  # nosniff: on every response (observability)
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=_TYPES[name.rsplit(".", 1)[-1]], headers=headers)
