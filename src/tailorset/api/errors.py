"""Every error leaves as `{"error": "<one sentence>"}`, with its status code chosen here, in one table."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from tailorset.captioners import CaptionerError
from tailorset.domain import errors

log = logging.getLogger("tailorset")

STATUS = {
    errors.Invalid: 400,
    errors.Unauthorized: 401,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Gone: 410,
    errors.PreconditionFailed: 412,
    errors.TooLarge: 413,
    errors.UnsupportedMedia: 415,
    errors.Unprocessable: 422,
    errors.RateLimited: 429,
    errors.NotSupported: 501,
}

HTTP_MESSAGES = {404: "No such endpoint.", 405: "This endpoint does not accept that HTTP method."}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def describe_validation_error(exc: ValidationError | RequestValidationError) -> str:
    """One sentence naming the first offending field, e.g. "caption must be a string."."""
    problem = exc.errors()[0]
    kind = problem.get("type", "")
    location = [str(part) for part in problem.get("loc", ()) if part not in ("body", "query", "path", "header")]
    if kind == "json_invalid":
        return "The request body is not valid JSON."
    if kind == "json_type" or (kind == "model_attributes_type" and not location):
        return "The request body must be a JSON object."
    if kind == "missing" and not location:
        return "The request body is missing."
    field = ".".join(location) or "The request body"
    if kind == "missing":
        return f"{field} is required."
    message = problem.get("msg", "is invalid").rstrip(".").removeprefix("Value error, ")
    message = message[0].lower() + message[1:] if message else "is invalid"
    message = message.replace("input should be", "must be").replace("value should be", "must be")
    return f"{field} {message}."


def _allowed_methods(request: Request) -> list[str]:
    routes = request.app.router.routes
    return [
        method
        for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)
    ]


async def domain_error(_request: Request, exc: errors.DomainError) -> JSONResponse:
    status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, errors.RateLimited) else None
    return error_response(status, exc.message, headers)


async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response(400, describe_validation_error(exc))


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    message = HTTP_MESSAGES.get(exc.status_code) or str(exc.detail)
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:  # every method the path answers, not only those of the first route matched
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return error_response(exc.status_code, message, headers)


async def captioner_error(request: Request, exc: CaptionerError) -> JSONResponse:
    log.error("Captioner failed on %s %s: %s", request.method, request.url.path, exc)
    return error_response(500, "The captioner failed on this image; nothing was changed.")


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The details go to the log, never to the client.
    log.exception("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "Internal server error; the request changed nothing.")


# Module functions, so that api/hot.py answers its errors with the very same handlers.
HANDLERS = {
    errors.DomainError: domain_error,
    RequestValidationError: validation_error,
    HTTPException: http_error,
    CaptionerError: captioner_error,
    Exception: unexpected,
}


def install(app: FastAPI) -> None:
    for kind, handler in HANDLERS.items():
        app.add_exception_handler(kind, handler)
