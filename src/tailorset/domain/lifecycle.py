"""Datasets go draft → completed, and a completed dataset is frozen (clone it to change it).

Projects lock to one training family: FIBO or legacy (max, light, 3.2, 2.3 mix freely)."""

from __future__ import annotations

from tailorset.domain.errors import Conflict, Invalid

FIBO = "fibo"
LEGACY_VERSIONS = ("max", "light", "3.2", "2.3")
TRAINING_VERSIONS = (*LEGACY_VERSIONS, FIBO)
DRAFT, COMPLETED = "draft", "completed"

# The fewest images a dataset needs before it can be completed.
MIN_IMAGES_TO_COMPLETE = {FIBO: 5}
MIN_IMAGES_TO_COMPLETE_LEGACY = 1


def family(training_version: str) -> str:
    return FIBO if training_version == FIBO else "legacy"


def check_family(project_id: int, project_version: str | None, dataset_version: str) -> None:
    """A dataset must belong to the family its project is locked to."""
    if project_version is not None and family(project_version) != family(dataset_version):
        raise Conflict(
            f"Project {project_id} is locked to {family(project_version)} training versions; "
            f"a {dataset_version!r} dataset cannot be added to it."
        )


def ensure_draft(dataset_id: int, status: str, action: str) -> None:
    """Refuse to change a completed dataset."""
    if status == COMPLETED:
        raise Conflict(f"Dataset {dataset_id} is completed, so you cannot {action}; clone it as a draft instead.")


def min_images_to_complete(training_version: str) -> int:
    return MIN_IMAGES_TO_COMPLETE.get(training_version, MIN_IMAGES_TO_COMPLETE_LEGACY)


def check_status_change(dataset_id: int, current: str, requested: str, images_count: int, training_version: str):
    """Validate a status change; returns True when the status actually changes."""
    if requested == current:
        return False
    if requested == DRAFT:
        raise Conflict(f"Dataset {dataset_id} is completed and cannot return to draft; clone it to make changes.")
    needed = min_images_to_complete(training_version)
    if images_count < needed:
        raise Conflict(
            f"Dataset {dataset_id} has {images_count} image{'s' if images_count != 1 else ''}; "
            f"a {training_version} dataset needs at least {needed} to be completed."
        )
    return True


def check_field_for_version(field: str, training_version: str) -> None:
    """caption_prefix belongs to legacy datasets, visual_schema to FIBO datasets."""
    if field == "caption_prefix" and training_version == FIBO:
        raise Invalid("caption_prefix applies only to legacy datasets; FIBO datasets use visual_schema.")
    if field == "visual_schema" and training_version != FIBO:
        raise Invalid("visual_schema applies only to FIBO datasets; legacy datasets use caption_prefix.")
