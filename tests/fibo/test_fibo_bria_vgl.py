"""FIBO captions against Bria's own model of them (`bria-vgl`, a test dependency): the model Bria's captioner
fills, parsed as Bria parses an LLM's answer (`Payload.parse`: drop empty values, then pydantic, extra keys
ignored).

Every caption Bria accepts is accepted here and stored in a form Bria reads back with the same values — but for
the deliberate differences the README lists ("FIBO captions and Bria's model"), which `as_tailorset_reads`
spells out: text values are trimmed, blank text is no text (so a blank required text is refused), and the stored
form is at most TAILORSET_MAX_CAPTION_CHARS long. Every refusal names its JSON path."""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar, get_args

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # bria-vgl imports litellm: no fetch at import

import pytest
from bria_vgl.exceptions import InvalidResponseError
from bria_vgl.model import VGL
from bria_vgl.payload import Payload
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from tailorset.fibo import check_caption


class BriaCaption(Payload[VGL]):
    """Bria's parse step (bria_vgl.payload.Payload.parse) with the text-to-image model (FIBO-Edit's
    edit_instruction belongs to another kind of caption)."""

    vgl_model: ClassVar = VGL


def bria_reads(text: str) -> VGL:
    return BriaCaption(prompt="parse").parse(text)


# --- captions shaped by Bria's model, as an LLM or a person might write them ------------------------------

text = st.text(min_size=1, max_size=12)  # any text: blank, padded, control characters, astral planes…
empty = st.sampled_from([None, "", [], {}])
integers = st.one_of(
    st.integers(),
    st.integers(-(2**53), 2**53).map(float),  # whole floats pydantic reads as ints
    st.integers(-(10**6), 10**6).map(lambda n: f" {n:_} " if abs(n) > 999 else str(n)),  # "1_000", " 7 "
    st.booleans(),
)
# Keys Bria's model does not read: unknown, FIBO-Edit's, or a spelling variant of a known key.
extra_keys = st.sampled_from(["camera", "edit_instruction", "Context", "style medium", "Mood Atmosphere",
                              "shortDescription", "Objects", "relativeSize", "LIGHTING"])  # fmt: skip


def _strategy(annotation: Any) -> st.SearchStrategy:
    kinds = [a for a in get_args(annotation) if a is not type(None)] or [annotation]
    kind = kinds[0]
    if kind is str:
        return text
    if kind is int:
        return integers
    if getattr(kind, "__origin__", None) is list:
        return st.lists(_strategy(get_args(kind)[0]), max_size=3)
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return model(kind)
    raise AssertionError(annotation)


def model(cls: type[BaseModel]) -> st.SearchStrategy[dict]:
    """A JSON object for `cls`: every required field, some optional ones, empties, and keys Bria ignores."""
    required = {name: _strategy(f.annotation) for name, f in cls.model_fields.items() if f.is_required()}
    optional = {
        name: st.one_of(_strategy(f.annotation), empty) for name, f in cls.model_fields.items() if not f.is_required()
    }
    known = st.fixed_dictionaries(required, optional=optional)
    extras = st.dictionaries(extra_keys, st.one_of(text, empty), max_size=2)
    return st.builds(lambda extra, fields: {**extra, **fields}, extras, known)


def as_tailorset_reads(value: Any) -> Any:
    """Bria's reading of a caption, with the README's deliberate differences applied: text trimmed, and
    optional text that is blank dropped."""
    if isinstance(value, dict):
        out = {k: as_tailorset_reads(v) for k, v in value.items()}
        return {k: None if v == "" else v for k, v in out.items()}  # dropped: Bria's model reads None
    if isinstance(value, list):
        return [as_tailorset_reads(v) for v in value]
    return value.strip() if isinstance(value, str) else value


def blank_required(reading: BaseModel, path: str = "caption") -> list[str]:
    """The JSON paths of required text that is blank: refused here, read by Bria."""
    found = []
    for name, f in type(reading).model_fields.items():
        value = getattr(reading, name)
        if isinstance(value, str) and f.is_required() and not value.strip():
            found.append(f"{path}.{name}")
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            if isinstance(item, BaseModel):
                found += blank_required(item, f"{path}.{name}" + (f"[{i}]" if isinstance(value, list) else ""))
    return found


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(caption=model(VGL), indent=st.sampled_from([None, 2]))
def test_what_bria_accepts_is_accepted_and_read_back_the_same(caption: dict, indent: int | None) -> None:
    sent = json.dumps(caption, indent=indent)
    try:
        bria = bria_reads(sent)
    except InvalidResponseError:
        return  # Bria refuses it: whatever tailorset does (repair or refuse) is checked elsewhere
    result = check_caption(sent)
    blank = blank_required(bria)
    if blank:
        assert not result.valid and sorted(e.path for e in result.errors) == sorted(blank), result.errors
        assert all(e.path in e.message and e.rule == "required" for e in result.errors)
        return
    assert result.valid, result.errors
    assert bria_reads(result.caption).model_dump() == as_tailorset_reads(bria.model_dump())


@pytest.mark.parametrize("count", [0, -3, "1_000", " 7 ", 7.0, True, 10**20])
def test_every_count_bria_reads_is_stored_as_the_integer_it_reads(count: Any) -> None:
    caption = json.dumps({
        "short_description": "Balloons.", "background_setting": "A wall.", "context": "A card.",
        "objects": [{"description": "Balloons.", "location": "center", "relationship": "alone",
                     "number_of_objects": count}],
        "lighting": {"conditions": "daylight", "direction": "front-lit"},
        "aesthetics": {"composition": "centered", "color_scheme": "red", "mood_atmosphere": "festive"},
    })  # fmt: skip
    result = check_caption(caption)
    assert result.valid, result.errors
    read = bria_reads(result.caption).objects[0].number_of_objects
    assert read == bria_reads(caption).objects[0].number_of_objects and type(json.loads(result.caption)
        ["objects"][0]["number_of_objects"]) is int  # fmt: skip


def test_a_count_bria_cannot_read_is_refused_with_its_path() -> None:
    caption = json.dumps({
        "short_description": "Balloons.", "background_setting": "A wall.", "context": "A card.",
        "objects": [{"description": "Balloons.", "location": "center", "relationship": "alone",
                     "number_of_objects": 1e20}],
        "lighting": {"conditions": "daylight", "direction": "front-lit"},
        "aesthetics": {"composition": "centered", "color_scheme": "red", "mood_atmosphere": "festive"},
    })  # fmt: skip
    with pytest.raises(InvalidResponseError):
        bria_reads(caption)
    result = check_caption(caption)
    assert not result.valid and [e.path for e in result.errors] == ["caption.objects[0].number_of_objects"]
