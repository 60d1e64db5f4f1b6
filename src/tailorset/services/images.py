"""Images: upload (checked, captioned, stored), read, caption updates, delete."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass

import anyio
from PIL.Image import Image as PILImage

from tailorset import fetch, imaging
from tailorset.captioners import CaptionContext, CaptionerError
from tailorset.config import Settings
from tailorset.db import repository as repo
from tailorset.db.models import CaptionRevision, Dataset, Image, utcnow
from tailorset.domain import captions, lifecycle
from tailorset.domain.errors import Conflict, NotFound
from tailorset.observability import CAPTION_SECONDS, CAPTIONS
from tailorset.services import Services, files

ImageFilter = repo.ImageFilter


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
) -> str:
    """Ask the captioner about an image (its file's bytes, or already decoded to RGB), then hold its
    answer to the same rules as a person's: the prefix exactly once for legacy datasets, a valid
    canonical JSON caption for FIBO datasets."""
    context = CaptionContext(dataset.training_version, dataset.caption_prefix, dataset.visual_schema)

    def work() -> str:
        started = time.perf_counter()
        rgb = imaging.open_rgb(image) if isinstance(image, bytes) else image
        caption = services.captioner.caption(rgb, context)
        CAPTION_SECONDS.labels(services.captioner.name).observe(time.perf_counter() - started)
        return caption

    raw = await anyio.to_thread.run_sync(work, limiter=services.caption_limiter)
    CAPTIONS.labels(services.captioner.name, trigger).inc()
    if not context.wants_json:
        return captions.apply_prefix(dataset.caption_prefix, raw)
    try:
        return captions.check_caption(raw, dataset.training_version, max_chars=10**6).text
    except Exception as exc:
        raise CaptionerError(f"The {services.captioner.name} captioner wrote an invalid FIBO caption: {exc}") from exc


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
    checked = imaging.check_upload(
        data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels, min_side=min_side
    )
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
        caption, source = manual_caption, captions.MANUAL
    thumbnail = await anyio.to_thread.run_sync(imaging.thumbnail, rgb, services.settings.thumbnail_size)
    file_key, thumbnail_key = await files.store(services, checked, thumbnail, keys)
    return Stored(checked, caption, source, file_key, thumbnail_key, services.settings.storage)


def new_image(
    org_id: int, dataset_id: int, stored: Stored, image_name: str | None, source_url: str | None = None
) -> Image:
    checked = stored.checked
    return Image(
        organization_id=org_id,
        dataset_id=dataset_id,
        image_name=image_name or f"{checked.sha256[:16]}.{checked.extension}",
        caption=stored.caption,
        caption_source=stored.caption_source,
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
    after_id: int | None = None,
    limit: int | None = None,
) -> Sequence[Image]:
    """Images in upload order; filtered and one keyset page at a time when asked."""
    async with services.db.read() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id)
        return await repo.list_images(session, dataset.id, limit=limit, after_id=after_id, where=where)


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
        checked = captions.check_caption(decision.text, dataset.training_version, max_chars)
        text, source, corrections = checked.text, captions.MANUAL, checked.corrections
    else:
        data = await files.read(services, image.storage, image.file_key)
        text, source = await automatic_caption(services, dataset, data, "regenerate"), captions.AUTOMATIC
        actor = captioner_actor(services, actor)

    written = await services.db.write_blocking(repo.write_caption, org_id, dataset.id, image.id, text, source, actor)
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
        revision = await session.get(CaptionRevision, revision_id)
        if revision is None or revision.image_id != image.id:
            raise NotFound(f"Caption revision {revision_id} not found for image {image.id}.")
        image.caption, image.caption_source, image.updated_at = revision.caption, revision.caption_source, utcnow()
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
