"""Structural repairs on a parsed caption (fibo-schema.md §5.3), one small named rule each.

`normalise` walks the caption alongside the schema's shape table and returns a new, canonical
structure (known keys only, canonical order, empties dropped, lossless coercions applied). It never
invents content: whatever it cannot fix safely it leaves in place for the schema validator to
report with its JSON path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError

from .log import Log, Unreadable, join_path
from .schema import EDIT_ONLY_KEYS, INTEGER, LIST, OBJECT, ROOT, SCORE, TEXT, Shape, spelling_key

EMPTY: Any = object()  # marker: the value is empty and its key is dropped

# Bria's score buckets (parse_caption.py): scale maximum, then the upper bounds of
# very low / low / medium / high; anything at or above the last bound is "very high".
_SCORE_SCALES = {
    "aesthetic_score": (10.0, (5.5, 6.0, 7.0, 7.6)),
    "preference_score": (1.0, (0.78, 0.82, 0.87, 0.91)),
}
# Bria's model (bria_vgl.model.ObjectDescription) types number_of_objects as a pydantic `int | None`, read
# in lax mode: the same adapter reads a value exactly as Bria's parser does.
_BRIA_INT = TypeAdapter(int)
_LABEL_SEPARATORS = re.compile(r"[\s_\-]+")

CAPTION_ENVELOPES = frozenset({"caption", "structured_prompt", "json_prompt", "result"})


def _empty_kind(value: Any) -> str | None:
    """What kind of empty `value` is (for the correction detail), or None if it has content."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return None if value.strip() else "empty string"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN"
    if isinstance(value, list | dict) and not value:
        return "empty list" if isinstance(value, list) else "empty object"
    return None


def normalise(obj: dict[str, Any], shape: Shape, path: str, log: Log) -> dict[str, Any]:
    out: dict[str, Any] = {}
    given: dict[str, Any] = {}  # canonical key -> value as given, to compare spelling variants
    for raw_key, value in obj.items():
        key = raw_key if raw_key in shape.kinds else _respelled(raw_key, obj, shape)
        if key is None:
            _drop_unknown(raw_key, shape, path, log)
            continue
        key_path = join_path(path, key)
        if key != raw_key:
            log.fix("key_spelling", key_path, f"renamed {raw_key!r} to {key!r}")
        if key in given:
            if given[key] == value:
                log.fix("duplicate_keys", key_path, "kept one of several identical values")
            else:
                log.error(
                    "duplicate_key_conflict", key_path, f"{key_path} is given more than once with different values"
                )
            continue
        given[key] = value
        new = _value(value, shape, key, key_path, log)
        if new is EMPTY:
            log.fix("empty_dropped", key_path, f"dropped {_empty_kind(value) or 'a value that became empty'}")
            continue
        out[key] = new
    ordered = {k: out[k] for k in shape.order if k in out}
    if list(ordered) != list(out):
        log.fix("key_order", path, "reordered keys into the canonical order")
    return ordered


def _respelled(raw_key: str, obj: dict[str, Any], shape: Shape) -> str | None:
    """The known key `raw_key` is a spelling of, when renaming it cannot change what Bria's model reads.

    Bria's parser ignores a key it does not know, so a variant beside its exact key, or of an optional key,
    is dropped as Bria drops it; only a required key that is missing is taken from its variant — without it
    Bria would refuse the caption, so the rename rescues it rather than changing a value Bria would read."""
    key = shape.spellings.get(spelling_key(raw_key))
    return key if key in shape.required and key not in obj else None


def _drop_unknown(raw_key: str, shape: Shape, path: str, log: Log) -> None:
    key_path = join_path(path, raw_key)
    if shape is ROOT and spelling_key(raw_key) in EDIT_ONLY_KEYS:
        rule, why = "edit_instruction_dropped", "it belongs to FIBO-Edit captions, not text-to-image ones"
    elif known := shape.spellings.get(spelling_key(raw_key)):
        rule, why = "unknown_key_dropped", f"Bria's model reads only the key {known!r}, as written"
    else:
        rule, why = "unknown_key_dropped", "it is not a FIBO caption key"
    log.fix(rule, key_path, f"dropped {raw_key!r}")
    log.warn(rule, key_path, f"{key_path} was dropped: {why}")


def _value(value: Any, shape: Shape, key: str, path: str, log: Log) -> Any:
    if _empty_kind(value) is not None:
        return EMPTY
    kind = shape.kinds[key]
    if kind == TEXT:
        return _text(value, path, log)
    if kind == SCORE:
        return _score(value, key, shape.labels[key], path, log)
    if kind == INTEGER:
        return _integer(value, path, log)
    child = shape.children[key]
    if kind == OBJECT:
        return (normalise(value, child, path, log) or EMPTY) if isinstance(value, dict) else value
    if kind == LIST:
        if isinstance(value, dict) and any(spelling_key(k) in child.spellings for k in value):
            log.fix("single_object_wrapped", path, "wrapped a single object in a list")
            value = [value]
        return _items(value, child, path, log) if isinstance(value, list) else value
    raise AssertionError(kind)


def _text(value: Any, path: str, log: Log) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text != value:
            log.fix("text_trimmed", path, "trimmed surrounding whitespace")
        return text
    if isinstance(value, int | float) and not isinstance(value, bool):
        log.fix("text_stringified", path, f"turned the number {value!r} into text")
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        parts = [v.strip() for v in value if v.strip()]
        if not parts:
            return EMPTY
        log.fix("text_list_joined", path, f"joined a list of {len(parts)} string(s) with ', '")
        return ", ".join(parts)
    return value  # booleans, objects, mixed lists: the validator reports them


def _score(value: Any, key: str, labels: tuple[str, ...], path: str, log: Log) -> Any:
    if isinstance(value, str):
        folded = _LABEL_SEPARATORS.sub(" ", value).strip().lower()
        for label in labels:
            if folded == label or folded.replace(" ", "") == label.replace(" ", ""):
                if label != value:
                    log.fix("score_label", path, f"normalised {value!r} to {label!r}")
                return label
        return value
    scale = _SCORE_SCALES.get(key)
    if scale and isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= scale[0]:
        label = labels[sum(value >= bound for bound in scale[1])]
        log.fix("score_bucketed", path, f"bucketed the score {value!r} to {label!r}")
        return label
    return value


def _integer(value: Any, path: str, log: Log) -> Any:
    """What Bria's model reads as an integer (pydantic's lax int: "1_000", " 7 ", 7.0, true), as that integer.

    A whole float past what pydantic converts (1e20) is refused here: JSON Schema would call it an integer."""
    if type(value) is int:
        return value
    try:
        whole = _BRIA_INT.validate_python(value)
    except (ValidationError, ValueError, TypeError):
        if isinstance(value, float) and value.is_integer():
            log.error("out_of_range", path, f"{path} must be an integer Bria's model can read, not {value!r}")
        return value  # "several", 2.5, "1e3": never guess a number; the validator reports it
    log.fix("integer_coerced", path, f"turned {value!r} into {whole}")
    return whole


def _items(items: list[Any], child: Shape, path: str, log: Log) -> Any:
    out: list[Any] = []
    kept: list[int] = []
    for i, item in enumerate(items):
        item_path = f"{path}[{i}]"
        new = normalise(item, child, item_path, log) if isinstance(item, dict) and item else item
        if _empty_kind(item) is not None or (isinstance(new, dict) and not new):
            log.fix("empty_dropped", item_path, f"dropped {_empty_kind(item) or 'an item that became empty'}")
            continue
        out.append(new)
        kept.append(i)
    if not out:
        return EMPTY
    if len(kept) != len(items):
        log.index_maps[id(out)] = kept
    return out


def unwrap(
    value: Any, log: Log, root: str, is_envelope: Callable[[dict[str, Any]], str | None], reread: Callable[[str], Any]
) -> dict[str, Any]:
    """Peel double encoding, a one-item top-level list and known envelopes until an object remains."""
    enveloped = False
    for _ in range(6):
        if isinstance(value, dict):
            key = is_envelope(value)
            if key is None:
                return value
            others = [k for k in value if k != key]
            log.fix(
                "envelope", root, f"unwrapped the JSON object from {key!r}" + (f", dropping {others}" if others else "")
            )
            value, enveloped = value[key], True
        elif isinstance(value, str) and value.strip()[:1] in ("{", "[", '"', "`"):
            if not enveloped:
                log.fix("double_encoded", root, "parsed a JSON string that held the JSON object")
            value, enveloped = reread(value), False
        elif isinstance(value, list) and len(value) == 1:
            log.fix("single_item_array", root, "unwrapped the object from a one-item list")
            value = value[0]
        elif isinstance(value, list) and len(value) > 1 and all(isinstance(v, dict) for v in value):
            raise Unreadable("multiple_objects", root, f"{root} is a list of {len(value)} objects; send exactly one")
        else:
            raise Unreadable("not_an_object", root, f"{root} must be a JSON object, not {describe(value)}")
    raise Unreadable("not_an_object", root, f"{root} is wrapped too many times to be read")


def caption_envelope(obj: dict[str, Any]) -> str | None:
    """The one envelope key of {"caption": ...}-style wrappers, if `obj` holds no caption key itself."""
    spelled = {spelling_key(k): k for k in obj if isinstance(k, str)}
    if any(s in ROOT.spellings or s in EDIT_ONLY_KEYS for s in spelled):
        return None
    found = [raw for s, raw in spelled.items() if s in CAPTION_ENVELOPES]
    return found[0] if len(found) == 1 else None


def visual_schema_envelope(obj: dict[str, Any]) -> str | None:
    """A pasted /generate_visual_schema response: {"visual_schema": "..."} and nothing else."""
    if len(obj) == 1:
        (key,) = obj
        if spelling_key(key) == "visual_schema":
            return key
    return None


def clean_free_form(value: Any, path: str, log: Log) -> Any:
    """Bria's cleaning rule on arbitrary JSON: drop null, "", [], {} and NaN at every depth."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            new = clean_free_form(item, join_path(path, key), log)
            if new is EMPTY:
                log.fix(
                    "empty_dropped", join_path(path, key), f"dropped {_empty_kind(item) or 'a value that became empty'}"
                )
            else:
                out[key] = new
        return out or EMPTY
    if isinstance(value, list):
        items = []
        for i, item in enumerate(value):
            new = clean_free_form(item, f"{path}[{i}]", log)
            if new is EMPTY:
                log.fix("empty_dropped", f"{path}[{i}]", f"dropped {_empty_kind(item) or 'an item that became empty'}")
            else:
                items.append(new)
        return items or EMPTY
    return EMPTY if _empty_kind(value) is not None else value


_TYPE_NAMES = {
    dict: "an object",
    list: "a list",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
}


def describe(value: Any) -> str:
    if value is None:
        return "null"
    return _TYPE_NAMES.get(type(value), type(value).__name__)
