"""The caption schema, its validator, and a compact "shape" table derived from it.

The repair rules need to know, for every key, what kind of value belongs there (text, score label,
integer, nested object, list of objects) and in which order keys go. Rather than hard-coding that,
it is read once from caption.schema.json, so the schema file stays the single source of truth.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA: dict[str, Any] = json.loads(files(__package__).joinpath("caption.schema.json").read_text("utf-8"))
Draft202012Validator.check_schema(SCHEMA)
# Format checking stays off (the default): the schema uses no formats, and it costs time.
VALIDATOR = Draft202012Validator(SCHEMA)

# Value kinds of a property.
TEXT, SCORE, INTEGER, OBJECT, LIST = "text", "score", "integer", "object", "list"


@dataclass(eq=False)
class Shape:
    """What one JSON object of the caption may hold."""

    name: str
    order: tuple[str, ...]
    required: frozenset[str]
    kinds: dict[str, str] = field(default_factory=dict)  # key -> TEXT | SCORE | INTEGER | OBJECT | LIST
    children: dict[str, Shape] = field(default_factory=dict)  # OBJECT / LIST key -> its item shape
    labels: dict[str, tuple[str, ...]] = field(default_factory=dict)  # SCORE key -> allowed labels
    minimum: dict[str, int] = field(default_factory=dict)  # INTEGER key -> minimum
    max_words: dict[str, int] = field(default_factory=dict)  # x-fibo-maxWords
    max_items: dict[str, int] = field(default_factory=dict)  # x-fibo-maxItems
    warn_if_missing: tuple[str, ...] = ()  # x-fibo-warnIfMissing
    spellings: dict[str, str] = field(default_factory=dict)  # spelling_key(variant) -> canonical key


_DEFS: dict[str, Any] = SCHEMA["$defs"]
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[\s\-_.]+")


def spelling_key(key: str) -> str:
    """Fold a key's spelling: camelCase, case, spaces, hyphens and British 'colour' all collapse."""
    key = _CAMEL.sub("_", key.strip())
    return _SEPARATORS.sub("_", key.lower()).strip("_").replace("colour", "color")


def _deref(node: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    ref = node.get("$ref")
    if ref is None:
        return None, node
    name = ref.rsplit("/", 1)[-1]
    return name, _DEFS[name]


def _types(node: dict[str, Any]) -> set[str]:
    t = node.get("type", ())
    return {t} if isinstance(t, str) else set(t)


def _build(name: str, node: dict[str, Any], order: list[str] | None = None) -> Shape:
    props: dict[str, Any] = node["properties"]
    shape = Shape(
        name=name,
        order=tuple(order or node.get("x-fibo-canonicalKeyOrder") or props),
        required=frozenset(node.get("required", ())),
    )
    for key, prop in props.items():
        ref_name, target = _deref(prop)
        types = _types(target)
        if "enum" in target:
            shape.kinds[key], shape.labels[key] = SCORE, tuple(target["enum"])
        elif "object" in types:
            shape.kinds[key], shape.children[key] = OBJECT, _build(ref_name or key, target)
        elif "array" in types:
            item_name, item = _deref(target["items"])
            shape.kinds[key], shape.children[key] = LIST, _build(item_name or key, item)
        elif "integer" in types:
            shape.kinds[key], shape.minimum[key] = INTEGER, target.get("minimum", 0)
        else:
            shape.kinds[key] = TEXT
        if "x-fibo-maxWords" in prop:
            shape.max_words[key] = prop["x-fibo-maxWords"]
        if "x-fibo-maxItems" in prop:
            shape.max_items[key] = prop["x-fibo-maxItems"]
        if prop.get("x-fibo-warnIfMissing"):
            shape.warn_if_missing += (key,)
    shape.spellings = {spelling_key(k): k for k in shape.order}
    return shape


ROOT = _build("Caption", _DEFS["CaptionCore"], SCHEMA["x-fibo-canonicalKeyOrder"])
SCORE_LABELS: tuple[str, ...] = tuple(_DEFS["ScoreLabel"]["enum"])
MAX_TOKENS: int = SCHEMA.get("x-fibo-maxTextEncoderTokens", 3000)
# Keys of the FIBO-Edit variant that are known but do not belong in a text-to-image caption.
EDIT_ONLY_KEYS: frozenset[str] = frozenset(_DEFS["FiboEditCaption"]["properties"]) - set(ROOT.order)
