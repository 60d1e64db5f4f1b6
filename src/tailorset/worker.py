"""The worker: claims jobs from the database and runs them, batch by batch, a time slice at a time.

The same loop runs inside the API process (the embedded default: no server to install) and as
`tailorset worker` on other hosts, all sharing one PostgreSQL. Leases, fair claims and the attempt
limit are services/jobs.py's; this loop only runs what it is given."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid

import anyio

from tailorset.domain.jobs import SLICE_SECONDS, SLOTS, JobStatus
from tailorset.services import Services, bulk_upload, captioning, health, jobs

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0

KINDS = {module.KIND: module for module in (captioning, bulk_upload, health)}  # each has run_batch and finish


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
        self.services.wakeup.notify()

    async def run_one(self, slot: int = 0) -> bool:
        """Run a claimed job for a time slice (or to its end); False when there was none to claim."""
        claimed = await jobs.claim(self.services, f"{self.name}/{slot}", list(KINDS))
        if claimed is None:
            return False
        lease, exhausted = claimed
        kind = KINDS[lease.job.kind]
        if exhausted:
            log.error("Job %s: given up after %d attempts.", lease.job.id, lease.job.attempts)
            await kind.finish(self.services, lease, JobStatus.FAILED, jobs.GIVEN_UP)
            return True
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(jobs.keep_alive, lease)
                await self._run_slice(kind, lease)
                group.cancel_scope.cancel()
        except Exception:
            await lease.hand_back(failed=True)  # tried again soon, and counted
            raise
        return True

    async def _run_slice(self, kind, lease: jobs.Lease) -> None:
        ends = time.monotonic() + SLICE_SECONDS
        while await kind.run_batch(self.services, lease):
            if self._stopping or time.monotonic() > ends:
                await lease.hand_back()  # the next claim serves whoever waited longest
                return

    async def run(self, *, until_idle: bool = False) -> None:
        """SLOTS loops side by side; with `until_idle`, each returns once it finds nothing to claim."""
        try:
            async with anyio.create_task_group() as slots:
                for slot in range(SLOTS):
                    slots.start_soon(self._run_slot, slot, until_idle)
        finally:
            self.stopped.set()

    async def _run_slot(self, slot: int, until_idle: bool) -> None:
        failures = 0
        while not self._stopping:
            try:
                worked = await self.run_one(slot)
            except Exception:
                # The database or the file store went away, or a job hit a bug. The worker outlives it: the
                # job was handed back to be tried again (counted), or if even that failed, its lease runs out.
                failures += 1
                delay = min(self.poll_seconds * 2**failures, MAX_BACKOFF_SECONDS)
                log.exception("The worker failed (%d in a row); trying again in %.0f s.", failures, delay)
                await self.services.wakeup.wait(delay)
                continue
            failures = 0
            if not worked:
                if until_idle:
                    return
                await self.services.wakeup.wait(self.poll_seconds)
