"""The access log line (observability.log_access): written directly while configure_logging's handler is the only
one, through logging otherwise — the same line either way, in both formats."""

from __future__ import annotations

import json
import logging
import re

import pytest

from tailorset import observability
from tailorset.observability import configure_logging, log_access, request_id


@pytest.fixture
def logs(capsys):
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.Formatter.converter
    token = request_id.set("req-7")
    yield capsys
    request_id.reset(token)
    root.handlers[:], logging.Formatter.converter = saved[0], saved[2]
    root.setLevel(saved[1])


def both_ways(capsys) -> tuple[str, str]:
    """The line log_access writes directly, then the one it hands to logging (a root filter rules out writing
    directly: logging must apply it)."""
    log_access("GET", "/healthz\nFORGED", "unmatched", 404, 0.0015)
    root = logging.getLogger()
    root.addFilter(everything := logging.Filter())
    try:
        log_access("GET", "/healthz\nFORGED", "unmatched", 404, 0.0015)
    finally:
        root.removeFilter(everything)
    direct, through_logging = capsys.readouterr().err.splitlines()
    return direct, through_logging


def test_the_text_line_is_the_same_either_way(logs):
    configure_logging("info", "text")
    assert observability._direct_handler() is logging.getLogger().handlers[0]
    direct, through_logging = both_ways(logs)
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "
    assert re.match(stamp, direct) and re.match(stamp, through_logging)
    assert direct[24:] == through_logging[24:] == "INFO tailorset.access [req-7] GET /healthz\\x0aFORGED 404 1.5 ms"


def test_the_json_line_is_the_same_either_way(logs):
    configure_logging("info", "json")
    direct, through_logging = (json.loads(line) for line in both_ways(logs))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", direct.pop("time"))
    through_logging.pop("time")
    assert direct == through_logging == {
        "level": "info", "logger": "tailorset.access", "message": "GET /healthz\nFORGED 404 1.5 ms",
        "request_id": "req-7", "method": "GET", "path": "/healthz\nFORGED", "route": "unmatched", "status": 404,
        "duration_ms": 1.5,
    }  # fmt: skip


def test_nothing_is_written_below_the_access_logs_level(logs):
    configure_logging("warning", "text")
    log_access("GET", "/healthz", "/healthz", 200, 0.001)
    assert logs.readouterr().err == ""


def test_another_handler_gets_the_record(logs, caplog):
    configure_logging("info", "text")
    logging.getLogger().addHandler(caplog.handler)  # another handler beside ours: the record goes through logging
    log_access("PUT", "/x", "/x", 200, 0.002)
    assert [record.getMessage() for record in caplog.records] == ["PUT /x 200 2.0 ms"]
    assert observability._direct_handler() is None
