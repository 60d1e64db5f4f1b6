"""/healthz, /readyz, /metrics: for load balancers, orchestrators and Prometheus (no api_token)."""

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from tailorset.api.body_limit import ApiRoute
from tailorset.api.deps import Svc
from tailorset.db import jobs
from tailorset.observability import QUEUE_DEPTH, metrics_text

router = APIRouter(tags=["Operations"], route_class=ApiRoute)


@router.get("/healthz", summary="Liveness", description="The process is up and serving.")
async def healthz():
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness",
    description="The database, the file store and the job queue answer. 503 (with what failed) when not.",
    responses={503: {"description": "A dependency is unavailable."}},
)
async def readyz(services: Svc):
    checks = {}
    try:
        async with services.db.read() as session:
            await jobs.ping(session)
        checks["database"] = checks["queue"] = "ok"
    except Exception as exc:
        checks["database"] = checks["queue"] = f"error: {type(exc).__name__}"
    try:
        await services.storage.exists("readyz-probe")
        checks["storage"] = "ok"
    except Exception as exc:
        checks["storage"] = f"error: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ready" if ready else "unavailable", "checks": checks}, 200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(services: Svc):
    async with services.db.read() as session:
        counts = await jobs.active_counts(session)
    for status, count in counts.items():
        QUEUE_DEPTH.labels(status).set(count)
    body, content_type = metrics_text()
    return Response(body, media_type=content_type)
