"""Realistic captions end to end, the public API's shape, canonical_json and check_visual_schema."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

import tailorset.fibo as fibo
from tailorset.fibo import CaptionCheck, Correction, Problem, canonical_json, check_caption, check_visual_schema
from tailorset.fibo import check as check_module
from tests.fibo.fibo_testkit import FIXTURES, canonical, fixture, pretty


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_is_valid_and_canonical_form_is_a_fixed_point(name: str) -> None:
    text = canonical(name)
    assert 1800 < len(text) < 3000  # realistic ~2 KB captions
    result = check_caption(text)
    assert result == CaptionCheck(valid=True, caption=text, corrections=[], errors=[], warnings=[])
    assert not result.corrected and result.error_message() == ""


@pytest.mark.parametrize("name", FIXTURES)
def test_pretty_printed_fixture_is_only_reformatted(name: str) -> None:
    result = check_caption(pretty(fixture(name)))
    assert result.valid and result.caption == canonical(name)
    assert [c.rule for c in result.corrections] == ["reformatted"]
    assert result.corrected


def _llm_mess(obj: dict[str, Any]) -> str:
    """What a chatty model returns: prose, a fence, reversed keys, trailing commas, loose labels and counts."""
    messy = dict(reversed(list(obj.items())))
    messy["aesthetics"] = {**obj["aesthetics"], "preference_score": "Very High", "aesthetic_score": "very_high"}
    messy["objects"] = [
        {**o, "number_of_objects": str(o["number_of_objects"])} if "number_of_objects" in o else o
        for o in obj["objects"]
    ]
    messy["text_render"] = messy.get("text_render") or []
    body = pretty(messy).replace("\n  }", ",\n  }").replace('"\n}', '",\n}')
    return f"Sure! Here's the structured caption:\n\n```json\n{body}\n```\n\nLet me know if you'd like any changes."


@pytest.mark.parametrize("name", FIXTURES)
def test_messy_model_output_is_repaired_to_exactly_the_canonical_caption(name: str) -> None:
    result = check_caption(_llm_mess(fixture(name)))
    assert result.valid, result.errors
    assert result.caption == canonical(name)
    rules = {c.rule for c in result.corrections}
    assert {"code_fence", "surrounding_prose", "trailing_commas", "key_order", "score_label"} <= rules


def test_messy_python_style_output() -> None:
    obj = fixture("street_portrait")
    text = "```python\n" + repr({**obj, "style_medium": None, "text_render": obj["text_render"] * 1}) + "\n```"
    result = check_caption(text)
    assert result.valid
    assert json.loads(result.caption) == {k: v for k, v in obj.items() if k != "style_medium"}


def test_non_ascii_is_escaped_in_canonical_form() -> None:
    text = canonical("street_portrait")
    assert "PANADER\\u00cdA LUNA" in text and text.isascii()
    result = check_caption(json.dumps(fixture("street_portrait"), ensure_ascii=False, separators=(",", ":")))
    assert result.caption == text and [c.rule for c in result.corrections] == ["reformatted"]


def test_canonical_input_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_slow_path(*args: Any) -> Any:
        raise AssertionError("slow path used")

    monkeypatch.setattr(check_module, "read_json", no_slow_path)
    for name in FIXTURES:
        assert check_caption(canonical(name)).valid


def test_canonical_but_invalid_input_is_reported_from_the_fast_path() -> None:
    obj = fixture("balloons_render")
    del obj["context"]
    result = check_caption(canonical_json(obj))
    assert [e.message for e in result.errors] == ["caption.context is required"]


# -- API shape -------------------------------------------------------------------------------------


def test_public_api() -> None:
    for name in ("check_caption", "check_visual_schema", "canonical_json", "CaptionCheck", "Correction", "Problem"):
        assert name in fibo.__all__
    assert [f.name for f in dataclasses.fields(Correction)] == ["rule", "path", "detail"]
    assert [f.name for f in dataclasses.fields(Problem)] == ["rule", "path", "message"]
    assert [f.name for f in dataclasses.fields(CaptionCheck)][:5] == [
        "valid",
        "caption",
        "corrections",
        "errors",
        "warnings",
    ]
    with pytest.raises(dataclasses.FrozenInstanceError):
        check_caption("{}").valid = True  # type: ignore[misc]


def test_error_message_formats() -> None:
    one = CaptionCheck(False, None, [], [Problem("required", "caption.context", "caption.context is required")], [])
    assert one.error_message() == "caption.context is required."
    many = CaptionCheck(False, None, [], [Problem("r", "p", f"problem {i}") for i in range(6)], [])
    assert many.error_message() == "problem 0 (and 5 more problems: problem 1; problem 2; problem 3; …)."
    two = CaptionCheck(False, None, [], [Problem("r", "p", "a"), Problem("r", "p", "b")], [])
    assert two.error_message() == "a (and 1 more problem: b)."


@pytest.mark.parametrize("value", [None, 42, b"\xff\xfe", ["{}"]])
def test_non_string_input_does_not_raise(value: Any) -> None:
    result = check_caption(value)
    assert not result.valid and result.errors[0].rule == "not_json"


def test_bytes_input_is_decoded() -> None:
    assert check_caption(canonical("balloons_render").encode()).valid


# -- canonical_json ----------------------------------------------------------------------------------


def test_canonical_json_orders_nested_keys_drops_empties_and_is_compact() -> None:
    obj = {
        "context": "Card/poster é",
        "mystery": 1,
        "lighting": {"shadows": None, "direction": "Left.", "conditions": "Dim."},
        "short_description": "A.",
        "objects": [{"relationship": "r", "description": "d", "location": "l", "texture": ""}, {}],
        "text_render": [],
    }
    assert canonical_json(obj) == (
        '{"short_description":"A.","objects":[{"description":"d","location":"l","relationship":"r"}],'
        '"lighting":{"conditions":"Dim.","direction":"Left."},"context":"Card/poster \\u00e9","mystery":1}'
    )


def test_canonical_json_matches_stored_caption() -> None:
    for name in FIXTURES:
        assert check_caption(pretty(fixture(name))).caption == canonical_json(fixture(name))


# -- visual schema -----------------------------------------------------------------------------------


def test_visual_schema_canonical_is_unchanged() -> None:
    text = '{"style":"flat vector","palette":["teal","coral"],"character":{"name":"Pip","species":"fox"}}'
    assert check_visual_schema(text) == CaptionCheck(True, text, [], [], [])


def test_visual_schema_keeps_free_form_key_order_and_repairs_syntax() -> None:
    text = "```json\n{\n  'zeta': 'last?', 'alpha': None,\n  'style': 'cartoon', // note\n}\n```"
    result = check_visual_schema(text)
    assert result.valid and result.caption == '{"zeta":"last?","style":"cartoon"}'
    assert {"code_fence", "python_literal", "empty_dropped"} <= {c.rule for c in result.corrections}


def test_visual_schema_is_not_validated_against_the_caption_schema() -> None:
    assert check_visual_schema('{"subject": "character standing"}').valid


def test_visual_schema_envelope_from_generate_visual_schema() -> None:
    result = check_visual_schema(json.dumps({"visual_schema": json.dumps({"style": "cartoon"})}))
    assert result.caption == '{"style":"cartoon"}' and [c.rule for c in result.corrections] == ["envelope"]


@pytest.mark.parametrize(
    ("text", "rule", "message"),
    [
        ("", "empty_input", "visual_schema is empty"),
        ("[1, 2]", "not_an_object", "visual_schema must be a JSON object, not a list"),
        ('{"style": null}', "required", "visual_schema must not be empty"),
        ('{"style": "a"', "truncated", "visual_schema is truncated: the JSON ends before its brackets are closed"),
        (
            '{"style": "a", "style": "b"}',
            "duplicate_key_conflict",
            "visual_schema.style is given more than once with different values",
        ),
    ],
)
def test_visual_schema_errors(text: str, rule: str, message: str) -> None:
    result = check_visual_schema(text)
    assert not result.valid and (result.errors[0].rule, result.errors[0].message) == (rule, message)
    assert result.error_message() == message + "."
