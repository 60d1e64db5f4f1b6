"""Datasets go draft → completed, and a completed dataset is frozen (clone it to change it).

Projects lock to one training family: FIBO or legacy (max, light, 3.2, 2.3 mix freely)."""

from __future__ import annotations

from datetime import datetime, timedelta

from tailorset.domain.errors import Conflict, Gone, Invalid, NotFound

FIBO = "fibo"
LEGACY_VERSIONS = ("max", "light", "3.2", "2.3")
TRAINING_VERSIONS = (*LEGACY_VERSIONS, FIBO)
DRAFT, COMPLETED = "draft", "completed"
STATUSES = (DRAFT, COMPLETED)

# The fewest images a dataset needs before it can be completed.
MIN_IMAGES_TO_COMPLETE = {FIBO: 5}
MIN_IMAGES_TO_COMPLETE_LEGACY = 1


def family(training_version: str) -> str:
    return "legacy" if is_legacy(training_version) else FIBO


# The two predicates below hold for a value, and written against a column they are the SQL condition of the
# same rule (a SQLAlchemy column's == and != build the WHERE clause): the db layer's guards are built from them.


def is_draft(status):
    """Whether a dataset's captions and images may still change: a completed dataset is frozen."""
    return status == DRAFT


def is_legacy(training_version):
    """Whether a dataset takes plain-text captions (every version but FIBO)."""
    return training_version != FIBO


def check_family(project_id: int, project_version: str | None, dataset_version: str) -> None:
    """A dataset must belong to the family its project is locked to."""
    if project_version is not None and family(project_version) != family(dataset_version):
        raise Conflict(
            f"Project {project_id} is locked to {family(project_version)} training versions; "
            f"a {dataset_version!r} dataset cannot be added to it."
        )


def ensure_draft(dataset_id: int, status: str, action: str) -> None:
    """Refuse to change a completed dataset."""
    if not is_draft(status):
        raise Conflict(f"Dataset {dataset_id} is completed, so you cannot {action}; clone it as a draft instead.")


def deleted(kind: str, ident: int, when: datetime, missing: str, retention: timedelta | None, now: datetime):
    """A deleted row is Gone (410) for the retention period, then as unknown as a missing one (404): raises."""
    if retention is not None and when < now - retention:
        raise NotFound(missing)  # long enough ago that the API no longer remembers it
    raise Gone(f"{kind} {ident} was deleted on {when:%Y-%m-%d %H:%M} UTC.")


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
