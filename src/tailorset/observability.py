"""Logs, request ids and metrics: what an operator needs to see a running deployment.

Every request gets an id (the caller's `X-Request-ID` if it sent a sane one, else a new one),
returned in the response header and attached to every log line written while serving it. Logs
are one JSON object per line when `TAILORSET_LOG_FORMAT=json`. Prometheus metrics are kept per
process (scrape each API process), with routes labelled by template, never by raw path."""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

REGISTRY = CollectorRegistry()
REQUESTS = Histogram(
    "tailorset_http_request_duration_seconds",
    "HTTP request latency by route template and status.",
    ("method", "route", "status"),
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CAPTIONS = Counter(
    "tailorset_captions_generated_total",
    "Automatic captions written, by captioner backend and by what asked for them.",
    ("captioner", "trigger"),
    registry=REGISTRY,
)
CAPTION_SECONDS = Histogram(
    "tailorset_caption_duration_seconds",
    "Time to caption one image (decoding it and running the captioner), by captioner backend.",
    ("captioner",),
    registry=REGISTRY,
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
QUEUE_DEPTH = Gauge(
    "tailorset_jobs",
    "Background jobs by status (queued, running), read at scrape time.",
    ("status",),
    registry=REGISTRY,
)


# Control characters in a logged value (a path, a message quoting input) could forge log lines or terminal escapes.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escaped(found: re.Match) -> str:
    code = ord(found[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str) -> str:
    """`text` on one line: each control character written as its escape (a newline as \\x0a)."""
    return _CONTROL.sub(_escaped, text)


def metrics_text() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class _Formatter(logging.Formatter):
    """formatTime's text for the current second, written once: every access log line asks for it."""

    _second: tuple[int, str | None] = (-1, None)
    _stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = (int(record.created), datefmt)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime(datefmt or self.default_time_format, self.converter(record.created))
        return self._stamp if datefmt else self.default_msec_format % (self._stamp, record.msecs)


class JsonFormatter(_Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if rid := request_id.get():
            entry["request_id"] = rid
        for key in ("method", "path", "route", "status", "duration_ms"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(_Formatter):
    """One record, one line: every field is escaped; a traceback follows on indented lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape(super().formatMessage(record))

    def formatException(self, exc_info) -> str:
        return "\n".join("    " + escape(line) for line in super().formatException(exc_info).splitlines())

    def formatStack(self, stack_info: str) -> str:
        return "\n".join("    " + escape(line) for line in stack_info.splitlines())


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        return True


def configure_logging(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
        logging.Formatter.converter = time.gmtime
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    # What neither format prints is not collected for each record (the logging documentation's "Optimization"):
    # the caller's file and line (a walk up the stack), the thread's and the process's names.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


access_log = logging.getLogger("tailorset.access")
# REQUESTS' series by (method, route, status), as REQUESTS keeps them (looking one up takes a lock and a str).
_LATENCY: dict[tuple[str, str, int], Histogram] = {}
_NOSNIFF = (b"x-content-type-options", b"nosniff")


class ObservabilityMiddleware:
    """Pure ASGI (no per-request task or body buffering): request id, access log line, latency metric; and
    `nosniff` on every response, so no browser runs a stored file or an error body as something else."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if _SANE_ID.match(incoming) else os.urandom(16).hex()  # as uuid4().hex, at a third of the cost
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode()), _NOSNIFF]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path_format", None) or "unmatched"
            labels = (scope["method"], route, status)
            if (latency := _LATENCY.get(labels)) is None:
                latency = _LATENCY[labels] = REQUESTS.labels(scope["method"], route, str(status))
            latency.observe(elapsed)
            access_log.info(
                "%s %s %s %.1f ms", scope["method"], scope["path"], status, elapsed * 1000,
                extra={"method": scope["method"], "path": scope["path"], "route": route, "status": status,
                       "duration_ms": round(elapsed * 1000, 1)},
            )  # fmt: skip
            request_id.reset(token)
