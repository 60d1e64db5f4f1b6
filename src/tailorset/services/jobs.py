"""Job leases, for every kind of background job: claim, renew, hand back, finish.

A worker claims a job with a lease (`Lease`); `keep_alive` renews it beside each batch, so only a
worker that died or hung loses it. After a time slice the worker hands the job back at the next batch
boundary, and the next claim serves the organization served least recently: one organization's long
job delays another's by a slice at most. An organization has at most `jobs_per_organization` jobs
leased at once and each worker runs SLOTS, so a step that cannot be sliced (a slow download) never
holds every slot. A job whose worker died is claimed again and resumes after its cursor; one that
ends its worker MAX_ATTEMPTS times in a row is given up (failed) rather than retried forever.
Claims run one at a time (SQLite's single writer; an advisory lock on PostgreSQL)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import anyio

from tailorset.db import Session
from tailorset.db import jobs as queries
from tailorset.db.models import Job, utcnow
from tailorset.domain.jobs import GIVEN_UP, MAX_ATTEMPTS, JobStatus
from tailorset.services import Services

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """Another worker holds the job now: stop, and leave everything to it."""


@dataclass
class Lease:
    """A claimed job and who holds it. `job` mirrors the row as this worker last wrote it."""

    services: Services
    job: Job
    owner: str

    async def update(self, session: Session | None = None, **changes) -> Job:
        """Change the job if we still hold it, renewing the lease; raises LeaseLost if we do not."""
        if session is None:
            async with self.services.db.write() as session:
                return await self.update(session, **changes)
        current = await queries.locked(session, self.job.id)
        if current is None or current.lease_owner != self.owner or current.status != JobStatus.RUNNING:
            raise LeaseLost()
        now = utcnow()
        changes = {"lease_expires_at": now + self.services.settings.job_lease, "updated_at": now, **changes}
        for name, value in changes.items():
            setattr(current, name, value)
            setattr(self.job, name, value)
        return current

    async def finish(self, status: JobStatus, error: str | None = None, session: Session | None = None) -> bool:
        """End the job; False if it was no longer ours (the caller then leaves its cleanup to the new holder)."""
        try:
            await self.update(
                session, status=status, error=error, finished_at=utcnow(), lease_owner=None, lease_expires_at=None
            )
        except LeaseLost:
            return False
        return True

    async def hand_back(self, *, failed: bool = False) -> None:
        """Let another claim take the job now. After a clean slice the attempts start over; after a failure
        (`failed`) the owner stays, so that the next claim counts one more attempt."""
        changes = {"lease_expires_at": utcnow()}
        if not failed:
            changes.update(attempts=0, lease_owner=None, lease_expires_at=None)
        with contextlib.suppress(LeaseLost):
            await self.update(**changes)


async def keep_alive(lease: Lease) -> None:
    """Renew the lease every third of its length until cancelled (run beside the batches)."""
    while True:
        await anyio.sleep(lease.services.settings.job_lease_seconds / 3)
        try:
            await lease.update()
        except LeaseLost:
            return  # the batch finds out when it commits
        except Exception as exc:  # the database is away: the batch will fail, or the lease run out
            log.warning("Job %s: the lease could not be renewed: %s", lease.job.id, exc)


async def claim(services: Services, owner: str, kinds: Sequence[str]) -> tuple[Lease, bool] | None:
    """The next job to run, leased to `owner`, and whether it has used up its attempts (the caller then
    ends it as failed with `GIVEN_UP`, which the kind of job may need to clean up after)."""
    now = utcnow()
    async with services.db.write() as session:
        job = await queries.next_claimable(session, kinds, now, services.settings.jobs_per_organization)
        if job is None:
            return None
        await queries.mark_served(session, job.organization_id, now)
        if job.lease_owner is not None:  # not handed back: its worker died or hit an error
            job.attempts += 1
            log.warning("Job %s: %s did not hand it back (attempt %d).", job.id, job.lease_owner, job.attempts)
        job.status, job.lease_owner, job.lease_expires_at = JobStatus.RUNNING, owner, now + services.settings.job_lease
    return Lease(services, job, owner), job.attempts >= MAX_ATTEMPTS


__all__ = ["GIVEN_UP", "Lease", "LeaseLost", "claim", "keep_alive"]
