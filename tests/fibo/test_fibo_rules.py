"""One test per named rule: every repair, every error and every warning in the catalogue."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tailorset.fibo import ERROR_RULES, REPAIR_RULES, WARNING_RULES, canonical_json, check_caption
from tailorset.fibo import check as check_module
from tailorset.fibo import syntax as syntax_module
from tests.fibo.fibo_testkit import canonical, fixture, pretty

BASE = fixture("balloons_render")
C = canonical("balloons_render")


def variant(**changes: Any) -> dict[str, Any]:
    """BASE with top-level keys replaced (a value of ... deletes the key)."""
    out = dict(BASE)
    for k, v in changes.items():
        if v is ...:
            del out[k]
        else:
            out[k] = v
    return out


def with_aesthetics(**changes: Any) -> dict[str, Any]:
    return variant(aesthetics={**BASE["aesthetics"], **changes})


def with_object(i: int, **changes: Any) -> dict[str, Any]:
    objects = [dict(o) for o in BASE["objects"]]
    objects[i].update(changes)
    return variant(objects=objects)


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _trailing_commas(text: str) -> str:
    # pretty JSON has no raw newlines inside strings, so "\n  }" is always structural
    return text.replace("\n  }", ",\n  }").replace("\n  ]", ",\n  ]").replace('"\n}', '",\n}')


# rule -> (faulty input, expected stored caption)
REPAIRS: dict[str, tuple[str, str]] = {
    "whitespace": ("\ufeff \n" + C + "\n\n", C),
    "stop_tokens": ("<think>The user wants JSON.</think>" + C + "<|im_end|>\n<|endoftext|>", C),
    "code_fence": ("```json\n" + pretty(BASE) + "\n```", C),
    "surrounding_prose": ("Here is the caption you asked for:\n" + C + "\nLet me know if you'd like changes!", C),
    "comments": (
        pretty(BASE)
        .replace('"lighting": {', '"lighting": { // studio setup\n')
        .replace('"context"', '/* purpose */ "context"'),
        C,
    ),
    "trailing_commas": (_trailing_commas(pretty(BASE)), C),
    "control_characters": (
        dumps(variant(context="Birthday card.\nOr an invitation.")).replace("\\n", "\n"),
        canonical_json(variant(context="Birthday card.\nOr an invitation.")),
    ),
    "python_literal": (
        repr(variant(context="A bear's birthday card.")),
        canonical_json(variant(context="A bear's birthday card.")),
    ),
    "json_syntax": (
        C.replace('"style_medium":"3D render",', '"style_medium":"3D render" ').replace('"lighting":', "lighting:"),
        C,
    ),
    "double_encoded": (json.dumps(C), C),
    "envelope": (json.dumps({"result": {"structured_prompt": C, "seed": 42}}), C),
    "single_item_array": ("[" + C + "]", C),
    "duplicate_keys": (
        C.replace('"style_medium":"3D render"', '"style_medium":"3D render","style_medium":"3D render"'),
        C,
    ),
    "key_spelling": (
        dumps({("shortDescription" if k == "short_description" else k): v for k, v in BASE.items()}).replace(
            '"color_scheme"', '"Colour Scheme"'
        ),
        C,
    ),
    "unknown_key_dropped": (dumps({**BASE, "hair_color": "red", "lighting": {**BASE["lighting"], "camera": "x"}}), C),
    "edit_instruction_dropped": (dumps({**BASE, "edit_instruction": "Add a party hat to the box."}), C),
    "empty_dropped": (
        dumps(
            {
                **with_object(2, texture=None, pose="", clothing=[]),
                "text_render": [],
                "photographic_characteristics": None,
            }
        ),
        C,
    ),
    "key_order": (json.dumps(BASE, sort_keys=True), C),
    "text_trimmed": (dumps(variant(context="  " + BASE["context"] + " ")), C),
    "text_stringified": (dumps(variant(style_medium=35)), canonical_json(variant(style_medium="35"))),
    "text_list_joined": (dumps(with_aesthetics(mood_atmosphere=["Cheerful", " festive", "playful.", ""])), C),
    "integer_coerced": (C.replace('"number_of_objects":7', '"number_of_objects":"7"').replace(":12}", ":12.0}"), C),
    "score_label": (dumps(with_aesthetics(preference_score="Very_High", aesthetic_score="VERY  high")), C),
    "score_bucketed": (dumps(with_aesthetics(preference_score=0.93, aesthetic_score=8.1)), C),
    "single_object_wrapped": (
        dumps(variant(objects=BASE["objects"][0])),
        canonical_json(variant(objects=[BASE["objects"][0]])),
    ),
    "reformatted": (pretty(BASE), C),
}


@pytest.mark.parametrize("rule", sorted(REPAIRS))
def test_repair_rule(rule: str) -> None:
    faulty, expected = REPAIRS[rule]
    result = check_caption(faulty)
    assert result.valid, result.errors
    assert rule in {c.rule for c in result.corrections}
    assert result.caption == expected
    assert result.corrected
    # the repaired caption is a fixed point
    again = check_caption(result.caption)
    assert again.valid and again.corrections == [] and again.caption == result.caption


def test_every_repair_rule_is_tested() -> None:
    assert set(REPAIRS) == set(REPAIR_RULES)


# -- repair details ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (0, "very low"),
        (5.49, "very low"),
        (5.5, "low"),
        (6, "medium"),
        (6.99, "medium"),
        (7.0, "high"),
        (7.6, "very high"),
        (10, "very high"),
    ],
)
def test_aesthetic_score_buckets(value: float, label: str) -> None:
    result = check_caption(dumps(with_aesthetics(aesthetic_score=value)))
    assert json.loads(result.caption)["aesthetics"]["aesthetic_score"] == label


@pytest.mark.parametrize(
    ("value", "label"), [(0.5, "very low"), (0.8, "low"), (0.85, "medium"), (0.9, "high"), (0.91, "very high")]
)
def test_preference_score_buckets(value: float, label: str) -> None:
    result = check_caption(dumps(with_aesthetics(preference_score=value)))
    assert json.loads(result.caption)["aesthetics"]["preference_score"] == label


def test_unknown_key_is_also_a_warning() -> None:
    result = check_caption(REPAIRS["unknown_key_dropped"][0])
    assert [(w.rule, w.path) for w in result.warnings] == [
        ("unknown_key_dropped", "caption.lighting.camera"),
        ("unknown_key_dropped", "caption.hair_color"),
    ]
    assert result.warnings[1].message == "caption.hair_color was dropped: it is not a FIBO caption key"


def test_python_literal_handles_none_true_and_apostrophes() -> None:
    text = repr({**BASE, "style_medium": None, "artistic_style": 'it\'s "cute", glossy'})
    result = check_caption(text)
    assert result.valid
    assert json.loads(result.caption)["artistic_style"] == 'it\'s "cute", glossy'
    assert "style_medium" not in json.loads(result.caption)


def test_string_content_is_never_rewritten_by_syntax_repairs() -> None:
    # '//' and ',}' inside strings are content, not comments or trailing commas
    obj = variant(context="See https://example.com/a,} and /* this */ too, ok")
    text = _trailing_commas(pretty(obj))
    result = check_caption(text)
    assert result.valid and json.loads(result.caption)["context"] == obj["context"]


@pytest.mark.parametrize(
    ("text", "rules"),
    [
        ("[Caption]\n" + C, ["surrounding_prose"]),
        ("Use {braces} sparingly. Caption: " + C, ["surrounding_prose"]),
        ("// generated\n" + C + "\n/* end */", ["comments"]),
        ("```json\n" + C + "\n```\nDone.", ["code_fence", "surrounding_prose"]),
        ("<think>I see {a fox}</think>\n" + C + "<|im_end|>\n<|im_start|>user\n{}", ["stop_tokens"]),
    ],
)
def test_text_around_the_object(text: str, rules: list[str]) -> None:
    result = check_caption(text)
    assert result.caption == C and [c.rule for c in result.corrections] == rules


def test_markup_inside_strings_is_content() -> None:
    obj = variant(context="Shows ``` fences, <think>tags</think> and <|im_end|> tokens, // and /* */.")
    text = canonical_json(obj)
    assert check_caption(text).caption == text
    assert check_caption(pretty(obj)).caption == text
    assert check_caption("```json\n" + pretty(obj) + "\n```").caption == text


def test_second_python_style_object_is_not_dropped_as_prose() -> None:
    assert check_caption(C + "\n" + repr(BASE)).errors[0].rule == "multiple_objects"


def test_json_repair_only_sees_caption_sized_text() -> None:
    text = "{" + "key: value, " * 1100 + "}"  # 13 KB of unquoted keys: json-repair would take seconds
    result = check_caption(text)
    assert result.errors[0].rule == "too_large"


def test_curly_quotes_as_delimiters_are_repaired() -> None:
    text = C.replace('"context":"Illustration', "\u201ccontext\u201d: \u201cIllustration").replace(
        'invitation."', "invitation.\u201d"
    )
    result = check_caption(text)
    assert result.valid and result.caption == C
    assert [c.rule for c in result.corrections] == ["json_syntax"]


def test_empty_item_in_a_list_keeps_original_index_in_error_paths() -> None:
    objects = [None, {"description": "A gift box.", "relationship": "Alone."}]
    result = check_caption(dumps(variant(objects=objects)))
    assert [e.path for e in result.errors] == ["caption.objects[1].location"]


def test_single_object_wrap_needs_an_object_shaped_value() -> None:
    result = check_caption(dumps(variant(objects={"first": BASE["objects"][0]})))
    assert not result.valid
    assert result.errors[0].message == "caption.objects must be a list, not an object"


# -- errors ------------------------------------------------------------------------------------------

# rule -> (input, path, exact message)
ERRORS: dict[str, tuple[str, str, str]] = {
    "empty_input": (" \ufeff\n ", "caption", "caption is empty"),
    "not_json": ("I'm sorry, I cannot describe this image.", "caption", "caption is not JSON: no object found"),
    "truncated": (
        C[:-60],
        "caption",
        "caption is truncated: the JSON ends before its brackets are closed",
    ),
    "multiple_objects": (C + "\n" + C, "caption", "caption holds several JSON objects; send exactly one"),
    "duplicate_key_conflict": (
        C.replace('"direction":"Front-lit from above."', '"direction":"Front-lit from above.","direction":"Backlit."'),
        "caption.lighting.direction",
        "caption.lighting.direction is given more than once with different values",
    ),
    "not_an_object": ('"a cat on a mat"', "caption", "caption must be a JSON object, not a string"),
    "too_large": (
        "{" + "x" * 200_000,
        "caption",
        "caption is not valid JSON and too large to repair (200001 characters)",
    ),
    "too_deep": ("", "caption", "caption is nested too deeply"),  # input built in the test
    "required": (
        dumps(variant(lighting={"conditions": "Bright."})),
        "caption.lighting.direction",
        "caption.lighting.direction is required",
    ),
    "wrong_type": (
        dumps(variant(lighting="bright")),
        "caption.lighting",
        "caption.lighting must be an object, not a string",
    ),
    "invalid_choice": (
        dumps(with_aesthetics(aesthetic_score="excellent")),
        "caption.aesthetics.aesthetic_score",
        'caption.aesthetics.aesthetic_score must be one of: very low, low, medium, high, very high, not "excellent"',
    ),
    "out_of_range": (  # a whole number to JSON Schema, but past what Bria's parser reads into an int
        dumps(with_object(0, number_of_objects=1e20)),
        "caption.objects[0].number_of_objects",
        "caption.objects[0].number_of_objects must be an integer Bria's model can read, not 1e+20",
    ),
    "unprocessable": (C, "caption", "caption could not be processed"),  # with a broken normaliser
    # Defensive mappings: normalisation makes these unreachable through check_caption; tested below.
    "empty_text": ("", "", ""),
    "unknown_key": ("", "", ""),
    "schema": ("", "", ""),
}


@pytest.mark.parametrize(
    "rule", sorted(set(ERRORS) - {"too_deep", "unprocessable", "empty_text", "unknown_key", "schema"})
)
def test_error_rule(rule: str) -> None:
    text, path, message = ERRORS[rule]
    result = check_caption(text)
    assert not result.valid and result.caption is None
    assert (result.errors[0].rule, result.errors[0].path, result.errors[0].message) == (rule, path, message)
    assert result.error_message().startswith(message)


def test_error_rule_too_deep() -> None:
    # JSON that json.loads accepts but is too deep to walk safely inside the 'objects' list
    deep = "[" * 950 + "]" * 950
    result = check_caption(C.replace('"objects":[', '"objects":[' + deep + ",", 1))
    assert not result.valid
    assert result.errors[0].rule in {"too_deep", "wrong_type"}  # depends on the interpreter's stack headroom
    from tailorset.fibo import check_visual_schema

    vs = check_visual_schema('{"a":' + "[" * 5000 + "]" * 5000 + "}")
    assert not vs.valid and vs.errors[0] == check_module.Problem(
        "too_deep", "visual_schema", "visual_schema is nested too deeply"
    )


def test_error_rule_unprocessable(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> Any:
        raise KeyError("bug")

    monkeypatch.setattr(check_module, "normalise", broken)
    monkeypatch.setattr(check_module.fast, "canonical_and_clean", broken)  # C is canonical: it takes the fast path
    result = check_caption(C)
    assert [(e.rule, e.message) for e in result.errors] == [("unprocessable", "caption could not be processed")]


@pytest.mark.parametrize(
    ("instance", "rule", "message"),
    [
        ({**BASE, "context": " "}, "empty_text", "caption.context must not be blank"),
        ({**BASE, "mood": "calm"}, "unknown_key", "caption has keys the schema does not allow"),
    ],
)
def test_defensive_schema_mappings(instance: dict[str, Any], rule: str, message: str) -> None:
    problems = check_module._schema_problems(instance, check_module.Log())
    assert [(p.rule, p.message) for p in problems] == [(rule, message)]


def test_schema_fallback_mapping() -> None:
    from jsonschema.exceptions import ValidationError

    err = ValidationError("is too long", validator="maxLength", validator_value=3, instance="abcd", path=["context"])
    ((_, problem),) = check_module._describe_error(err, {"context": "abcd"}, check_module.Log())
    assert (problem.rule, problem.message) == ("schema", "caption.context is invalid: is too long")


def test_every_error_rule_is_tested() -> None:
    assert set(ERRORS) == set(ERROR_RULES)


def test_truncated_input_never_reaches_json_repair(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(syntax_module, "repair_json", lambda *a, **k: calls.append("called"))
    for cut in (C[:-1], C[:-60], C[:500], "```json\n" + pretty(BASE)[:-3], repr(BASE)[:-10]):
        result = check_caption(cut)
        assert [e.rule for e in result.errors] == ["truncated"], cut[-40:]
    assert calls == []


def test_truncated_inside_a_string() -> None:
    assert check_caption(C[: C.index("Cheerful") + 3]).errors[0].rule == "truncated"


@pytest.mark.parametrize(
    ("changes", "path", "message"),
    [
        ({"short_description": ""}, "caption.short_description", "caption.short_description is required"),
        ({"context": None}, "caption.context", "caption.context is required"),
        ({"lighting": {}}, "caption.lighting", "caption.lighting is required"),
        ({"aesthetics": "moody"}, "caption.aesthetics", "caption.aesthetics must be an object, not a string"),
        (
            {"photographic_characteristics": {"focus": "Sharp."}},
            "caption.photographic_characteristics.depth_of_field",
            "caption.photographic_characteristics.depth_of_field is required",
        ),
        (
            {"text_render": ["HAPPY BIRTHDAY"]},
            "caption.text_render[0]",
            "caption.text_render[0] must be an object, not a string",
        ),
        ({"style_medium": True}, "caption.style_medium", "caption.style_medium must be a string, not a boolean"),
    ],
)
def test_never_repaired(changes: dict[str, Any], path: str, message: str) -> None:
    result = check_caption(dumps(variant(**changes)))
    assert not result.valid
    assert (result.errors[0].path, result.errors[0].message) == (path, message)


@pytest.mark.parametrize("value", ["several", "2.5", 2.5, "1e3", "1 000", [3]])
def test_number_of_objects_is_only_coerced_losslessly(value: Any) -> None:
    result = check_caption(dumps(with_object(0, number_of_objects=value)))
    assert not result.valid
    assert result.errors[0].path == "caption.objects[0].number_of_objects"
    assert result.errors[0].message.startswith("caption.objects[0].number_of_objects must be an integer")


@pytest.mark.parametrize(
    ("value", "read"),
    [(0, 0), (-3, -3), ("-3", -3), ("1_000", 1000), (" 7 ", 7), (7.0, 7), (True, 1), (10**20, 10**20)],
)
def test_number_of_objects_is_read_as_bria_reads_it(value: Any, read: int) -> None:
    result = check_caption(dumps(with_object(0, number_of_objects=value)))
    assert result.valid, result.errors
    assert json.loads(result.caption)["objects"][0]["number_of_objects"] == read


def test_numeric_score_out_of_scale_is_not_guessed() -> None:
    result = check_caption(dumps(with_aesthetics(preference_score=8)))
    assert result.errors[0].rule == "invalid_choice"


def test_json_repair_may_not_change_text() -> None:
    # json-repair would turn this into {"a": ...} with invented structure; the guard refuses it
    result = check_caption("{not json at all}")
    assert not result.valid and result.errors[0].rule == "not_json"


def test_json_repair_escape_mistakes_are_refused_not_stored() -> None:
    # json-repair 0.64 reads '"\\\\" "b"' (a lone backslash, then a missing comma) as one string
    # swallowing the next key; the content guard refuses that instead of storing altered text.
    text = C.replace('"style_medium":"3D render",', '"style_medium":"3D render\\\\" ')
    result = check_caption(text)
    assert not result.valid and result.errors[0].rule == "not_json"
    # It also adds a quote to a \u escape followed by "[" when a later string holds "]" (found by Hypothesis):
    # "\u00a1[" came back as '¡["'.
    text = C.replace('"style_medium":"3D render",', '"style_medium":"\\u00a1[" "context":"]",')
    result = check_caption(text)
    assert not result.valid and result.errors[0].rule == "not_json"


def test_conflicting_spelling_variants() -> None:
    without_context = C.replace(f',"context":{json.dumps(BASE["context"])}', "")
    result = check_caption(without_context[:-1] + ',"Context":"One thing","CONTEXT":"Another"}')
    assert [e.rule for e in result.errors] == ["duplicate_key_conflict"]


def test_a_variant_beside_its_key_is_dropped_as_bria_ignores_it() -> None:
    result = check_caption(C.replace('"context":', '"Context":"Something else","context":'))
    assert result.valid and result.caption == C
    assert [(w.path, w.message) for w in result.warnings] == [
        ('caption.Context', "caption.Context was dropped: Bria's model reads only the key 'context', as written")
    ]


def test_a_variant_of_an_optional_key_is_dropped_not_renamed() -> None:
    result = check_caption(C.replace('"style_medium":', '"Style Medium":'))
    assert result.valid and "style_medium" not in json.loads(result.caption)
    assert [w.path for w in result.warnings] == ['caption["Style Medium"]']


def test_errors_are_in_document_order_and_message_lists_them() -> None:
    obj = variant(lighting={"conditions": "Bright."}, aesthetics={"color_scheme": "Pastel."}, context=...)
    result = check_caption(dumps(obj))
    assert [e.path for e in result.errors] == [
        "caption.lighting.direction",
        "caption.aesthetics.composition",
        "caption.aesthetics.mood_atmosphere",
        "caption.context",
    ]
    assert result.error_message() == (
        "caption.lighting.direction is required (and 3 more problems: caption.aesthetics.composition is required; "
        "caption.aesthetics.mood_atmosphere is required; caption.context is required)."
    )


# -- warnings ----------------------------------------------------------------------------------------

LONG = " ".join(["word"] * 201)
WARNINGS: dict[str, tuple[Callable[[], str], str, str]] = {
    "objects_missing": (
        lambda: dumps(variant(objects=...)),
        "caption.objects",
        "caption.objects is missing; FIBO captions normally list the main objects",
    ),
    "too_many_objects": (
        lambda: dumps(variant(objects=BASE["objects"] * 2)),
        "caption.objects",
        "caption.objects lists 6 objects; the guideline is at most 5",
    ),
    "too_many_words": (
        lambda: dumps(variant(short_description=LONG)),
        "caption.short_description",
        "caption.short_description has 201 words; the guideline is at most 200",
    ),
    "token_limit": (
        lambda: dumps(variant(background_setting="x " * 6000)),
        "caption",
        "caption is about 3474 tokens, over the 3000-token text-encoder limit, so its tail may be cut off in training",
    ),
    "captioner_artifact": (
        lambda: dumps(with_object(1, texture="Glossy paper. End of texture answer.")),
        "caption.objects[1].texture",
        "caption.objects[1].texture contains the captioner artifact 'End of texture answer'",
    ),
    "unknown_key_dropped": (
        lambda: dumps({**BASE, "mood": "calm"}),
        "caption.mood",
        "caption.mood was dropped: it is not a FIBO caption key",
    ),
    "edit_instruction_dropped": (
        lambda: dumps({**BASE, "edit_instruction": "Add a hat."}),
        "caption.edit_instruction",
        "caption.edit_instruction was dropped: it belongs to FIBO-Edit captions, not text-to-image ones",
    ),
}


@pytest.mark.parametrize("rule", sorted(WARNINGS))
def test_warning_rule(rule: str) -> None:
    build, path, message = WARNINGS[rule]
    result = check_caption(build())
    assert result.valid, result.errors  # soft limits never make a caption invalid
    assert [(w.rule, w.path, w.message) for w in result.warnings] == [(rule, path, message)]


def test_every_warning_rule_is_tested() -> None:
    assert set(WARNINGS) == set(WARNING_RULES)


def test_word_limits_on_objects_and_artistic_style() -> None:
    result = check_caption(dumps({**with_object(0, description=LONG), "artistic_style": "cute glossy minimal pastel"}))
    assert [(w.path, w.message) for w in result.warnings] == [
        (
            "caption.objects[0].description",
            "caption.objects[0].description has 201 words; the guideline is at most 100",
        ),
        ("caption.artistic_style", "caption.artistic_style has 4 words; the guideline is at most 3"),
    ]


def test_warnings_on_canonical_input_come_from_the_fast_path() -> None:
    text = canonical_json(variant(objects=...))
    result = check_caption(text)
    assert result.valid and result.caption == text and result.corrections == []
    assert [w.rule for w in result.warnings] == ["objects_missing"]
