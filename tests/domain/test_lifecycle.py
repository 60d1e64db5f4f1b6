"""Dataset lifecycle and project families as plain functions: draft → completed, never back; a project
locked to FIBO or to the legacy versions; fields that belong to one family."""

from __future__ import annotations

import pytest

from tailorset.domain.errors import Conflict, Invalid
from tailorset.domain.lifecycle import (
    check_family,
    check_field_for_version,
    check_status_change,
    ensure_draft,
    family,
    min_images_to_complete,
)

LEGACY = ("max", "light", "3.2", "2.3")


def test_legacy_versions_are_one_family_and_fibo_another():
    assert {family(v) for v in LEGACY} == {"legacy"}
    assert family("fibo") == "fibo"


@pytest.mark.parametrize("project", [None, *LEGACY])
@pytest.mark.parametrize("dataset", LEGACY)
def test_legacy_versions_mix_freely(project, dataset):
    check_family(1, project, dataset)  # raises nothing


def test_a_project_is_locked_to_its_family():
    check_family(7, "fibo", "fibo")
    check_family(7, None, "fibo")  # an empty project takes any family
    with pytest.raises(Conflict, match="Project 7 is locked to fibo .* a 'max' dataset"):
        check_family(7, "fibo", "max")
    with pytest.raises(Conflict, match="Project 7 is locked to legacy .* a 'fibo' dataset"):
        check_family(7, "2.3", "fibo")


def test_a_completed_dataset_is_frozen():
    ensure_draft(3, "draft", "upload images")
    with pytest.raises(Conflict) as raised:
        ensure_draft(3, "completed", "upload images")
    assert raised.value.message == ("Dataset 3 is completed, so you cannot upload images; clone it as a draft instead.")


def test_completing_needs_enough_images():
    assert min_images_to_complete("fibo") == 5
    assert {min_images_to_complete(v) for v in LEGACY} == {1}
    assert check_status_change(1, "draft", "completed", 5, "fibo") is True
    assert check_status_change(1, "draft", "completed", 1, "max") is True
    with pytest.raises(Conflict, match="has 4 images; a fibo dataset needs at least 5"):
        check_status_change(1, "draft", "completed", 4, "fibo")
    with pytest.raises(Conflict, match="has 0 images; a max dataset needs at least 1"):
        check_status_change(1, "draft", "completed", 0, "max")
    with pytest.raises(Conflict, match="has 1 image;"):
        check_status_change(1, "draft", "completed", 1, "fibo")


def test_a_status_is_never_changed_back_and_setting_it_again_changes_nothing():
    assert check_status_change(1, "draft", "draft", 0, "max") is False
    assert check_status_change(1, "completed", "completed", 0, "fibo") is False
    with pytest.raises(Conflict, match="cannot return to draft"):
        check_status_change(1, "completed", "draft", 10, "max")


def test_caption_prefix_is_legacy_and_visual_schema_is_fibo():
    check_field_for_version("caption_prefix", "max")
    check_field_for_version("visual_schema", "fibo")
    check_field_for_version("name", "fibo")
    with pytest.raises(Invalid, match="caption_prefix applies only to legacy"):
        check_field_for_version("caption_prefix", "fibo")
    with pytest.raises(Invalid, match="visual_schema applies only to FIBO"):
        check_field_for_version("visual_schema", "light")
