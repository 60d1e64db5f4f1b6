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

from tailorset.db import captions as queries
from tailorset.db import repository as repo
from tailorset.db.models import utcnow
from tailorset.domain import captions, lifecycle
from tailorset.domain.errors import Conflict, Invalid, NotFound
from tailorset.services import Services

# The `regex` module, unlike `re`, can stop a pathological pattern (and lets go of the GIL while it matches):
# the whole edit gets this long, in a worker thread, outside any transaction.
REGEX_BUDGET_SECONDS = 2.0
PAGE_SIZE = 100  # changes listed in one answer, unless the request asks for fewer or more


@dataclass(frozen=True)
class Replace:
    find: str
    replace: str = ""
    use_regex: bool = False
    case_sensitive: bool = True
    caption_source: str | None = None  # only captions from this source
    image_ids: list[int] | None = None  # only these images
    limit: int = PAGE_SIZE  # the answer lists at most this many changes…
    after: int = 0  # …of images after this id


@dataclass
class Change:
    image_id: int
    before: str | None
    after: str | None
    error: str | None = None  # why this result could not be saved (too long, invalid FIBO…)


@dataclass
class EditResult:
    batch_id: str | None
    changes: list[Change] = field(default_factory=list)  # one page of them, for a replace
    skipped: list[dict] = field(default_factory=list)
    matched: int = 0  # captions the replace changes (or would): all of them, listed or not
    refused: int = 0  # of those, how many results could not be saved
    next_after: int | None = None  # `after` for the next page of changes, while there is one


class _TooLong(Exception):
    pass


def _substitution(spec: Replace, max_chars: int):
    """The edit as a function of one caption, which stops as soon as the result passes `max_chars` (a short
    find and a long replace multiply a caption), or the whole edit passes its time budget."""
    flags = 0 if spec.case_sensitive else regex.IGNORECASE
    try:
        pattern = regex.compile(spec.find if spec.use_regex else regex.escape(spec.find), flags)
    except regex.error as exc:
        raise Invalid(f"find is not a valid regular expression ({exc}).") from None
    deadline = time.monotonic() + REGEX_BUDGET_SECONDS

    def apply(text: str) -> str:
        room = max_chars - len(text)

        def one(match) -> str:
            nonlocal room
            try:  # a literal replacement is inserted as it is: no group references, no escapes
                out = match.expand(spec.replace) if spec.use_regex else spec.replace
            except (regex.error, IndexError) as exc:
                raise Invalid(f"replace refers to a group find does not have ({exc}).") from None
            room -= len(out) - (match.end() - match.start())
            if room < 0:
                raise _TooLong
            return out

        try:
            return pattern.sub(one, text, timeout=max(0.01, deadline - time.monotonic()), concurrent=True)
        except TimeoutError:
            raise Invalid(f"find took longer than {REGEX_BUDGET_SECONDS:g} s to run; simplify the pattern.") from None

    return apply


def _edit(spec: Replace, rows, training_version: str, max_chars: int, dry_run: bool) -> tuple[EditResult, list]:
    """The edit worked out (CPU only: run in a worker thread): one page of changes, and for a real run every
    change to write."""
    apply = _substitution(spec, captions.max_input_chars(training_version, max_chars))
    result, writes = EditResult(batch_id=None), []
    for image_id, before in rows:
        try:
            after = apply(before)
        except _TooLong:
            change = Change(image_id, before, None, f"the new caption would be over {max_chars:,} characters long.")
        else:
            if after == before:
                continue
            change = Change(image_id, before, after)
            try:
                change.after = captions.check_caption(after, training_version, max_chars).text
            except Invalid as exc:
                change.error = exc.message
        result.matched += 1
        result.refused += change.error is not None
        if not dry_run:
            if change.error:  # nothing will be written: no need to go on
                raise Invalid(f"Nothing was changed: the new caption of image {image_id} is invalid: {change.error}")
            writes.append(change)
        if image_id > spec.after:
            if len(result.changes) < spec.limit:
                result.changes.append(change)
            elif result.next_after is None:
                result.next_after = result.changes[-1].image_id
    return result, writes


async def replace(
    services: Services, org_id: int, dataset_id: int, spec: Replace, dry_run: bool, actor: str
) -> EditResult:
    if not spec.find:
        raise Invalid("find must not be empty.")
    max_chars = services.settings.max_caption_chars
    async with services.db.read() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id)
        if not dry_run:
            lifecycle.ensure_draft(dataset.id, dataset.status, "edit its captions")
        rows = await queries.live_captions(session, dataset.id, spec.caption_source, spec.image_ids)
    # The regexes and checks run with no transaction open: a slow pattern holds no lock.
    result, writes = await services.run_work(_edit, spec, rows, dataset.training_version, max_chars, dry_run)
    if dry_run:
        return result
    result.batch_id = str(uuid.uuid4())
    async with services.db.write() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id, lock="share")
        lifecycle.ensure_draft(dataset.id, dataset.status, "edit its captions")
        images = await queries.images_by_id(session, [change.image_id for change in writes])
        now = utcnow()
        for change in writes:
            image = images[change.image_id]
            if image.deleted_at is not None or image.caption != change.before:
                raise Conflict(
                    f"The caption of image {image.id} changed while the replace ran; nothing was changed, try again."
                )
            repo.set_caption(image, change.after, captions.MANUAL, now)
            repo.record_caption(session, image, f"{actor} replace", batch_id=result.batch_id)
    return result


async def undo(services: Services, org_id: int, dataset_id: int, batch_id: str, actor: str) -> EditResult:
    """Put back what each image's caption was before the batch (itself a batch, so undo is undoable)."""
    async with services.db.write() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id, lock="share")
        lifecycle.ensure_draft(dataset.id, dataset.status, "edit its captions")
        batch = await queries.batch_revisions(session, dataset.id, batch_id)
        if not batch:
            raise NotFound(f"Caption batch {batch_id} not found in dataset {dataset.id}.")
        result = EditResult(batch_id=str(uuid.uuid4()))
        images = await queries.images_by_id(session, [r.image_id for r in batch])
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
    result.matched = len(result.changes)
    return result
