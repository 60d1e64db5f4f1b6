"""Bulk upload: a ZIP of images, with captions beside them (`.txt`, `.caption`) or in a caption table
(`metadata.jsonl`, `metadata.csv`), imported by a background job.

The ZIP (uploaded with the request, or fetched from `zip_url` by the job) is kept in storage as
parts, so a worker on any host can read it. Every image goes through what a single upload does —
the same checks, then the captioner, or the person's caption from its `.txt` (manual) — and each
batch of images commits together with the job's cursor: a worker that dies repeats at most its
batch, and no file is imported twice. The files a batch is about to write are noted on the job
first, so whoever resumes a dead worker's job removes the files it left behind."""

from __future__ import annotations

import json
import logging
import time
import uuid
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from typing import BinaryIO

import anyio

from tailorset import archive, fetch, imaging
from tailorset.captioners import CaptionerError
from tailorset.db import jobs as job_queries
from tailorset.db import repository as repo
from tailorset.db.models import Image, Job
from tailorset.domain import captions, lifecycle
from tailorset.domain.errors import Conflict, DomainError, Gone, Invalid, NotFound, TooLarge
from tailorset.domain.jobs import SLICE_SECONDS, JobStatus
from tailorset.services import Services, files, images
from tailorset.services.jobs import Lease, LeaseLost
from tailorset.storage import parts

log = logging.getLogger(__name__)

KIND = "bulk_upload"
BATCH = 4  # images written per commit, as Regenerate All: a crash repeats little and progress moves smoothly
# Entries looked at per commit at most (and for about a second): a refused entry costs next to nothing, and
# committing after every four of them made a ZIP of junk crawl.
SCAN = 64
DOWNLOAD_SECONDS = 3600.0  # the longest a zip_url download may take, start to end


@dataclass(frozen=True)
class Source:
    """The ZIP: an uploaded file (seekable) or a URL to fetch it from; and how to caption its images."""

    file: BinaryIO | None = None
    zip_url: str | None = None
    automatic_captioning: bool = True  # False: every image needs its .txt caption
    increase_resolution: bool = True  # as for a single upload: False asks for 1024 px on each side


class Duplicate(Conflict):
    """The file is in the dataset already (or earlier in the ZIP): skipped, which is not a failure,
    so that pushing the same folder again imports only what is new."""


UNCAPTIONED = "NoCaption"


@dataclass(frozen=True)
class Failure:
    """A file not imported: refused, or skipped as a duplicate (`error` is "Duplicate"); or an image imported
    without a caption from a ZIP that brings captions (`error` is UNCAPTIONED: a note, not a failure)."""

    filename: str
    error: str  # the DomainError's class name (the API turns it into a status code)
    message: str

    @property
    def skipped(self) -> bool:
        return self.error == Duplicate.__name__

    @property
    def uncaptioned(self) -> bool:
        return self.error == UNCAPTIONED

    @property
    def failed(self) -> bool:
        return not (self.skipped or self.uncaptioned)

    @classmethod
    def of(cls, filename: str, exc: Exception) -> Failure:
        if isinstance(exc, DomainError):
            message = exc.message
        elif isinstance(exc, CaptionerError):
            message = f"The captioner failed on {filename}."
        else:
            message = f"{filename} could not be stored."
        return cls(filename, type(exc).__name__, message)


def limits(services: Services) -> archive.Limits:
    settings = services.settings
    return archive.Limits(settings.max_zip_entries, settings.max_zip_uncompressed_bytes)


async def request(services: Services, org_id: int, dataset_id: int, source: Source, actor: str) -> Job:
    """Queue the import (202): the ZIP checked as far as it can be now, and stored."""
    async with services.db.read() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id)
        await _check_can_start(session, dataset)
    prefix = f"imports/{uuid.uuid4().hex}"
    size = None
    if source.file is not None:
        await anyio.to_thread.run_sync(_check_zip, source.file, services)
        size = await _store(services, source.file, prefix)
    else:
        settings = services.settings
        await fetch.check_url(
            source.zip_url, allow_private=settings.allow_private_image_urls,
            allowed=fetch.allowed_networks(settings), what="zip_url",
        )  # fmt: skip
    try:
        async with services.db.write() as session:
            dataset = await repo.get_dataset(session, org_id, dataset_id, lock="update")
            await _check_can_start(session, dataset)
            options = {
                "zip_url": source.zip_url, "prefix": prefix, "size": size,
                "automatic_captioning": source.automatic_captioning,
                "increase_resolution": source.increase_resolution, "actor": actor, "planned": False, "pending": [],
            }  # fmt: skip
            job = Job(organization_id=org_id, dataset_id=dataset.id, kind=KIND, options=json.dumps(options))
            session.add(job)
    except BaseException:
        if size is not None:
            await parts.delete_parts(services.storage, prefix)
        raise
    services.wakeup.notify()
    return job


async def _check_can_start(session, dataset) -> None:
    lifecycle.ensure_draft(dataset.id, dataset.status, "add images to it")
    if await repo.active_job(session, dataset.id, KIND):
        raise Conflict(f"A bulk upload into dataset {dataset.id} is already running; wait until it has finished.")


def _check_zip(file: BinaryIO, services: Services) -> None:
    """What can be refused as a whole before anything is stored: the size, and what the ZIP's directory says."""
    size, limit = file.seek(0, 2), services.settings.max_zip_bytes
    if size > limit:
        raise TooLarge(f"The ZIP is {size:,} bytes; the limit is {limit:,} bytes.")
    archive.open_zip(file, limits(services))


async def _store(services: Services, file: BinaryIO, prefix: str) -> int:
    writer = parts.PartsWriter(services.storage, prefix)
    try:
        await anyio.to_thread.run_sync(file.seek, 0)
        while chunk := await anyio.to_thread.run_sync(file.read, parts.PART_BYTES):
            await writer.write(chunk)
        return await writer.close()
    except BaseException:
        await parts.delete_parts(services.storage, prefix)
        raise


async def status(services: Services, org_id: int, dataset_id: int) -> tuple[Job, list[Failure]]:
    """The dataset's latest bulk upload, and the files it did not import as they were."""
    async with services.db.read() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id)
        job = (await repo.latest_jobs(session, [dataset.id], KIND)).get(dataset.id)
        if job is None:
            raise NotFound(f"Dataset {dataset.id} has had no bulk upload.")
        entries = await job_queries.report_entries(session, job.id)
    return job, [Failure(entry.filename, entry.error, entry.message) for entry in entries]


# --- the job -------------------------------------------------------------------------------


class _Stop(Exception):
    """The upload cannot go on: the ZIP cannot be fetched or read (failed), or the dataset was
    completed or deleted meanwhile (cancelled). The message says why."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status, self.message = status, message


# Open archives by storage prefix: a worker runs a job batch after batch, and the ZIP's directory is
# read once, not once per batch. A few: a worker takes turns between the jobs of several organizations.
_archives: OrderedDict[str, tuple[zipfile.ZipFile, archive.Plan]] = OrderedDict()


async def run_batch(services: Services, lease: Lease) -> bool:
    """One step of a claimed job: fetch the ZIP, plan it, or import the next few images.
    Returns False once the job has ended (or is no longer ours)."""
    job = lease.job
    options = json.loads(job.options)
    try:
        async with services.db.read() as session:
            dataset = await repo.get_dataset(session, job.organization_id, job.dataset_id)
        _check_still_draft(dataset)
        if options["pending"]:
            await _remove_pending(services, lease, options)
        if options["size"] is None:
            return await _download(services, lease, options)
        zip_file, plan = await _archive(services, job, options)
        if not options["planned"]:
            return await _record_plan(lease, options, plan)
        batch = plan.entries[job.cursor or 0 : (job.cursor or 0) + SCAN]
        if not batch:
            return await finish(services, lease, JobStatus.COMPLETED)
        return await _import(services, lease, options, dataset, zip_file, plan, batch)
    except (NotFound, Gone):
        return await finish(services, lease, JobStatus.CANCELLED, "The dataset was deleted.")
    except LeaseLost:
        return False
    except _Stop as stop:
        return await finish(services, lease, stop.status, stop.message)


def _check_still_draft(dataset) -> None:
    if dataset.status == lifecycle.COMPLETED:
        raise _Stop(JobStatus.CANCELLED, "The dataset was completed.")


async def _download(services: Services, lease: Lease, options: dict) -> bool:
    """Fetch zip_url into parts, renewing the lease as it goes (a large ZIP takes minutes)."""
    settings, prefix = services.settings, options["prefix"]
    await parts.delete_parts(services.storage, prefix)  # what an interrupted attempt left
    writer = parts.PartsWriter(services.storage, prefix)
    renewed = time.monotonic()

    async def consume(chunk: bytes) -> None:
        nonlocal renewed
        await writer.write(chunk)
        if time.monotonic() - renewed > settings.job_lease_seconds / 3:
            await lease.update()
            renewed = time.monotonic()

    try:
        await fetch.download(
            options["zip_url"], consume, max_bytes=settings.max_zip_bytes, timeout=settings.fetch_timeout_seconds,
            total_timeout=DOWNLOAD_SECONDS, allow_private=settings.allow_private_image_urls,
            allowed=fetch.allowed_networks(settings), what="zip_url",
        )  # fmt: skip
        options["size"] = await writer.close()
        await lease.update(options=json.dumps(options))
    except DomainError as exc:
        await parts.delete_parts(services.storage, prefix)
        raise _Stop(JobStatus.FAILED, exc.message) from None
    except OSError as exc:
        log.error("Job %s: the ZIP could not be stored: %s", lease.job.id, exc)
        await parts.delete_parts(services.storage, prefix)
        raise _Stop(JobStatus.FAILED, "The ZIP could not be stored.") from None
    except LeaseLost:
        raise  # the parts are the new owner's now: it starts its download by removing them
    except BaseException:
        await parts.delete_parts(services.storage, prefix)
        raise
    return True


async def _archive(services: Services, job: Job, options: dict) -> tuple[zipfile.ZipFile, archive.Plan]:
    prefix = options["prefix"]
    if prefix in _archives:
        _archives.move_to_end(prefix)
        return _archives[prefix]

    def open_and_plan():
        reader = parts.PartsReader.from_thread(services.storage, prefix, options["size"])
        zip_file = archive.open_zip(reader, limits(services), "The ZIP at zip_url" if options["zip_url"] else "The ZIP")
        return zip_file, archive.plan(zip_file)

    try:
        opened = await anyio.to_thread.run_sync(open_and_plan)
    except DomainError as exc:
        raise _Stop(JobStatus.FAILED, exc.message) from None
    except OSError as exc:
        log.error("Job %s: the ZIP could not be read back from storage: %s", job.id, exc)
        raise _Stop(JobStatus.FAILED, "The ZIP could not be read back from storage.") from None
    _archives[prefix] = opened
    while len(_archives) > 4:
        _archives.popitem(last=False)
    return opened


async def _record_plan(lease: Lease, options: dict, plan: archive.Plan) -> bool:
    """Before the first image: the total, and the files refused by name alone."""
    refused = [Failure.of(refusal.filename, refusal.error) for refusal in plan.refused]
    options["planned"] = True
    async with lease.services.db.write() as session:
        await lease.update(
            session, options=json.dumps(options), total=len(plan.entries) + len(refused), failed=len(refused), cursor=0
        )
        await job_queries.add_report_entries(session, lease.job.id, [vars(f) for f in refused])
    return True


async def _remove_pending(services: Services, lease: Lease, options: dict) -> None:
    """A worker died writing a batch's files: remove those that no image row took."""
    await _delete_pending_files(services, options["pending"])
    options["pending"] = []
    await lease.update(options=json.dumps(options))


async def _delete_pending_files(services: Services, names: list[str]) -> None:
    keys = [key for name in names for key in files.possible_keys(name)]
    async with services.db.read() as session:
        used = await repo.used_keys(session, keys)
    await files.delete_unreferenced(services, [key for key in keys if key not in used])


@dataclass
class _Prepared:
    entry: archive.Entry
    image: Image
    uncaptioned: bool  # the ZIP brings captions, but none for this image


async def _import(services, lease: Lease, options, dataset, zip_file, plan, batch) -> bool:
    """Import entries of `batch` until BATCH images are written or about a second has passed."""
    settings, job = services.settings, lease.job
    names = [files.new_name() for _ in range(BATCH)]
    options["pending"] = names
    await lease.update(options=json.dumps(options))  # noted before any file is written
    ends = time.monotonic() + SLICE_SECONDS

    async with services.db.read() as session:
        count = (await repo.count_images(session, [dataset.id]))[dataset.id]
    prepared: list[_Prepared] = []
    failed: list[Failure] = []
    seen: dict[str, str] = {}  # content hash → file name, within this batch
    # `used`: names taken (files may be written under one even if the image is then refused); `handled`: entries.
    used = handled = 0
    for entry in batch:
        if used == BATCH or (handled and time.monotonic() > ends):
            break
        handled += 1
        try:
            checked, caption = await anyio.to_thread.run_sync(_read_entry, settings, dataset, zip_file, entry, options)
            async with services.db.read() as session:
                earlier = (await repo.images_by_sha256(session, dataset.id, [checked.sha256])).get(checked.sha256)
            if earlier is not None:
                raise Duplicate(f"{entry.name} is the same file as image {earlier.id} ({earlier.image_name}).")
            if checked.sha256 in seen:
                raise Duplicate(f"{entry.name} is the same file as {seen[checked.sha256]} in this ZIP.")
            images.check_can_add(dataset, count + len(prepared), settings, bulk=True)
            keys, used = files.new_keys(checked.extension, names[used]), used + 1
            stored = await images.prepare(services, dataset, checked, caption, trigger="bulk_upload", keys=keys)
            seen[checked.sha256] = entry.name
            image = images.new_image(job.organization_id, dataset.id, stored, entry.name)
            prepared.append(_Prepared(entry, image, plan.has_captions and caption is None))
        except (DomainError, CaptionerError, OSError) as exc:
            if isinstance(exc, OSError):
                log.warning("Job %s: %s could not be stored: %s", job.id, entry.name, exc)
            failed.append(Failure.of(entry.name, exc))

    try:
        return await _commit(services, lease, options, batch[:handled], prepared, failed)
    except BaseException:
        await files.delete_unreferenced(
            services, [key for p in prepared for key in (p.image.file_key, p.image.thumbnail_key)]
        )
        raise


def _read_entry(settings, dataset, zip_file: zipfile.ZipFile, entry: archive.Entry, options: dict):
    """The entry checked as an upload is, and its caption's text (None: caption it automatically)."""
    data = archive.read(zip_file, entry.info, settings.max_upload_bytes, entry.name)
    min_side = settings.min_image_side if options["increase_resolution"] else settings.training_image_side
    checked = imaging.check_upload(
        data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels, min_side=min_side,
        what=entry.name,
    )  # fmt: skip
    caption, text = None, None
    if entry.caption is not None:
        source = archive.clean_name(entry.caption.filename)
        max_chars = captions.max_input_chars(dataset.training_version, settings.max_caption_chars)
        text = archive.read_caption(zip_file, entry.caption, max_chars, source)
    elif entry.caption_text is not None:
        source, text = f"{entry.caption_from} (the row of {entry.name})", entry.caption_text.strip()
    if text:  # an empty caption is no caption
        try:
            caption = captions.check_caption(text, dataset.training_version, settings.max_caption_chars).text
        except Invalid as exc:
            raise Invalid(f"{source}: {exc.message}") from None
    if caption is None and not options["automatic_captioning"]:
        raise Invalid(f"{entry.name} has no caption beside it, and automatic_captioning is false.")
    return checked, caption


async def _commit(services, lease: Lease, options, batch, prepared: list[_Prepared], failed: list[Failure]) -> bool:
    """The batch's images, the cursor and its report entries, in one transaction."""
    job = lease.job
    late: list[_Prepared] = []  # refused at the last moment: a concurrent upload filled the dataset or had the file
    async with services.db.write() as session:
        current = await lease.update(session)  # still ours?
        dataset = await repo.get_dataset(session, job.organization_id, job.dataset_id, lock="share")
        _check_still_draft(dataset)
        count = (await repo.count_images(session, [dataset.id]))[dataset.id]
        taken = await repo.images_by_sha256(session, dataset.id, [p.image.sha256 for p in prepared])
        actor = f"{options['actor']} via job:{job.id}"
        for item in prepared:
            try:
                if item.image.sha256 in taken:
                    earlier = taken[item.image.sha256]
                    raise Duplicate(f"{item.entry.name} is the same file as image {earlier.id} ({earlier.image_name}).")
                images.check_can_add(dataset, count, services.settings, bulk=True)
            except Conflict as exc:
                failed.append(Failure.of(item.entry.name, exc))
                late.append(item)
                continue
            session.add(item.image)
            count += 1
            if item.uncaptioned:
                message = f"No caption was found for {item.entry.name}, so it was captioned automatically."
                failed.append(Failure(item.entry.name, UNCAPTIONED, message))
            manual = item.image.caption_source == captions.MANUAL
            repo.record_caption(
                session, item.image, actor if manual else images.captioner_actor(services, actor), job.id
            )
        await job_queries.add_report_entries(session, job.id, [vars(f) for f in failed])
        options["pending"] = []
        await lease.update(
            session, options=json.dumps(options), cursor=(job.cursor or 0) + len(batch),
            done=current.done + len(prepared) - len(late), failed=current.failed + sum(f.failed for f in failed),
        )  # fmt: skip
    await files.delete_unreferenced(services, [key for p in late for key in (p.image.file_key, p.image.thumbnail_key)])
    return True


async def finish(services: Services, lease: Lease, status: JobStatus, error: str | None = None) -> bool:
    """End the job (if we still hold it) and remove its ZIP, and any file a dead worker left. Returns False."""
    options = json.loads(lease.job.options)
    _archives.pop(options["prefix"], None)
    if not await lease.finish(status, error):
        return False
    await _delete_pending_files(services, options["pending"])
    await parts.delete_parts(services.storage, options["prefix"])
    return False
