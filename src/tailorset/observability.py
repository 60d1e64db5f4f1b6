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
    """One line per record, laid out by `line()`, which the access log also calls directly (log_access)."""

    _second: tuple[int, str | None] = (-1, None)
    _stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self.stamp(record.created, datefmt)

    def stamp(self, created: float, datefmt: str | None = None) -> str:
        """formatTime's text. The current second's is written once: every access log line asks for it."""
        second = (int(created), datefmt)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime(datefmt or self.default_time_format, self.converter(created))
        return self._stamp if datefmt else self.default_msec_format % (self._stamp, _msecs(created))

    def line(self, created: float, level: str, name: str, rid: str | None, message: str, fields: dict) -> str:
        raise NotImplementedError


def _msecs(created: float) -> int:
    """The milliseconds of a time, as LogRecord.msecs has them."""
    return int((created - int(created)) * 1000)


class JsonFormatter(_Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = {key: getattr(record, key) for key in ACCESS_FIELDS if hasattr(record, key)}
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return self.line(record.created, record.levelname, record.name, request_id.get(), record.getMessage(), fields)

    def line(self, created, level, name, rid, message, fields) -> str:
        entry = {
            "time": self.stamp(created, "%Y-%m-%dT%H:%M:%S") + f".{_msecs(created):03d}Z",
            "level": level.lower(),
            "logger": name,
            "message": message,
        }
        if rid:
            entry["request_id"] = rid
        return json.dumps(entry | fields, ensure_ascii=False)


class TextFormatter(_Formatter):
    """One record, one line: every field is escaped; a traceback follows on indented lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return self.line(record.created, record.levelname, record.name, request_id.get(), record.message, {})

    def usesTime(self) -> bool:
        return False  # line() writes the time itself

    def line(self, created, level, name, rid, message, fields) -> str:
        return escape(f"{self.stamp(created)} {level} {name} [{rid or '-'}] {message}")

    def formatException(self, exc_info) -> str:
        return "\n".join("    " + escape(line) for line in super().formatException(exc_info).splitlines())

    def formatStack(self, stack_info: str) -> str:
        return "\n".join("    " + escape(line) for line in stack_info.splitlines())


def configure_logging(level: str = "info", fmt: str = "text") -> None:
    global _configured
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
        logging.Formatter.converter = time.gmtime
    else:
        handler.setFormatter(TextFormatter())
    # What neither format prints is not collected for each record (the logging documentation's "Optimization"):
    # the caller's file and line (a walk up the stack), the thread's and the process's names.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    _configured = handler


access_log = logging.getLogger("tailorset.access")
ACCESS_FIELDS = ("method", "path", "route", "status", "duration_ms")  # of an access log record, in JSON
_configured: logging.StreamHandler | None = None  # the handler configure_logging installed, with a _Formatter


def log_access(method: str, path: str, route: str, status: int, elapsed: float) -> None:
    """One request's access log line. While the handler configure_logging installed is the only one, its formatter
    lays the line out and it is written at once, unbuffered, as StreamHandler would write it, without a LogRecord
    and logging's dispatch: they were a fifth of a cached GET's time in the app. Otherwise, through logging."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    ms = elapsed * 1000
    message = f"{method} {path} {status} {ms:.1f} ms"
    fields = {"method": method, "path": path, "route": route, "status": status, "duration_ms": round(ms, 1)}
    if (handler := _direct_handler()) is not None:
        line = handler.formatter.line(time.time(), "INFO", access_log.name, request_id.get(), message, fields)
        try:
            with handler.lock:
                handler.stream.write(line + handler.terminator)
                handler.stream.flush()
            return
        except Exception:  # logging reports it its own way (Handler.handleError)
            pass
    access_log.info(message, extra=fields)


def _direct_handler() -> logging.StreamHandler | None:
    """configure_logging's handler, if logging would hand an access record to it alone, unfiltered."""
    handler, root = _configured, logging.root
    alone = handler is not None and root.handlers == [handler] and isinstance(handler.formatter, _Formatter)
    plain = not (access_log.handlers or access_log.filters or root.filters) and access_log.propagate
    return handler if alone and plain and not handler.filters and handler.level <= logging.INFO else None


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
            log_access(scope["method"], scope["path"], route, status, elapsed)
            request_id.reset(token)
