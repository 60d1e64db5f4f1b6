"""The check pipeline: fast path for canonical captions, slow path with repairs, then validation.

Fast path (fast.py): a caption in canonical form with nothing to repair or warn about is accepted by one
compiled validation and a byte-for-byte comparison with its re-serialisation. Next, a caption that parses
and normalises to itself: json.loads, normalise (finds nothing to fix), dump, and the dump equals the
input byte for byte — which also proves there were no repeated keys — then validate once. Anything else
takes the slow path: text repairs (syntax.py), unwrapping and structural repairs (repair.py),
validation, and the mapping of jsonschema errors to one-sentence problems with JSON paths.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable
from typing import Any

from jsonschema.exceptions import ValidationError

from . import fast
from .log import Log, Unreadable, join_path
from .repair import EMPTY, caption_envelope, clean_free_form, describe, normalise, unwrap, visual_schema_envelope
from .result import CaptionCheck, Correction, Problem
from .schema import MAX_TOKENS, ROOT, VALIDATOR, Shape
from .syntax import read_json

logger = logging.getLogger(__name__)

CAPTION = "caption"
VISUAL_SCHEMA = "visual_schema"
CHARS_PER_TOKEN = 4  # rough figure for English text in SmolLM3's tokenizer (fibo-schema.md §5.5)
_ARTIFACT = re.compile(r"\bend of [a-z_ ]{1,40}answer\b", re.I)


def _dump(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True)


def canonical_json(obj: dict[str, Any]) -> str:
    """Canonical serialisation: empties dropped, canonical key order at every level, compact JSON.

    Values are not otherwise changed; keys the schema does not know are kept after the known ones.
    """
    canonical = _canonical(obj, ROOT)
    return _dump({} if canonical is EMPTY else canonical)


def _canonical(value: Any, shape: Shape | None) -> Any:
    if isinstance(value, dict):
        known = shape.order if shape else ()
        keys = [k for k in known if k in value] + [k for k in value if k not in known]
        out = {}
        for k in keys:
            v = _canonical(value[k], shape.children.get(k) if shape else None)
            if v is not EMPTY:
                out[k] = v
        return out or EMPTY
    if isinstance(value, list):
        items = [v for v in (_canonical(v, shape) for v in value) if v is not EMPTY]
        return items or EMPTY
    if value is None or value == "" or (isinstance(value, float) and not math.isfinite(value)):
        return EMPTY
    return value


# -- captions -----------------------------------------------------------------------------------


def check_caption(text: str) -> CaptionCheck:
    """Validate a FIBO caption string; repair what is safely repairable; explain the rest."""
    return _guarded(_check_caption, text, CAPTION)


def _check_caption(text: str) -> CaptionCheck:
    if _clean_and_canonical(text):
        return CaptionCheck(True, text, [], [], [])
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        obj = None
    if type(obj) is dict:
        log = Log()
        norm = normalise(obj, ROOT, CAPTION, log)
        out = _dump(norm)
        if not log.corrections and not log.errors and out == text:
            return _conclude(norm, out, text, log)
    log = Log()
    try:
        value = read_json(text, log, CAPTION)
        obj = unwrap(value, log, CAPTION, caption_envelope, lambda s: read_json(s, log, CAPTION))
    except Unreadable as exc:
        return CaptionCheck(False, None, log.corrections, [*log.errors, exc.problem], log.warnings)
    norm = normalise(obj, ROOT, CAPTION, log)
    return _conclude(norm, _dump(norm), text, log)


def _clean_and_canonical(text: str) -> bool:
    """The fast check (fast.py), after the two warnings it leaves to this module: the token budget and
    captioner artifacts."""
    return len(text) // CHARS_PER_TOKEN <= MAX_TOKENS * 0.9 and "nswer" not in text and fast.canonical_and_clean(text)


def _conclude(norm: dict[str, Any], out: str, text: str, log: Log) -> CaptionCheck:
    errors = log.errors + _schema_problems(norm, log)
    warnings = log.warnings + _soft_warnings(norm, out)
    if errors:
        return CaptionCheck(False, None, log.corrections, errors, warnings)
    return CaptionCheck(True, out, _final_corrections(out, text, log.corrections), [], warnings)


def _final_corrections(out: str, text: str, corrections: list[Correction]) -> list[Correction]:
    # Keeps the contract "corrections is empty exactly when the stored text equals the input".
    if out == text:
        return []
    return corrections or [Correction("reformatted", CAPTION, "re-serialised as compact canonical JSON")]


def _guarded(check: Callable[[str], CaptionCheck], text: Any, root: str) -> CaptionCheck:
    """Any input returns a CaptionCheck; an unexpected exception is a bug, logged and reported."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            return CaptionCheck(False, None, [], [Problem("not_json", root, f"{root} is not UTF-8 text")], [])
    if not isinstance(text, str):
        return CaptionCheck(False, None, [], [Problem("not_json", root, f"{root} must be a string holding JSON")], [])
    try:
        return check(text)
    except RecursionError:
        return CaptionCheck(False, None, [], [Problem("too_deep", root, f"{root} is nested too deeply")], [])
    except Exception:
        logger.exception("FIBO %s check failed unexpectedly", root)
        return CaptionCheck(False, None, [], [Problem("unprocessable", root, f"{root} could not be processed")], [])


# -- schema errors ------------------------------------------------------------------------------

_EXPECTED = {
    "object": "an object",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
}
_PRIORITY = {"enum": 0, "type": 1}


def _schema_problems(norm: dict[str, Any], log: Log) -> list[Problem]:
    best: dict[tuple[Any, ...], tuple[int, Problem]] = {}
    for err in VALIDATOR.iter_errors(norm):
        for elems, problem in _describe_error(err, norm, log):
            rank = _PRIORITY.get(err.validator, 2)  # type: ignore[arg-type]
            if elems not in best or rank < best[elems][0]:
                best[elems] = (rank, problem)
    return [best[k][1] for k in sorted(best, key=_position)]


def _describe_error(err: ValidationError, norm: dict[str, Any], log: Log) -> list[tuple[tuple[Any, ...], Problem]]:
    elems = tuple(err.absolute_path)
    path = _display(elems, norm, log)
    kind, value = err.validator, err.validator_value
    if kind == "required":
        missing = [k for k in value if isinstance(err.instance, dict) and k not in err.instance]
        return [
            ((*elems, k), Problem("required", join_path(path, k), f"{join_path(path, k)} is required")) for k in missing
        ]
    if kind == "type":
        expected = [t for t in ([value] if isinstance(value, str) else value) if t != "null"]
        want = " or ".join(_EXPECTED.get(t, t) for t in expected)
        if expected == ["integer"] and "minimum" in err.schema:
            want = f"an integer ≥ {err.schema['minimum']}"
        return [(elems, Problem("wrong_type", path, f"{path} must be {want}, not {describe(err.instance)}"))]
    if kind == "enum":
        got = json.dumps(err.instance) if isinstance(err.instance, str) else describe(err.instance)
        return [(elems, Problem("invalid_choice", path, f"{path} must be one of: {', '.join(value)}, not {got}"))]
    if kind == "minimum":
        return [(elems, Problem("out_of_range", path, f"{path} must be an integer ≥ {value}, not {err.instance}"))]
    if kind == "pattern":
        return [(elems, Problem("empty_text", path, f"{path} must not be blank"))]
    if kind in ("additionalProperties", "unevaluatedProperties"):
        return [(elems, Problem("unknown_key", path, f"{path} has keys the schema does not allow"))]
    return [(elems, Problem("schema", path, f"{path} is invalid: {err.message[:200]}"))]


def _display(elems: tuple[Any, ...], norm: Any, log: Log) -> str:
    """JSON path of `elems` in the repaired caption, with list indices as the user wrote them."""
    path, node = CAPTION, norm
    for e in elems:
        if isinstance(e, int):
            original = log.index_maps.get(id(node))
            path += f"[{original[e] if original else e}]"
        else:
            path = join_path(path, e)
        try:
            node = node[e]
        except (KeyError, IndexError, TypeError):
            node = None
    return path


def _position(elems: tuple[Any, ...]) -> tuple[int, ...]:
    """Sort key: document order, following the canonical key order at each level."""
    shape: Shape | None = ROOT
    key: list[int] = []
    for e in elems:
        if isinstance(e, int):
            key.append(e)
            continue
        key.append(shape.order.index(e) if shape and e in shape.order else 999)
        shape = shape.children.get(e) if shape else None
    return tuple(key)


# -- soft limits --------------------------------------------------------------------------------


def _soft_warnings(norm: dict[str, Any], out: str) -> list[Problem]:
    warnings: list[Problem] = []
    for key in ROOT.warn_if_missing:
        if key not in norm:
            p = join_path(CAPTION, key)
            warnings.append(Problem(f"{key}_missing", p, f"{p} is missing; FIBO captions normally list the main {key}"))
    _walk_limits(norm, ROOT, CAPTION, warnings)
    tokens = len(out) // CHARS_PER_TOKEN
    if tokens > MAX_TOKENS * 0.9:
        where = "over" if tokens > MAX_TOKENS else "near"
        warnings.append(
            Problem(
                "token_limit",
                CAPTION,
                f"{CAPTION} is about {tokens} tokens, {where} the {MAX_TOKENS}-token text-encoder limit, "
                "so its tail may be cut off in training",
            )
        )
    if "nswer" in out:
        _find_artifacts(norm, CAPTION, warnings)
    return warnings


def _walk_limits(obj: Any, shape: Shape, path: str, warnings: list[Problem]) -> None:
    if not isinstance(obj, dict):
        return
    for key in shape.order:  # document order, so warnings read top to bottom
        value = obj.get(key)
        p = join_path(path, key)
        limit = shape.max_words.get(key)
        if limit and isinstance(value, str) and (n := len(value.split())) > limit:
            warnings.append(Problem("too_many_words", p, f"{p} has {n} words; the guideline is at most {limit}"))
        limit = shape.max_items.get(key)
        if limit and isinstance(value, list) and len(value) > limit:
            message = f"{p} lists {len(value)} {key}; the guideline is at most {limit}"
            warnings.append(Problem(f"too_many_{key}", p, message))
        child = shape.children.get(key)
        if child and isinstance(value, list):
            for i, item in enumerate(value):
                _walk_limits(item, child, f"{p}[{i}]", warnings)
        elif child:
            _walk_limits(value, child, p, warnings)


def _find_artifacts(value: Any, path: str, warnings: list[Problem]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _find_artifacts(item, join_path(path, key), warnings)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _find_artifacts(item, f"{path}[{i}]", warnings)
    elif isinstance(value, str) and (m := _ARTIFACT.search(value)):
        warnings.append(Problem("captioner_artifact", path, f"{path} contains the captioner artifact {m.group()!r}"))


# -- visual schema ------------------------------------------------------------------------------


def check_visual_schema(text: str) -> CaptionCheck:
    """A dataset's visual_schema: any non-empty JSON object; same syntax repairs, canonical compact form."""
    return _guarded(_check_visual_schema, text, VISUAL_SCHEMA)


def _check_visual_schema(text: str) -> CaptionCheck:
    log = Log()
    try:
        value = read_json(text, log, VISUAL_SCHEMA)
        obj = unwrap(value, log, VISUAL_SCHEMA, visual_schema_envelope, lambda s: read_json(s, log, VISUAL_SCHEMA))
    except Unreadable as exc:
        return CaptionCheck(False, None, log.corrections, [*log.errors, exc.problem], log.warnings)
    cleaned = clean_free_form(obj, VISUAL_SCHEMA, log)
    if cleaned is EMPTY:
        log.error("required", VISUAL_SCHEMA, f"{VISUAL_SCHEMA} must not be empty")
    if log.errors:
        return CaptionCheck(False, None, log.corrections, log.errors, log.warnings)
    out = _dump(cleaned)
    corrections = (
        []
        if out == text
        else log.corrections or [Correction("reformatted", VISUAL_SCHEMA, "re-serialised as compact JSON")]
    )
    return CaptionCheck(True, out, corrections, [], log.warnings)
