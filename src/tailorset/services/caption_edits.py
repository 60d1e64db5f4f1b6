"""Bulk caption edits: find/replace across a dataset (with a dry run), and undo as one batch.

A replace is atomic: every changed caption is written in one transaction, each with a revision
carrying the same batch id, and for FIBO datasets every result must still be a valid caption or
nothing is written. Undo restores each image's caption from before the batch, unless someone
changed it since (then that image is skipped and reported, never clobbered)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import regex
from sqlalchemy import select

from tailorset.db import repository as repo
from tailorset.db.models import CaptionRevision, Image, utcnow
from tailorset.domain import captions, lifecycle
from tailorset.domain.errors import Invalid, NotFound
from tailorset.services import Services

# The `regex` module, unlike `re`, can stop a pathological pattern: the whole edit gets this long.
REGEX_BUDGET_SECONDS = 2.0


@dataclass(frozen=True)
class Replace:
    find: str
    replace: str = ""
    use_regex: bool = False
    case_sensitive: bool = True
    caption_source: str | None = None  # only captions from this source
    image_ids: list[int] | None = None  # only these images


@dataclass
class Change:
    image_id: int
    before: str | None
    after: str | None
    error: str | None = None  # why this result could not be saved (FIBO validation)


@dataclass
class EditResult:
    batch_id: str | None
    changes: list[Change] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)


def _substitution(spec: Replace):
    flags = 0 if spec.case_sensitive else regex.IGNORECASE
    try:
        pattern = regex.compile(spec.find if spec.use_regex else regex.escape(spec.find), flags)
        if spec.use_regex:
            pattern.sub(spec.replace, "")  # validates group references in the replacement
    except (regex.error, IndexError) as exc:
        raise Invalid(f"find is not a valid regular expression ({exc}).") from None
    # A literal replacement is inserted as it is: no group references, no escapes.
    replacement = spec.replace if spec.use_regex else (lambda _match: spec.replace)
    deadline = time.monotonic() + REGEX_BUDGET_SECONDS

    def apply(text: str) -> str:
        try:
            return pattern.sub(replacement, text, timeout=max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            raise Invalid(f"find took longer than {REGEX_BUDGET_SECONDS:g} s to run; simplify the pattern.") from None

    return apply


async def replace(
    services: Services, org_id: int, dataset_id: int, spec: Replace, dry_run: bool, actor: str
) -> EditResult:
    if not spec.find:
        raise Invalid("find must not be empty.")
    apply = _substitution(spec)
    max_chars = services.settings.max_caption_chars
    async with services.db.write() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id, lock="share")
        if not dry_run:
            lifecycle.ensure_draft(dataset.id, dataset.status, "edit its captions")
        live = (Image.dataset_id == dataset.id, Image.deleted_at.is_(None), Image.caption.is_not(None))
        query = select(Image).where(*live)
        if spec.caption_source:
            query = query.where(Image.caption_source == spec.caption_source)
        if spec.image_ids is not None:
            query = query.where(Image.id.in_(spec.image_ids))
        result = EditResult(batch_id=None if dry_run else str(uuid.uuid4()))
        images = {}
        for image in (await session.execute(query.order_by(Image.id))).scalars():
            after = apply(image.caption)
            if after == image.caption:
                continue
            images[image.id] = image
            change = Change(image.id, image.caption, after)
            try:
                change.after = captions.check_caption(after, dataset.training_version, max_chars).text
            except Invalid as exc:
                change.error = exc.message
            result.changes.append(change)
        if dry_run:
            return result
        failed = next((c for c in result.changes if c.error), None)
        if failed:
            raise Invalid(f"Nothing was changed: the new caption of image {failed.image_id} is invalid: {failed.error}")
        now = utcnow()
        for change in result.changes:
            image = images[change.image_id]
            repo.set_caption(image, change.after, captions.MANUAL, now)
            repo.record_caption(session, image, f"{actor} replace", batch_id=result.batch_id)
    return result


async def undo(services: Services, org_id: int, dataset_id: int, batch_id: str, actor: str) -> EditResult:
    """Put back what each image's caption was before the batch (itself a batch, so undo is undoable)."""
    async with services.db.write() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id, lock="share")
        lifecycle.ensure_draft(dataset.id, dataset.status, "edit its captions")
        batch = (
            (
                await session.execute(
                    select(CaptionRevision)
                    .join(Image, Image.id == CaptionRevision.image_id)
                    .where(CaptionRevision.batch_id == batch_id, Image.dataset_id == dataset.id)
                    .order_by(CaptionRevision.id)
                )
            )
            .scalars()
            .all()
        )
        if not batch:
            raise NotFound(f"Caption batch {batch_id} not found in dataset {dataset.id}.")
        result = EditResult(batch_id=str(uuid.uuid4()))
        images = {image.id: image for image in await _images(session, [r.image_id for r in batch])}
        now = utcnow()
        for revision in batch:
            image = images.get(revision.image_id)
            if image is None or image.deleted_at is not None:
                result.skipped.append({"image_id": revision.image_id, "reason": "The image was deleted."})
                continue
            latest = await repo.latest_revision(session, image.id)
            if latest is None or latest.id != revision.id:
                result.skipped.append({"image_id": image.id, "reason": "Its caption changed after the batch."})
                continue
            previous = await repo.revision_before(session, image.id, revision.id)
            before = (
                (previous.caption, previous.caption_source, previous.caption_confidence, previous.caption_signals)
                if previous
                else (None, None, None, None)
            )
            result.changes.append(Change(image.id, image.caption, before[0]))
            repo.set_caption(
                image, before[0], before[1], now, confidence=before[2], signals=before[3], chosen_by_person=True
            )
            repo.record_caption(session, image, f"{actor} undo {batch_id}", batch_id=result.batch_id)
    return result


async def _images(session, ids: list[int]) -> list[Image]:
    if not ids:
        return []
    return list((await session.execute(select(Image).where(Image.id.in_(ids)))).scalars())
