"""create_app(settings): wiring only — routes, middleware, error mapping."""

from __future__ import annotations

import functools
import gc
import json
import logging
import os
import time
from contextlib import asynccontextmanager
from importlib.metadata import version

import anyio
from fastapi import FastAPI

from tailorset.api import captions, datasets, errors, files, health, helpers, images, projects, review, transfer
from tailorset.api.hot import HotRoutes
from tailorset.config import Settings
from tailorset.observability import ObservabilityMiddleware
from tailorset.ratelimit import RateLimiter
from tailorset.schemas import ImageUpload
from tailorset.services import Services
from tailorset.ui import routes as ui
from tailorset.worker import Worker

log = logging.getLogger(__name__)

DESCRIPTION = """\
Image datasets and their captions for fine-tuning text-to-image models, speaking Bria's Tailored
Generation dataset API. Authenticate every call with the `api_token` header. Every path is served
at the root and under `/v1` and `/v2`, as Bria's are. Errors are `{"error": "<one sentence>"}`; under `/v2` they
are Bria's v2 error object, `{"error": {"code", "message", "details"}, "request_id"}`, which `bria-client` reads."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with Services.open(settings) as services, anyio.create_task_group() as background:
            app.state.services = services
            # Rate-limit keys in Redis are namespaced by a value only this database's deployment knows.
            namespace = services.signer.signature("rate-limits")[:16]
            app.state.rate_limiter = RateLimiter(settings.rate_limit_default, settings.redis_url, namespace)
            if settings.preload_captioner:
                background.start_soon(_prepare_captioner, services)
            worker = Worker(services) if settings.embedded_worker else None
            if worker:
                background.start_soon(worker.run)
            _freeze_startup_heap()
            yield
            if worker:
                worker.stop()
                with anyio.move_on_after(10):  # a batch in flight finishes; after that, it would be redone
                    await worker.stopped.wait()
            background.cancel_scope.cancel()

    app = FastAPI(
        telemetry=None if _opentelemetry_configured() else {"tracing": False, "metrics": False, "logs": False},
        title="tailorset",
        version=version("tailorset"),
        description=DESCRIPTION,
        lifespan=lifespan,
        servers=[{"url": "/"}, {"url": "/v1"}, {"url": "/v2"}],
    )
    errors.install(app)
    # Images first: Update Image Caption is the hottest route, and routes are matched in order.
    routers = (images.router, transfer.router, datasets.router, projects.router, captions.router, helpers.router)
    routers += (review.router,)  # tailorset's own review endpoints
    for router in routers:
        app.include_router(router)
    app.include_router(transfer.downloads)
    app.include_router(files.router)
    app.include_router(health.router)
    app.include_router(ui.router)  # the web UI at /ui, outside the API schema
    app.add_middleware(HotRoutes)  # Get Image and Update Image Caption, without FastAPI's routing (api/hot.py)
    app.add_middleware(ObservabilityMiddleware)
    app.add_middleware(VersionPrefix)
    app.openapi = lambda: _openapi(app)
    return app


@functools.cache
def _freeze_startup_heap() -> None:
    """Exempt what the process has built by the end of its startup (modules, the app, its services: ~180,000
    objects, all living as long as the process) from the garbage collector's full passes, once per process. Under
    load a full pass came every few seconds and, walking all of it, stalled the event loop ~90 ms: that was the
    caption PUT's p99 at 16 connections (58 ms; 9 ms frozen, bench/api_overhead.py)."""
    gc.collect()  # what is garbage now is collected, not frozen
    gc.freeze()


def _opentelemetry_configured() -> bool:
    """FastAPI's native OpenTelemetry looks up the global providers on every request. tailorset sets none up: it
    stays on only where the environment configures OpenTelemetry (OTEL_* variables, FASTAPI_OTEL_AUTO_CONFIGURE)."""
    return any(name.startswith(("OTEL_", "FASTAPI_OTEL_")) for name in os.environ)


async def _prepare_captioner(services: Services) -> None:
    """Warm the captioner in the background: the server answers at once, and the first upload waits for the
    models only if it comes before they are ready. A failure here is logged; the request that needs the
    captioner reports it."""
    started = time.perf_counter()
    try:
        await anyio.to_thread.run_sync(services.prepare_captioner, abandon_on_cancel=True)
    except Exception as exc:
        log.warning("The captioner could not be prepared in advance: %s", exc)
    else:
        log.info("Captioner %r ready in %.1f s.", services.captioner.name, time.perf_counter() - started)


class VersionPrefix:
    """Serves /v1/… and /v2/… as /…, as Bria does, without registering every route twice.

    Bria's v2 API (and its SDK, `bria-client`, which builds every URL as `{base}/v2/{endpoint}`) reports an
    error as `{"error": {"code", "message", "details"}, "request_id"}`; under /v2 our `{"error": "…"}` bodies
    leave in that shape, so the SDK's BriaError carries our sentence."""

    PREFIXES = ("/v1/", "/v2/")
    ROOTS = ("tailored-gen/", "datasets/")  # datasets/{id}/download is outside /tailored-gen in Bria's spec

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        path = scope["path"] if scope["type"] == "http" else ""
        version = path[:4]
        if version not in self.PREFIXES or not path[4:].startswith(self.ROOTS):
            return await self.app(scope, receive, send)
        scope = {**scope, "path": path[3:]}
        if scope.get("raw_path"):
            scope["raw_path"] = scope["raw_path"][3:]
        await self.app(scope, receive, send if version == "/v1/" else _v2_errors(send))


def _v2_errors(send):
    """Rewrites an error response's `{"error": "<sentence>"}` body into Bria's v2 error object."""
    start, chunks = None, []

    async def rewrite(message):
        nonlocal start
        if message["type"] == "http.response.start" and message["status"] >= 400:
            start = message  # held back until the body is known: its length changes
            return
        if start is None or message["type"] != "http.response.body":
            return await send(message)
        chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        headers, body = dict(start.get("headers", [])), b"".join(chunks)
        try:
            sentence = json.loads(body)["error"] if headers.get(b"content-type") == b"application/json" else None
        except (ValueError, KeyError, TypeError):
            sentence = None
        if isinstance(sentence, str):
            rid = headers.get(b"x-request-id", b"").decode("latin-1") or None
            error = {"code": start["status"], "message": sentence, "details": sentence}
            body = json.dumps({"error": error, "request_id": rid}).encode()
        kept = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
        await send({**start, "headers": [*kept, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return rewrite


def _openapi(app: FastAPI) -> dict:
    """FastAPI documents request validation as 422; this service answers 400 `{"error": …}`."""
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes, servers=app.servers
    )
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path in schema["paths"].values():
        for operation in path.values():
            responses = operation.get("responses", {})
            generated = responses.get("422", {}).get("content", {}).get("application/json", {}).get("schema", {})
            if generated.get("$ref", "").endswith("/HTTPValidationError"):
                del responses["422"]
                responses.setdefault(
                    "400",
                    {"description": "The request is malformed; the message names the field.",
                     "content": {"application/json": {"schema": error_ref}}},
                )  # fmt: skip
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    # Upload Image parses its own body (JSON or multipart), so FastAPI does not see the model it references.
    components["ImageUpload"] = ImageUpload.model_json_schema(ref_template="#/components/schemas/{model}")
    components.setdefault("ErrorBody", {
        "title": "ErrorBody", "type": "object", "required": ["error"],
        "properties": {"error": {"type": "string", "title": "Error"}},
    })  # fmt: skip
    app.openapi_schema = schema
    return schema
