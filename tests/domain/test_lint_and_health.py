"""Caption lint and the dataset health rules as plain functions over text and numbers."""

from __future__ import annotations

import json

import pytest

from tailorset.domain import health, lint
from tests.fibo.fibo_testkit import fixture


def rules(caption, version="max", prefix=None) -> list[str]:
    return [f.rule for f in lint.lint_caption(caption, version, prefix).findings]


def test_every_rule_has_its_own_bit_and_blocking_is_their_sum():
    bits = [rule.bit for rule in lint.RULES]
    assert len(set(bits)) == len(bits) and all(bit & (bit - 1) == 0 for bit in bits)
    assert sum(bits) == lint.ALL
    assert sum(rule.bit for rule in lint.RULES if rule.blocking) == lint.BLOCKING
    assert [r.name for r in lint.rules_in(lint.BY_NAME["empty"].bit | lint.BY_NAME["fibo_warnings"].bit)] == [
        "empty", "fibo_warnings",
    ]  # fmt: skip


def test_a_good_caption_has_no_findings_and_lists_its_words():
    found = lint.lint_caption("A photo of a tabby cat on a red sofa", "max", "A photo of")
    assert found.findings == [] and found.issues == 0
    assert found.terms == ["tabby", "cat", "red", "sofa"]
    assert found.tokens and found.tokens < found.encoder.limit


@pytest.mark.parametrize("empty", [None, "", "   "])
def test_no_caption(empty):
    found = lint.lint_caption(empty, "max", "sks")
    assert rules(empty, prefix="sks") == ["empty"] and found.tokens is None
    assert found.issues == lint.BY_NAME["empty"].bit


def test_the_prefix_must_be_there_once_and_something_after_it():
    assert rules("a cat", prefix="sks style,") == ["prefix_missing"]
    assert rules("sks style, a cat, sks style", prefix="sks style,") == ["prefix_repeated"]
    assert rules("SKS  Style, a cat", prefix="sks style") == []  # case and spacing do not matter
    assert rules("sks style, a photo of the", prefix="sks style") == ["no_subject"]
    assert rules("a photo", prefix=None) == ["no_subject"]


def test_hidden_characters_and_the_token_limit():
    assert rules("a cat\u200b on a mat") == ["control_characters"]
    long = " ".join(["cat"] * 200)
    found = lint.lint_caption(long, "max", None)
    assert [f.rule for f in found.findings] == ["token_limit"]
    assert found.tokens > found.encoder.limit and found.findings[0].blocking


def test_fibo_fields_not_determined_are_found_with_their_path():
    caption = fixture("balloons_render")
    assert rules(json.dumps(caption), "fibo") == []
    caption["lighting"] = {**caption["lighting"], "direction": "Not determined"}
    found = lint.lint_caption(json.dumps(caption), "fibo", None)
    [finding] = [f for f in found.findings if f.rule == "not_determined"]
    assert finding.path == "caption.lighting.direction" and not finding.blocking


def test_image_issues_from_measurements():
    sharp = health.Picture(1024, 1024, False, 500.0, 0.5, 0.0, 0.0, False)
    assert health.image_issues(sharp) == []
    unmeasured = health.Picture(1024, 1024, None, None, None, None, None, None)
    assert health.image_issues(unmeasured) == []  # nothing measured, nothing found
    bad = health.Picture(300, 1000, True, 3.0, 0.05, 0.9, 0.0, True)
    assert health.image_issues(bad) == [
        "blurry", "underexposed", "below_recommended", "extreme_aspect_ratio", "transparent",
    ]  # fmt: skip
    assert bad.upright == (1000, 300)
    assert health.image_issues(health.Picture(2048, 2048, False, 500.0, 0.95, 0.0, 0.1, False)) == ["overexposed"]


def test_readiness_counts_the_upper_limit_too():
    # (the lower limits and the visual_schema rule: tests/test_quality.py)
    over = health.readiness("light", 12, 10, None)
    assert not over.ready and over.blocking == ["The dataset holds 12 images; at most 10 are allowed."]
    assert over.max_images == 10 and over.recommended == (15, 100)
    assert over.warnings == ["Bria recommends 15-100 images for light training; the dataset has 12."]
    assert health.readiness("max", 50, 50, None).blocking == []
