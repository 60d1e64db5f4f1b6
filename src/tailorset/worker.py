"""The worker: claims queued jobs from the database and runs them, batch by batch.

The same loop runs inside the API process (the embedded default: no server to install) and as
`tailorset worker` on other hosts, all sharing one PostgreSQL. A claim is a lease that each batch
renews; a worker that dies lets its lease run out and another worker picks the job up where the
job's cursor says. On PostgreSQL, claims use SELECT … FOR UPDATE SKIP LOCKED so workers never
wait on each other; on SQLite, writers are serialised anyway."""

from __future__ import annotations

import logging
import os
import socket
import uuid

import anyio
from sqlalchemy import or_, select

from tailorset.db.models import Job, utcnow
from tailorset.services import Services, bulk_upload, captioning, health

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0

RUNNERS = {
    captioning.KIND: captioning.run_batch,
    bulk_upload.KIND: bulk_upload.run_batch,
    health.KIND: health.run_batch,
}


class Worker:
    def __init__(self, services: Services, name: str | None = None, poll_seconds: float = 1.0):
        self.services = services
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.poll_seconds = poll_seconds
        self._stopping = False
        self.stopped = anyio.Event()

    def stop(self) -> None:
        """Finish the current batch, hand the job back, and return from `run`."""
        self._stopping = True
        self.services.wake_workers()

    async def claim(self) -> Job | None:
        now = utcnow()
        async with self.services.db.write() as session:
            query = (
                select(Job)
                .where(
                    Job.status.in_(("queued", "running")),
                    Job.kind.in_(RUNNERS),
                    or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now),
                )
                .order_by(Job.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            job = (await session.execute(query)).scalar_one_or_none()
            if job is None:
                return None
            if job.status == "running":
                log.info("Job %s: lease of %s expired; resuming after image %s.", job.id, job.lease_owner, job.cursor)
            job.status, job.lease_owner, job.attempts = "running", self.name, job.attempts + 1
            job.lease_expires_at = now + self.services.settings.job_lease
        return job

    async def run_one(self) -> bool:
        """Run one job to its end; False when there was none to claim."""
        job = await self.claim()
        if job is None:
            return False
        while not self._stopping and await RUNNERS[job.kind](self.services, job, self.name):
            pass
        if self._stopping:
            await self.release(job)
        return True

    async def run(self, *, until_idle: bool = False) -> None:
        failures = 0
        try:
            while not self._stopping:
                try:
                    worked = await self.run_one()
                except Exception:
                    # The database or the file store went away, or a job hit a bug. The worker outlives it:
                    # a job in flight keeps its lease until it runs out, then it is claimed and resumed.
                    failures += 1
                    delay = min(self.poll_seconds * 2**failures, MAX_BACKOFF_SECONDS)
                    log.exception("The worker failed (%d in a row); trying again in %.0f s.", failures, delay)
                    await self.services.wait_for_work(delay)
                    continue
                failures = 0
                if not worked:
                    if until_idle:
                        return
                    await self.services.wait_for_work(self.poll_seconds)
        finally:
            self.stopped.set()

    async def release(self, job: Job) -> None:
        """On a clean stop, hand the job back at once instead of after the lease runs out."""
        async with self.services.db.write() as session:
            current = await session.get(Job, job.id, with_for_update=True)
            if current is not None and current.lease_owner == self.name and current.status == "running":
                current.lease_expires_at = utcnow()
