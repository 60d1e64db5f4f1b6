"""Caption rules as plain functions: one way to update a caption, the prefix applied exactly once, the
length limits (FIBO counted in compact form), and lint's answer without saving."""

from __future__ import annotations

import json

import pytest

from tailorset.domain.captions import (
    ManualCaption,
    Regenerate,
    apply_prefix,
    check_caption,
    decide,
    default_prefix,
    is_plain_caption,
    lint,
    max_input_chars,
)
from tailorset.domain.errors import Invalid
from tests.fibo.fibo_testkit import fixture

FIBO_CAPTION = fixture("balloons_render")


def test_an_update_is_either_a_caption_or_a_regeneration():
    assert decide("a cat", None) == ManualCaption("a cat")
    assert decide("a cat", False) == ManualCaption("a cat")
    assert decide("", None) == ManualCaption("")  # an empty caption is checked later, not taken for "none"
    assert decide(None, True) == Regenerate()
    with pytest.raises(Invalid, match="not both"):
        decide("a cat", True)
    for nothing in ((None, None), (None, False)):
        with pytest.raises(Invalid, match="Provide a caption"):
            decide(*nothing)


@pytest.mark.parametrize(
    ("prefix", "text", "expected"),
    [
        ("A photo of", "a tabby cat", "A photo of a tabby cat"),
        ("A photo of", "A tabby cat", "A photo of a tabby cat"),  # a sentence's capital continues the prefix
        ("A photo of", "NASA rocket", "A photo of NASA rocket"),  # an acronym keeps its capitals
        ("sks style", "a tabby cat", "sks style, a tabby cat"),  # a closed prefix gets a comma
        ("sks style,", "a tabby cat", "sks style, a tabby cat"),
        ("A photo of Rex,", "a dog", "A photo of Rex, a dog"),
        ("sks style", "SKS STYLE, a cat", "sks style, a cat"),  # already there (any case): not repeated
        ("", "  a cat  ", "a cat"),
        (None, "a cat", "a cat"),
        ("  a picture of  ", " a cat ", "a picture of a cat"),
    ],
)
def test_the_prefix_is_applied_exactly_once(prefix, text, expected):
    assert apply_prefix(prefix, text) == expected
    assert apply_prefix(prefix, apply_prefix(prefix, text)) == expected  # idempotent


def test_a_new_dataset_prefix_comes_from_the_project():
    assert default_prefix("photography", "other", None) == "A photo of"
    assert default_prefix("illustration", "object", "Rex") == "An illustration of"  # a name only for a character
    assert default_prefix("photography", "defined_character", "Rex") == "A photo of Rex,"
    assert default_prefix("photography", "defined_character", None) == "A photo of"


def test_a_plain_caption_is_non_empty_within_the_limit_and_without_control_characters():
    assert is_plain_caption("a cat", 5)
    assert not is_plain_caption("a cats", 5)
    assert not is_plain_caption("   \n", 100)
    assert not is_plain_caption("a\x07cat", 100)
    assert is_plain_caption("a cat\tsitting\non a mat", 100)  # tab and newline are allowed


def test_legacy_captions_are_checked_as_they_are():
    assert check_caption("a cat", "max", 100).text == "a cat"
    assert check_caption("a cat", "max", 100).corrections == []
    with pytest.raises(Invalid, match="6 characters long; the limit is 5"):
        check_caption("a cats", "light", 5)
    with pytest.raises(Invalid, match="must not be empty"):
        check_caption("  ", "2.3", 100)
    with pytest.raises(Invalid, match="NUL"):
        check_caption("a\x00cat", "max", 100)
    with pytest.raises(Invalid, match="control character"):
        check_caption("a\x1bcat", "max", 100)


def test_fibo_captions_come_back_canonical_and_compact():
    pretty = json.dumps(FIBO_CAPTION, indent=4)
    checked = check_caption(pretty, "fibo", 10_000)
    assert json.loads(checked.text) == FIBO_CAPTION
    assert len(checked.text) < len(pretty) and "\n" not in checked.text
    assert check_caption(checked.text, "fibo", 10_000).text == checked.text  # canonical is a fixed point


def test_fibo_repairs_are_named():
    fenced = "```json\n" + json.dumps(FIBO_CAPTION) + "\n```"
    checked = check_caption(fenced, "fibo", 10_000)
    assert json.loads(checked.text) == FIBO_CAPTION
    assert checked.corrections == ["code_fence"]


def test_fibo_limits_count_the_compact_form_but_read_only_so_much():
    compact = check_caption(json.dumps(FIBO_CAPTION), "fibo", 10_000).text
    limit = len(compact)
    assert max_input_chars("fibo", limit) == 4 * limit and max_input_chars("max", limit) == limit
    padded = json.dumps(FIBO_CAPTION, indent=limit // 100)  # longer than the limit as sent, not once compact
    assert limit < len(padded) <= 4 * limit
    assert check_caption(padded, "fibo", limit).text == compact
    with pytest.raises(Invalid, match="in compact form; the limit is"):
        check_caption(compact, "fibo", limit - 1)
    with pytest.raises(Invalid, match="is not read past"):
        check_caption(" " * (4 * limit) + compact, "fibo", limit)


def test_an_invalid_fibo_caption_says_why():
    with pytest.raises(Invalid) as raised:
        check_caption('{"objects": []}', "fibo", 10_000)
    assert "short_description" in raised.value.message


def test_lint_says_what_saving_would_do_without_saving():
    assert lint("a cat", "max", 100) == {
        "valid": True, "caption": "a cat", "corrections": [], "errors": [], "warnings": [],
    }  # fmt: skip
    too_long = lint("a cats", "max", 5)
    assert not too_long["valid"] and too_long["caption"] is None
    assert [e["rule"] for e in too_long["errors"]] == ["too_large"]
    assert [e["rule"] for e in lint(" ", "max", 5)["errors"]] == ["empty_text"]
    assert [e["rule"] for e in lint("a\x00", "fibo", 5)["errors"]] == ["control_characters"]


def test_lint_of_a_fibo_caption_lists_its_repairs():
    fenced = "```json\n" + json.dumps(FIBO_CAPTION, indent=2) + "\n```"
    result = lint(fenced, "fibo", 10_000)
    assert result["valid"] and json.loads(result["caption"]) == FIBO_CAPTION
    assert [(c["rule"], c["path"]) for c in result["corrections"]] == [("code_fence", "caption")]
    invalid = lint('{"objects": []}', "fibo", 10_000)
    assert not invalid["valid"] and invalid["errors"]
