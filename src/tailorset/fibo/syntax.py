"""Text-level repairs: from whatever the user or a captioner sent to one parsed JSON value.

Order (fibo-schema.md §5.1–5.2): strip BOM/whitespace, chat stop tokens, code fences and prose;
refuse truncated or multiple objects; then parse with progressively more tolerant readers —
json.loads, json.loads(strict=False), after dropping comments and trailing commas, Python-literal
style via ast.literal_eval, and last json-repair. Each step that changed something is recorded.
"""

from __future__ import annotations

import ast
import contextlib
import json
import re
from typing import Any

from json_repair import repair_json

from .log import Log, Unreadable, join_path

# Our own repairs are linear but pure Python; past this size a caption is not worth repairing
# (FIBO captions are 2–6 KB; 100 KB is far past the 3000-token limit anyway).
MAX_REPAIR_CHARS = 100_000
# json-repair can take quadratic time on hostile input (about 2 s at 20 KB of unquoted keys), so it
# only sees texts of a plausible caption size: 12 KB is already ~3000 tokens, the encoder limit.
MAX_JSON_REPAIR_CHARS = 12_000

_BOM = "\ufeff"
_FENCE_OPEN = re.compile(r"```[ \t]*[\w+.-]*")
_LIST_OF_OBJECTS = re.compile(r"\[\s*\{")
# One token of a JSON-ish text: a complete "string", a 'string' where a value or key can start,
# a comment, a bracket or comma, or an opening quote / comment marker that never closes.
_TOKEN = re.compile(
    r'"[^"\\]*(?:\\.[^"\\]*)*"'
    r"|(?<=[{\[,:])\s*'[^'\\]*(?:\\.[^'\\]*)*'"
    r"|//[^\n]*|/\*.*?\*/"
    r'|[{}\[\],"]|/\*',
    re.S,
)
_STOP = re.compile(r"<\|(?:im_end|end_of_text|endoftext|eot_id)\|>")
_TOKEN_OR_STOP = re.compile(f"{_TOKEN.pattern}|{_STOP.pattern}", re.S)
# Whitespace and comments, then a closer; atomic groups keep it linear (no backtracking across comments).
_BEFORE_CLOSER = re.compile(r"(?:\s+|//[^\n]*|(?>/\*.*?\*/))*+[}\]]", re.S)


def read_json(text: str, log: Log, root: str) -> Any:
    """Parse `text` into a JSON value, recording repairs in `log`; raise Unreadable if it cannot."""
    text = _clean_text(text, log, root)
    try:  # well-formed JSON, possibly with surrounding whitespace: no heuristics needed
        return _loads(text, log, root)
    except ValueError:
        pass
    if len(text) > MAX_REPAIR_CHARS:
        raise Unreadable(
            "too_large", root, f"{root} is not valid JSON and too large to repair ({len(text)} characters)"
        )
    payload = _isolate_payload(text, log, root)
    return _parse_tolerant(payload, log, root)


def _clean_text(text: str, log: Log, root: str) -> str:
    stripped = text.strip().lstrip(_BOM).strip()
    if not stripped:
        raise Unreadable("empty_input", root, f"{root} is empty")
    if stripped != text:
        log.fix("whitespace", root, "stripped a BOM or surrounding whitespace")
    text = stripped
    cut = _cut_chat_markup(text)
    if cut != text:
        log.fix("stop_tokens", root, "removed chat stop tokens or a <think> block")
        text = cut.strip()
    fence_at = text.find("```")
    if fence_at >= 0 and not any(0 <= text.find(c) < fence_at for c in "{["):  # ``` inside JSON is content
        # Drop the opening fence line and a closing fence at the very end; the bracket scanner later
        # cuts off anything else, so a ``` inside a JSON string can never end the payload early.
        opener = _FENCE_OPEN.match(text, fence_at)
        body = text[opener.end() if opener else fence_at + 3 :].strip()
        if body.endswith("```"):
            body = body[:-3].rstrip()
        log.fix("code_fence", root, "removed the markdown code fence")
        if text[:fence_at].strip():
            log.fix("surrounding_prose", root, "removed text before or after the JSON object")
        text = body
    if not text:
        raise Unreadable("empty_input", root, f"{root} is empty")
    return text


def _cut_chat_markup(text: str) -> str:
    """Drop a leading <think>…</think> block and cut at the first chat stop token outside a string
    (as Bria's local VLM reader does); the same markers inside caption text are content."""
    if text.startswith("<think>") and (end := text.find("</think>")) >= 0:
        text = text[end + len("</think>") :].lstrip()
    if _STOP.search(text):
        for m in _TOKEN_OR_STOP.finditer(text):
            if m.group().startswith("<|"):
                return text[: m.start()]
    return text


def _isolate_payload(text: str, log: Log, root: str) -> str:
    """Cut out the one top-level JSON object (or array); refuse truncated or multiple objects."""
    # A top-level list only if it opens with an object ("[{"), so a "[Caption]" label reads as prose.
    start = 0 if text[0] == "{" or _LIST_OF_OBJECTS.match(text) else text.find("{")
    if start < 0:
        raise Unreadable("not_json", root, f"{root} is not JSON: no object found")
    end = _balanced_or_truncated(text, start, root)
    if start > 0 and not _looks_like_object(text[start:end]):
        # "Use {braces} like this: {...}": a brace in the prose is not the object; try the next one
        nxt = text.find("{", end)
        if nxt >= 0:
            nxt_end = _balanced_or_truncated(text, nxt, root)
            if _looks_like_object(text[nxt:nxt_end]):
                start, end = nxt, nxt_end
    rest = text[end:]
    nxt = rest.find("{")
    if nxt >= 0:
        other_end = balanced_end(rest, nxt)
        if other_end is not None and _looks_like_object(rest[nxt:other_end]):
            raise Unreadable("multiple_objects", root, f"{root} holds several JSON objects; send exactly one")
    outside = [part for part in (text[:start], rest) if part.strip()]
    if any(_strip_comments_and_commas(part)[0].strip() for part in outside):
        log.fix("surrounding_prose", root, "removed text before or after the JSON object")
    elif outside:
        log.fix("comments", root, "removed comments before or after the JSON object")
    return text[start:end]


def _balanced_or_truncated(text: str, start: int, root: str) -> int:
    end = balanced_end(text, start)
    if end is None:
        raise Unreadable("truncated", root, f"{root} is truncated: the JSON ends before its brackets are closed")
    return end


def balanced_end(text: str, start: int) -> int | None:
    """Index just past the bracket closing the one at `start`; None if the input ends first."""
    depth = 0
    for m in _TOKEN.finditer(text, start):
        tok = m.group()
        if tok == "{" or tok == "[":
            depth += 1
        elif tok == "}" or tok == "]":
            depth -= 1
            if depth == 0:
                return m.end()
        elif tok == '"' or tok == "/*":  # a string or comment that never closes runs to the end
            return None
    return None


def _looks_like_object(segment: str) -> bool:
    """Whether prose after the object is in fact a second object (JSON or Python-dict style)."""
    cleaned = _strip_comments_and_commas(segment)[0]
    try:
        return isinstance(json.loads(cleaned), dict)
    except (ValueError, RecursionError):
        return isinstance(_python_literal(cleaned, Log(), ""), dict)


def _strip_comments_and_commas(text: str) -> tuple[str, int, int]:
    """Remove // and /* */ comments and commas before } or ]; strings are left untouched."""
    out: list[str] = []
    pos = comments = commas = 0
    for m in _TOKEN.finditer(text):
        tok = m.group()
        if tok.startswith("//") or (tok.startswith("/*") and len(tok) >= 4):
            out.append(text[pos : m.start()])
            pos = m.end()
            comments += 1
        elif tok == "," and _BEFORE_CLOSER.match(text, m.end()):
            out.append(text[pos : m.start()])
            pos = m.end()
            commas += 1
    out.append(text[pos:])
    return "".join(out), comments, commas


def _loads(text: str, log: Log, root: str) -> Any:
    """json.loads that also accepts raw control characters in strings and reports repeated keys."""
    try:
        try:
            value = json.loads(text, object_pairs_hook=_pairs_hook)
        except ValueError:
            value = json.loads(text, object_pairs_hook=_pairs_hook, strict=False)
            log.fix("control_characters", root, "escaped raw newlines or tabs inside strings")
    except RecursionError:  # well-formed but deeper than the parser's stack allows
        raise Unreadable("too_deep", root, f"{root} is nested too deeply") from None
    _report_repeats(value, root, log)
    return value


def _parse_tolerant(payload: str, log: Log, root: str) -> Any:
    cleaned, comments, commas = _strip_comments_and_commas(payload)
    try:
        value = _loads(cleaned, log, root)
    except ValueError:
        value = _NOTHING
    if value is _NOTHING:
        value = _python_literal(cleaned, log, root)
        if value is not _NOTHING:
            log.fix("python_literal", root, "read Python-dict style (single quotes, None/True/False)")
    if value is not _NOTHING:
        if comments:
            log.fix("comments", root, f"removed {comments} comment(s)")
        if commas:
            log.fix("trailing_commas", root, f"removed {commas} trailing comma(s)")
        return value
    if len(payload) > MAX_JSON_REPAIR_CHARS:
        raise Unreadable(
            "too_large", root, f"{root} is not valid JSON and too large to repair ({len(payload)} characters)"
        )
    value = _json_repair(payload, root)
    log.fix("json_syntax", root, "repaired JSON syntax (missing commas, unquoted keys or similar)")
    return value


_NOTHING = object()


def _python_literal(text: str, log: Log, root: str) -> Any:
    """Read a Python dict literal with ast.literal_eval (never eval, never regex quote swapping)."""
    try:
        tree = ast.parse(text, mode="eval")
        value = _from_python(ast.literal_eval(tree))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NOTHING
    _python_repeats(tree.body, root, log)
    return value


def _from_python(value: Any) -> Any:
    """Keep only JSON-shaped Python values (tuples become lists)."""
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ValueError("non-string key")
        return {k: _from_python(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_from_python(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ValueError(f"not a JSON value: {type(value).__name__}")


def _json_repair(payload: str, root: str) -> Any:
    try:
        value = repair_json(payload, return_objects=True, skip_json_loads=True)
    except Exception as exc:  # json-repair is third-party code running on hostile input
        raise Unreadable("not_json", root, f"{root} is not valid JSON and could not be repaired") from exc
    value = _join_surrogates(value)
    shape_kept = isinstance(value, dict) if payload.startswith("{") else isinstance(value, list)
    if not shape_kept or not value or not _text_preserved(value, payload):
        raise Unreadable("not_json", root, f"{root} is not valid JSON and could not be repaired")
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")


def _join_surrogates(value: Any) -> Any:
    """json-repair decodes a \\ud83d\\ude00 escape pair as two surrogates; json.loads joins them."""
    if isinstance(value, str):
        if _SURROGATE.search(value):
            return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
        return value
    if isinstance(value, dict):
        return {_join_surrogates(k): _join_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_join_surrogates(v) for v in value]
    return value


def _text_preserved(value: Any, source: str) -> bool:
    """json-repair may only fix syntax, so every key and string it returns must be a string literal of
    the source, decoded exactly, or (for unquoted or curly-quoted text) occur verbatim in it. This
    catches its mistakes, e.g. it mis-reads a string that ends in an escaped backslash."""
    literals = set()
    for m in _TOKEN.finditer(source):
        tok = m.group()
        if len(tok) > 1 and tok[0] == '"':
            with contextlib.suppress(ValueError):
                literals.add(json.loads(tok, strict=False))

    def ok(v: Any) -> bool:
        if isinstance(v, dict):
            return all(ok(k) and ok(item) for k, item in v.items())
        if isinstance(v, list):
            return all(ok(item) for item in v)
        if isinstance(v, str):
            return v in literals or ('"' not in v and "\\" not in v and v in source)
        return True

    return ok(value)


class _Repeats(dict):
    """A parsed JSON object in which some key occurred more than once (first value kept)."""

    same: tuple[str, ...] = ()
    conflicting: tuple[str, ...] = ()


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    first: dict[str, Any] = {}
    same: list[str] = []
    conflicting: list[str] = []
    for key, value in pairs:
        if key not in first:
            first[key] = value
        elif first[key] == value:
            same.append(key)
        else:
            conflicting.append(key)
    repeats = _Repeats(first)
    repeats.same, repeats.conflicting = tuple(same), tuple(conflicting)
    return repeats


def _report_repeats(value: Any, path: str, log: Log) -> None:
    if isinstance(value, dict):
        if isinstance(value, _Repeats):
            for key in dict.fromkeys(value.same):
                log.fix("duplicate_keys", join_path(path, key), "kept one of several identical values")
            for key in dict.fromkeys(value.conflicting):
                _conflict(join_path(path, key), log)
        for key, item in value.items():
            _report_repeats(item, join_path(path, key), log)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _report_repeats(item, f"{path}[{i}]", log)


def _python_repeats(node: ast.expr, path: str, log: Log) -> None:
    if isinstance(node, ast.Dict):
        seen: dict[str, str] = {}
        for key_node, value_node in zip(node.keys, node.values, strict=True):
            key = key_node.value if isinstance(key_node, ast.Constant) else None
            if isinstance(key, str):
                dumped = ast.dump(value_node)
                if key not in seen:
                    seen[key] = dumped
                elif seen[key] == dumped:
                    log.fix("duplicate_keys", join_path(path, key), "kept one of several identical values")
                else:
                    _conflict(join_path(path, key), log)
                _python_repeats(value_node, join_path(path, key), log)
    elif isinstance(node, ast.List | ast.Tuple):
        for i, item in enumerate(node.elts):
            _python_repeats(item, f"{path}[{i}]", log)


def _conflict(path: str, log: Log) -> None:
    log.error("duplicate_key_conflict", path, f"{path} is given more than once with different values")
