"""Images: upload (checked, captioned, stored), read, caption updates, delete."""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

import anyio
from PIL.Image import Image as PILImage

from tailorset import fetch, imaging, quality
from tailorset.captioners import Caption, CaptionContext, CaptionerError, as_caption
from tailorset.config import Settings
from tailorset.db import repository as repo
from tailorset.db.models import CaptionRevision, Dataset, Image, utcnow
from tailorset.domain import captions, lifecycle, review
from tailorset.domain.errors import Conflict, NotFound
from tailorset.observability import CAPTION_SECONDS, CAPTIONS
from tailorset.services import Services, files

ImageFilter = repo.ImageFilter
sort_key = repo.sort_key


@dataclass(frozen=True)
class Upload:
    """The image's bytes, or the URL to fetch them from."""

    data: bytes | None
    image_name: str | None = None
    source_url: str | None = None
    increase_resolution: bool = True


def image_limit(settings: Settings, dataset: Dataset) -> int:
    advanced = dataset.upload_type == "advanced"
    return settings.max_images_per_advanced_dataset if advanced else settings.max_images_per_dataset


def check_can_add(dataset: Dataset, images_count: int, settings: Settings, bulk: bool = False) -> None:
    lifecycle.ensure_draft(dataset.id, dataset.status, "add images to it")
    if dataset.upload_type == "advanced" and not bulk:
        raise Conflict(f"Dataset {dataset.id} is an advanced dataset; add its images with a bulk upload.")
    if images_count >= image_limit(settings, dataset):
        raise Conflict(f"Dataset {dataset.id} already holds {images_count} images, the maximum.")


async def automatic_caption(
    services: Services, dataset: Dataset, image: bytes | PILImage, trigger: str = "upload"
) -> Caption:
    """Ask the captioner about an image (its file's bytes, or already decoded to RGB), then hold its
    answer to the same rules as a person's: the prefix exactly once for legacy datasets, a valid
    canonical JSON caption for FIBO datasets. The confidence and signals come along unchanged."""
    context = CaptionContext(dataset.training_version, dataset.caption_prefix, dataset.visual_schema)

    def work() -> Caption:
        started = time.perf_counter()
        rgb = imaging.open_rgb(image) if isinstance(image, bytes) else image
        answer = as_caption(services.captioner.caption(rgb, context))
        CAPTION_SECONDS.labels(services.captioner.name).observe(time.perf_counter() - started)
        json.dumps(dict(answer.signals))  # a captioner's signals must be storable; fail here, not at the write
        return answer

    try:
        answer = await anyio.to_thread.run_sync(work, limiter=services.caption_limiter)
    except (TypeError, ValueError) as exc:
        raise CaptionerError(f"The {services.captioner.name} captioner's signals are not JSON: {exc}") from exc
    CAPTIONS.labels(services.captioner.name, trigger).inc()
    if not context.wants_json:
        return dataclasses.replace(answer, text=captions.apply_prefix(dataset.caption_prefix, answer.text))
    try:
        text = captions.check_caption(answer.text, dataset.training_version, max_chars=10**6).text
    except Exception as exc:
        raise CaptionerError(f"The {services.captioner.name} captioner wrote an invalid FIBO caption: {exc}") from exc
    return dataclasses.replace(answer, text=text)


def stored_signals(caption: Caption) -> str | None:
    """The signals as the caption_signals column holds them: compact JSON, or None when there are none."""
    return json.dumps(dict(caption.signals), separators=(",", ":")) if caption.signals else None


def captioner_actor(services: Services, requested_by: str) -> str:
    return f"captioner:{services.captioner.name} for {requested_by}"


async def upload(services: Services, org_id: int, dataset_id: int, upload: Upload, actor: str) -> Image:
    settings = services.settings
    async with services.db.read() as session:  # cheap checks before the expensive work
        dataset = await repo.get_dataset(session, org_id, dataset_id)
        count = (await repo.count_images(session, [dataset.id]))[dataset.id]
    check_can_add(dataset, count, settings)

    data = upload.data
    if data is None:
        data = await fetch.fetch_image_url(settings, upload.source_url)
    min_side = settings.min_image_side if upload.increase_resolution else settings.training_image_side
    checked = await services.run_work(
        imaging.check_upload,
        data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels, min_side=min_side,
    )  # fmt: skip
    stored = await prepare(services, dataset, checked)
    try:
        async with services.db.write() as session:
            dataset = await repo.get_dataset(session, org_id, dataset_id, lock="update")
            count = (await repo.count_images(session, [dataset.id]))[dataset.id]
            check_can_add(dataset, count, settings)
            image = new_image(org_id, dataset.id, stored, upload.image_name, upload.source_url)
            session.add(image)
            repo.record_caption(session, image, captioner_actor(services, actor))
    except BaseException:
        await files.delete_unreferenced(services, stored.keys)
        raise
    return image


@dataclass(frozen=True)
class Stored:
    """An image checked, captioned and with its files written: ready to become a row."""

    checked: imaging.CheckedImage
    caption: str
    caption_source: str
    file_key: str
    thumbnail_key: str
    storage: str  # the backend the files went to
    caption_confidence: float | None = None  # the captioner's, for an automatic caption
    caption_signals: str | None = None
    measurements: quality.Measurements | None = None  # for the health report; None: measured later, in the background

    @property
    def keys(self) -> list[str]:
        return [self.file_key, self.thumbnail_key]


async def prepare(
    services: Services,
    dataset: Dataset,
    checked: imaging.CheckedImage,
    manual_caption: str | None = None,
    *,
    trigger: str = "upload",
    keys: tuple[str, str] | None = None,
) -> Stored:
    """What every new image goes through, uploaded or imported: captioned (unless a person's caption
    comes with it), thumbnailed, and its files stored (under `keys` when chosen ahead)."""
    rgb = await anyio.to_thread.run_sync(imaging.to_rgb, checked.image)
    if manual_caption is None:
        caption, source = await automatic_caption(services, dataset, rgb, trigger), captions.AUTOMATIC
    else:
        caption, source = Caption(manual_caption), captions.MANUAL
    thumbnail, measurements = await anyio.to_thread.run_sync(_thumbnail_and_measure, checked.image, rgb, services)
    file_key, thumbnail_key = await files.store(services, checked, thumbnail, keys)
    return Stored(
        checked, caption.text, source, file_key, thumbnail_key, services.settings.storage,
        caption.confidence, stored_signals(caption), measurements,
    )  # fmt: skip


def _thumbnail_and_measure(original: PILImage, rgb: PILImage, services: Services):
    """The thumbnail and the health report's measurements, from the picture decoded once, in one worker thread."""
    return imaging.thumbnail(rgb, services.settings.thumbnail_size), quality.measure(original, rgb)


def new_image(
    org_id: int, dataset_id: int, stored: Stored, image_name: str | None, source_url: str | None = None
) -> Image:
    checked = stored.checked
    state, now = review.state_after_caption_write(stored.caption_source), utcnow()
    measured = vars(stored.measurements) | {"measured_at": now} if stored.measurements else {}
    return Image(
        organization_id=org_id,
        dataset_id=dataset_id,
        image_name=image_name or f"{checked.sha256[:16]}.{checked.extension}",
        caption=stored.caption,
        caption_source=stored.caption_source,
        caption_confidence=stored.caption_confidence,
        caption_signals=stored.caption_signals,
        review_state=state,
        reviewed_at=now if state == review.APPROVED else None,
        **measured,
        file_key=stored.file_key,
        thumbnail_key=stored.thumbnail_key,
        storage=stored.storage,
        content_type=checked.content_type,
        width=checked.width,
        height=checked.height,
        byte_size=len(checked.data),
        sha256=checked.sha256,
        upload_source_url=source_url,
    )


async def list_all(
    services: Services,
    org_id: int,
    dataset_id: int,
    where: repo.ImageFilter | None = None,
    after: tuple | None = None,
    limit: int | None = None,
    order: str = "upload",
) -> Sequence[Image]:
    """Images in upload order (or the review queue's); filtered and one keyset page at a time when asked."""
    if order == "upload" and (where is None or where == repo.ImageFilter()):  # a workbench's listing: the cheap way
        after_id = after[0] if after else 0
        return await services.db.read_blocking(repo.live_images, org_id, dataset_id, after_id, limit)
    async with services.db.read() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id)
        return await repo.list_images(session, dataset.id, limit=limit, after=after, where=where, order=order)


async def get(services: Services, org_id: int, dataset_id: int, image_id: int) -> Image:
    return await services.db.read_blocking(repo.image_in_dataset, org_id, dataset_id, image_id)


@dataclass(frozen=True)
class CaptionUpdated:
    image: Image
    corrections: list[str]  # FIBO repair rules applied to a manual caption


async def update_caption(
    services: Services,
    org_id: int,
    dataset_id: int,
    image_id: int,
    caption: str | None,
    regenerate: bool | None,
    actor: str,
) -> CaptionUpdated:
    """Update Image Caption: a person's text (manual) or the captioner's (automatic)."""
    decision = captions.decide(caption, regenerate)
    max_chars = services.settings.max_caption_chars
    if isinstance(decision, captions.ManualCaption) and captions.is_plain_caption(decision.text, max_chars):
        # The common case in one statement: plain text on a legacy draft dataset. Anything else (FIBO,
        # a completed or missing dataset…) fails the guard and takes the path below, which says why.
        write = functools.partial(repo.write_caption, legacy_only=True)
        written = await services.db.write_blocking(
            write, org_id, dataset_id, image_id, decision.text, captions.MANUAL, actor
        )
        if written is not None:
            return CaptionUpdated(written, [])

    async with services.db.read() as session:
        dataset, image = await repo.get_dataset_image(session, org_id, dataset_id, image_id)
    lifecycle.ensure_draft(dataset.id, dataset.status, "edit its captions")

    corrections: list[str] = []
    if isinstance(decision, captions.ManualCaption):
        checked = await services.run_work(captions.check_caption, decision.text, dataset.training_version, max_chars)
        caption, source, corrections = Caption(checked.text), captions.MANUAL, checked.corrections
    else:
        data = await files.read(services, image.storage, image.file_key)
        caption, source = await automatic_caption(services, dataset, data, "regenerate"), captions.AUTOMATIC
        actor = captioner_actor(services, actor)

    write = functools.partial(repo.write_caption, confidence=caption.confidence, signals=stored_signals(caption))
    written = await services.db.write_blocking(write, org_id, dataset.id, image.id, caption.text, source, actor)
    if written is None:  # completed or deleted since we looked: say which, as a fresh look does
        async with services.db.read() as session:
            dataset, image = await repo.get_dataset_image(session, org_id, dataset_id, image_id)
        lifecycle.ensure_draft(dataset.id, dataset.status, "edit its captions")
        raise AssertionError("write_caption refused a live image of a draft dataset")
    return CaptionUpdated(written, corrections)


async def history(services: Services, org_id: int, dataset_id: int, image_id: int) -> Sequence[CaptionRevision]:
    async with services.db.read() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id)
        image = await repo.get_image(session, dataset, image_id)
        return await repo.caption_history(session, image.id)


async def restore(
    services: Services, org_id: int, dataset_id: int, image_id: int, revision_id: int, actor: str
) -> Image:
    """Bring back an earlier caption, with its source, as a new revision."""
    async with services.db.write() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id, lock="share")
        image = await repo.get_image(session, dataset, image_id)
        lifecycle.ensure_draft(dataset.id, dataset.status, "edit its captions")
        revision = await repo.caption_revision(session, image.id, revision_id)
        if revision is None:
            raise NotFound(f"Caption revision {revision_id} not found for image {image.id}.")
        repo.set_caption(
            image, revision.caption, revision.caption_source, utcnow(),
            confidence=revision.caption_confidence, signals=revision.caption_signals, chosen_by_person=True,
        )  # fmt: skip
        repo.record_caption(session, image, f"{actor} restored revision {revision.id}")
    return image


async def delete(services: Services, org_id: int, dataset_id: int, image_id: int) -> None:
    async with services.db.write() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id, lock="share")
        image = await repo.get_image(session, dataset, image_id)
        lifecycle.ensure_draft(dataset.id, dataset.status, "delete its images")
        image.deleted_at = utcnow()
        orphans = await repo.unreferenced(session, [(image.file_key, image.thumbnail_key)])
    await files.delete_unreferenced(services, orphans)


async def delete_many(services: Services, org_id: int, dataset_id: int, image_ids: Sequence[int]) -> int:
    """Delete these images together (e.g. all but one of a group of duplicates): all of them, or, if one is not a
    live image of the dataset, none."""
    async with services.db.write() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id, lock="share")
        lifecycle.ensure_draft(dataset.id, dataset.status, "delete its images")
        doomed = await repo.live_images_among(session, dataset, image_ids)
        now = utcnow()
        for image in doomed:
            image.deleted_at = now
        orphans = await repo.unreferenced(session, [(image.file_key, image.thumbnail_key) for image in doomed])
    await files.delete_unreferenced(services, orphans)
    return len(doomed)
