"""The queries behind job leases (the rules are in services/jobs.py) and a job's per-file report."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from tailorset.db.models import Job, JobReportEntry, Organization
from tailorset.domain.jobs import ACTIVE, JobStatus

CLAIM_LOCK = 0x7A11_0B5  # PostgreSQL advisory lock key that serialises job claims


async def next_claimable(session: AsyncSession, kinds: Sequence[str], now: datetime, per_org: int) -> Job | None:
    """The job to run next, locked: waiting or handed back (or its worker's lease ran out), of an organization
    with fewer than `per_org` jobs leased, the one served least recently; its oldest job first."""
    if session.get_bind().dialect.name == "postgresql":
        # One claim at a time, so that two workers cannot both see an organization under its cap (SQLite
        # runs one write transaction at a time anyway). Claims are short: this is no bottleneck.
        await session.execute(select(func.pg_advisory_xact_lock(CLAIM_LOCK)))
    leased = aliased(Job)
    running = (
        select(func.count())
        .where(
            leased.organization_id == Job.organization_id,
            leased.status == JobStatus.RUNNING,
            leased.lease_owner.is_not(None),
            leased.lease_expires_at >= now,
        )
        .scalar_subquery()
    )
    query = (
        select(Job)
        .join(Organization, Organization.id == Job.organization_id)
        .where(
            Job.status.in_(ACTIVE),
            Job.kind.in_(kinds),
            or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now),
            running < per_org,
        )
        .order_by(Organization.jobs_served_at.asc().nulls_first(), Job.id)
        .limit(1)
        .with_for_update(skip_locked=True, of=Job)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def mark_served(session: AsyncSession, org_id: int, now: datetime) -> None:
    await session.execute(update(Organization).where(Organization.id == org_id).values(jobs_served_at=now))


async def locked(session: AsyncSession, job_id: int) -> Job | None:
    return await session.get(Job, job_id, with_for_update=True, populate_existing=True)


async def add_report_entries(session: AsyncSession, job_id: int, entries: Sequence[dict]) -> None:
    """Append to a job's report: rows, so each batch writes only its own entries."""
    if entries:
        await session.execute(insert(JobReportEntry), [{"job_id": job_id, **entry} for entry in entries])


async def report_entries(session: AsyncSession, job_id: int) -> Sequence[JobReportEntry]:
    query = select(JobReportEntry).where(JobReportEntry.job_id == job_id).order_by(JobReportEntry.id)
    return (await session.execute(query)).scalars().all()


async def ping(session: AsyncSession) -> None:
    """Raise unless the database answers and the job queue's table can be read."""
    await session.execute(text("SELECT 1"))
    await session.execute(select(func.count()).select_from(Job).where(Job.status == JobStatus.QUEUED))


async def active_counts(session: AsyncSession) -> dict[str, int]:
    """How many jobs wait and how many run, by status (every status of ACTIVE, 0 when none)."""
    query = select(Job.status, func.count()).where(Job.status.in_(ACTIVE)).group_by(Job.status)
    counts = dict((await session.execute(query)).all())
    return {status: counts.get(status, 0) for status in ACTIVE}
