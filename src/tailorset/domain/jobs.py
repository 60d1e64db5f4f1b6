"""Background jobs' states and the rules that end them, for every kind of job."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"  # waiting for a worker
    RUNNING = "running"  # started: a worker holds it, or will resume it after its cursor
    COMPLETED = "completed"
    FAILED = "failed"  # the message says why
    CANCELLED = "cancelled"  # its dataset was deleted or completed meanwhile


ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)

# A bulk upload's status as the API names it (Bria's words), from its job's.
BULK_UPLOAD_STATUS = {
    JobStatus.QUEUED: "pending", JobStatus.RUNNING: "processing", JobStatus.COMPLETED: "completed",
    JobStatus.FAILED: "failed", JobStatus.CANCELLED: "failed",
}  # fmt: skip
BULK_UPLOAD_STATUSES = tuple(dict.fromkeys(BULK_UPLOAD_STATUS.values()))

# A job whose worker died or raised this many times in a row, without finishing a time slice in between,
# is given up: whatever it does next would most likely kill the next worker too.
MAX_ATTEMPTS = 3
GIVEN_UP = (
    f"The job stopped {MAX_ATTEMPTS} times in a row at the same point (its worker crashed or hit an error), "
    "so it was given up; what it had done so far is kept."
)

# How long a worker runs one job before it offers the next batch to the organization served least recently,
# so that one organization's long job cannot keep another's waiting.
SLICE_SECONDS = 1.0
# Jobs each worker process runs side by side. With one organization's jobs capped below that across every
# worker (TAILORSET_JOBS_PER_ORGANIZATION), a step that cannot be cut into slices (a slow zip_url download)
# holds one slot, never all of them.
SLOTS = 2
