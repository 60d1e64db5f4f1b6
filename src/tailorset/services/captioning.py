"""Regenerate All Captions: a background job that re-captions a dataset image by image.

The job survives restarts and worker crashes: each batch's captions and the job's cursor (the last
image handled) commit in one transaction, so a worker that dies loses at most the batch it was
working on, and the next worker starts right after the cursor. Manual captions are kept unless
the request asked for them, and a caption someone changed after the request is never overwritten.
"""

from __future__ import annotations

import json
import logging

from tailorset.captioners import Caption, CaptionerError
from tailorset.db import captions as queries
from tailorset.db import repository as repo
from tailorset.db.models import Job, utcnow
from tailorset.domain import captions, lifecycle
from tailorset.domain.errors import Conflict, Gone, NotFound
from tailorset.domain.jobs import JobStatus
from tailorset.services import Services, files
from tailorset.services.images import automatic_caption, stored_signals
from tailorset.services.jobs import Lease, LeaseLost

log = logging.getLogger(__name__)

KIND = "regenerate_captions"
BATCH = 4  # images captioned between commits: small, so a crash repeats little and progress moves smoothly


async def request_regeneration(services: Services, org_id: int, dataset_id: int, include_manual: bool) -> Job:
    """Queue the job (202). The dataset's captions_update_status becomes in_progress."""
    async with services.db.write() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id, lock="update")
        lifecycle.ensure_draft(dataset.id, dataset.status, "regenerate its captions")
        if await repo.active_job(session, dataset.id, KIND):
            raise Conflict(f"The captions of dataset {dataset.id} are already being regenerated.")
        total, last_id = await queries.regenerable_count_and_last(session, dataset.id, include_manual)
        job = Job(
            organization_id=org_id,
            dataset_id=dataset.id,
            kind=KIND,
            # Images uploaded after this moment are captioned on upload; the job stops at last_id.
            options=json.dumps({"include_manual": include_manual, "last_image_id": last_id}),
            total=total,
        )
        session.add(job)
        dataset.captions_update_status = captions.UPDATE_IN_PROGRESS
        dataset.updated_at = utcnow()
    services.wakeup.notify()
    return job


async def run_batch(services: Services, lease: Lease) -> bool:
    """Caption the next few images of a claimed job. Returns False once the job has ended (or is not ours)."""
    job = lease.job
    options = json.loads(job.options)
    include_manual = options["include_manual"]
    async with services.db.read() as session:
        try:
            dataset = await repo.get_dataset(session, job.organization_id, job.dataset_id)
        except (NotFound, Gone):
            return await finish(services, lease, JobStatus.CANCELLED, "The dataset was deleted.")
        if dataset.status == lifecycle.COMPLETED:
            return await finish(services, lease, JobStatus.CANCELLED, "The dataset was completed.")
        batch = await queries.regenerable_after(
            session, job.dataset_id, include_manual, job.cursor or 0, options["last_image_id"], BATCH
        )
    if not batch:
        return await finish(services, lease, JobStatus.COMPLETED)

    written: dict[int, Caption] = {}
    failures = 0
    for image in batch:
        try:
            data = await files.read(services, image.storage, image.file_key)
            written[image.id] = await automatic_caption(services, dataset, data, "job")
        except (CaptionerError, OSError) as exc:
            failures += 1
            log.warning("Job %s: image %s could not be captioned: %s", job.id, image.id, exc)

    actor = f"job:{job.id} captioner:{services.captioner.name}"
    async with services.db.write() as session:
        try:
            current = await lease.update(session)
        except LeaseLost:
            return False  # our lease ran out and another worker took over: its work, not ours
        locked = await repo.get_dataset(session, job.organization_id, job.dataset_id, lock="share")
        if locked.status == lifecycle.COMPLETED:
            return await finish(services, lease, JobStatus.CANCELLED, "The dataset was completed.", session)
        for image in batch:
            fresh = await queries.image_by_id(session, image.id)
            # A caption changed since the request (by a person, or a single regenerate) is newer than
            # what this job would write; manual captions are only replaced when the request asked.
            if (
                image.id in written
                and fresh.deleted_at is None
                and fresh.updated_at <= current.created_at
                and (include_manual or fresh.caption_source != captions.MANUAL)
            ):
                caption = written[image.id]
                repo.set_caption(  # unreviewed again
                    fresh, caption.text, captions.AUTOMATIC, utcnow(),
                    confidence=caption.confidence, signals=stored_signals(caption),
                )  # fmt: skip
                repo.record_caption(session, fresh, actor, job.id)
        await lease.update(
            session, cursor=batch[-1].id, done=current.done + len(batch) - failures, failed=current.failed + failures
        )
    return True


async def finish(services: Services, lease: Lease, status: JobStatus, error: str | None = None, session=None) -> bool:
    """End the job (if we still hold it) and mark the dataset's captions update completed. Returns False."""
    if session is None:
        async with services.db.write() as session:
            return await finish(services, lease, status, error, session)
    if await lease.finish(status, error, session):
        dataset = await queries.dataset_by_id(session, lease.job.dataset_id)
        if dataset is not None and dataset.deleted_at is None:
            dataset.captions_update_status = captions.UPDATE_COMPLETED
    return False
