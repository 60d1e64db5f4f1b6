"""The queries behind job leases (the rules are in services/jobs.py) and a job's per-file report."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tailorset.db.models import Job, JobReportEntry, Organization
from tailorset.domain.jobs import ACTIVE


async def next_claimable(session: AsyncSession, kinds: Sequence[str], now: datetime) -> Job | None:
    """The job to run next, locked: waiting or handed back (or its worker's lease ran out), from the
    organization served least recently, its oldest first. PostgreSQL skips jobs other workers are claiming."""
    query = (
        select(Job)
        .join(Organization, Organization.id == Job.organization_id)
        .where(
            Job.status.in_(ACTIVE),
            Job.kind.in_(kinds),
            or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now),
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
