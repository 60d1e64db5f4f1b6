"""create_app(settings): wiring only — routes, middleware, error mapping."""

from __future__ import annotations

from contextlib import asynccontextmanager
from importlib.metadata import version

import anyio
from fastapi import FastAPI

from tailorset.api import captions, datasets, errors, files, health, helpers, images, projects
from tailorset.config import Settings
from tailorset.observability import ObservabilityMiddleware
from tailorset.ratelimit import RateLimiter
from tailorset.services import Services
from tailorset.ui import routes as ui
from tailorset.worker import Worker

DESCRIPTION = """\
Image datasets and their captions for fine-tuning text-to-image models, speaking Bria's Tailored
Generation dataset API. Authenticate every call with the `api_token` header. Every path is served
both at the root and under `/v1`. Errors are `{"error": "<one sentence>"}`."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with Services.open(settings) as services, anyio.create_task_group() as background:
            app.state.services = services
            app.state.rate_limiter = RateLimiter(
                settings.rate_limit_default, settings.redis_url, settings.redis_key_prefix
            )
            worker = Worker(services) if settings.embedded_worker else None
            if worker:
                background.start_soon(worker.run)
            yield
            if worker:
                worker.stop()
                with anyio.move_on_after(10):  # a batch in flight finishes; after that, it would be redone
                    await worker.stopped.wait()
            background.cancel_scope.cancel()

    app = FastAPI(
        title="tailorset",
        version=version("tailorset"),
        description=DESCRIPTION,
        lifespan=lifespan,
        servers=[{"url": "/"}, {"url": "/v1"}],
    )
    errors.install(app)
    # Images first: Update Image Caption is the hottest route, and routes are matched in order.
    for router in (images.router, datasets.router, projects.router, captions.router, helpers.router):
        app.include_router(router)
    app.include_router(files.router)
    app.include_router(health.router)
    app.include_router(ui.router)  # the web UI at /ui, outside the API schema
    app.add_middleware(ObservabilityMiddleware)
    app.add_middleware(VersionPrefix)
    app.openapi = lambda: _openapi(app)
    return app


class VersionPrefix:
    """Serves /v1/tailored-gen/… as /tailored-gen/…, as Bria does, without registering every route twice."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith("/v1/tailored-gen/"):
            scope = {**scope, "path": scope["path"][3:]}
            if scope.get("raw_path"):
                scope["raw_path"] = scope["raw_path"][3:]
        await self.app(scope, receive, send)


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
    components.setdefault("ErrorBody", {
        "title": "ErrorBody", "type": "object", "required": ["error"],
        "properties": {"error": {"type": "string", "title": "Error"}},
    })  # fmt: skip
    app.openapi_schema = schema
    return schema
