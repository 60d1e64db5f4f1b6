"""The running record of one check: corrections, errors and warnings, plus JSON-path helpers."""

from __future__ import annotations

import json
import re

from .result import Correction, Problem

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def join_path(base: str, key: str) -> str:
    """`caption` + `lighting` -> `caption.lighting`; odd keys are quoted: `caption["hair color"]`."""
    if _IDENTIFIER.match(key):
        return f"{base}.{key}"
    return f"{base}[{json.dumps(key)}]"


class Unreadable(Exception):
    """No JSON object can be read from the text: the check stops with this one error."""

    def __init__(self, rule: str, path: str, message: str) -> None:
        super().__init__(message)
        self.problem = Problem(rule, path, message)


class Log:
    __slots__ = ("corrections", "errors", "warnings", "index_maps", "_seen")

    def __init__(self) -> None:
        self.corrections: list[Correction] = []
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []
        # id(list in the repaired caption) -> original index of each item, for lists whose empty items
        # were dropped, so error paths still point at the item the user wrote.
        self.index_maps: dict[int, list[int]] = {}
        self._seen: set[Correction] = set()

    def fix(self, rule: str, path: str, detail: str) -> None:
        correction = Correction(rule, path, detail)
        if correction not in self._seen:  # e.g. prose both before and after the object: say it once
            self._seen.add(correction)
            self.corrections.append(correction)

    def error(self, rule: str, path: str, message: str) -> None:
        self.errors.append(Problem(rule, path, message))

    def warn(self, rule: str, path: str, message: str) -> None:
        self.warnings.append(Problem(rule, path, message))
