"""Datasets: create in a project, read with their images, update and complete, clone, delete."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tailorset.db import repository as repo
from tailorset.db.models import Dataset, Image, Job, utcnow
from tailorset.domain import captions, lifecycle
from tailorset.domain.errors import Conflict, Invalid
from tailorset.services import Services, bulk_upload, captioning
from tailorset.services.files import delete_unreferenced


@dataclass
class DatasetView:
    """What the API presents of a dataset: the ORM objects, or (`get`) rows with the same names, which cost less."""

    dataset: Dataset
    images_count: int
    images: Sequence[Image] | None = None
    captions_job: Job | None = None  # the latest Regenerate All Captions job, for its progress


async def create(services: Services, org_id: int, fields: Mapping[str, Any]) -> DatasetView:
    """A new draft dataset from its fields (project_id, name, training_version…, as validated by the API)."""
    version = fields["training_version"]
    async with services.db.write() as session:
        project = await repo.get_project(session, org_id, fields["project_id"], for_update=True)
        lifecycle.check_family(project.id, project.training_version, version)
        if project.training_version is None:
            project.training_version = version  # the first dataset locks the project's family
        prefix = None
        if lifecycle.is_legacy(version):
            prefix = captions.default_prefix(project.ip_medium, project.ip_type, project.ip_name)
        dataset = Dataset(organization_id=org_id, caption_prefix=prefix, **fields)
        session.add(dataset)
    return DatasetView(dataset, 0)


async def get(services: Services, org_id: int, dataset_id: int, max_images: int) -> DatasetView:
    dataset, images, job = await services.db.read_blocking(
        repo.dataset_with_images, org_id, dataset_id, max_images, captioning.KIND
    )
    return DatasetView(dataset, dataset.images_count, images, job)


async def list_all(services: Services, org_id: int, project_id: int | None = None) -> list[DatasetView]:
    async with services.db.read() as session:
        if project_id is not None:
            await repo.get_project(session, org_id, project_id)
        datasets = await repo.list_datasets(session, org_id, project_id)
        ids = [d.id for d in datasets]
        counts = await repo.count_images(session, ids)
        jobs = await repo.latest_jobs(session, ids, captioning.KIND)
    return [DatasetView(d, counts[d.id], captions_job=jobs.get(d.id)) for d in datasets]


async def change(services: Services, org_id: int, dataset_id: int, changes: Mapping[str, Any]) -> DatasetView:
    """Apply the fields the request set (an absent field is left alone; a None name too)."""
    async with services.db.write() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id, lock="update")
        count = (await repo.count_images(session, [dataset.id]))[dataset.id]
        if changes.get("name") is not None:
            dataset.name = changes["name"]
        if "caption_prefix" in changes:
            lifecycle.check_field_for_version("caption_prefix", dataset.training_version)
            lifecycle.ensure_draft(dataset.id, dataset.status, "change its caption_prefix")
            prefix = (changes["caption_prefix"] or "").strip() or None
            if prefix != dataset.caption_prefix:
                await repo.mark_lint_stale(session, dataset.id)  # the lint checks captions against the prefix
            dataset.caption_prefix = prefix
        if "visual_schema" in changes:
            lifecycle.check_field_for_version("visual_schema", dataset.training_version)
            lifecycle.ensure_draft(dataset.id, dataset.status, "change its visual_schema")
            dataset.visual_schema = _checked_visual_schema(changes["visual_schema"])
        if changes.get("status") is not None and lifecycle.check_status_change(
            dataset.id, dataset.status, changes["status"], count, dataset.training_version
        ):
            if await repo.active_job(session, dataset.id, captioning.KIND):
                raise Conflict(
                    f"The captions of dataset {dataset.id} are being regenerated; complete it once "
                    "captions_update_status is completed."
                )
            if await repo.active_job(session, dataset.id, bulk_upload.KIND):
                raise Conflict(
                    f"Images are being imported into dataset {dataset.id}; complete it once its bulk upload "
                    "has finished."
                )
            dataset.status = changes["status"]
        dataset.updated_at = utcnow()
        job = (await repo.latest_jobs(session, [dataset.id], captioning.KIND)).get(dataset.id)
    return DatasetView(dataset, count, captions_job=job)


def _checked_visual_schema(text: str | None) -> str | None:
    if text is None or not text.strip():
        return None
    from tailorset.fibo import check_visual_schema

    result = check_visual_schema(text)
    if not result.valid:
        raise Invalid(result.error_message().replace("caption", "visual_schema", 1))
    return result.caption


async def clone(services: Services, org_id: int, dataset_id: int, name: str | None, actor: str) -> DatasetView:
    """A new draft with the same settings, images, captions and caption sources."""
    async with services.db.write() as session:
        # Shared locks on the source and (in clone_images) its image rows: a delete running beside the
        # clone either lands first (the image is not copied) or waits, and then sees the copy using
        # its files, so it never removes a file a copied row points at.
        source = await repo.get_dataset(session, org_id, dataset_id, lock="share")
        copy = Dataset(
            organization_id=org_id,
            project_id=source.project_id,
            name=(name or f"Copy of {source.name}")[:500],
            training_version=source.training_version,
            caption_prefix=source.caption_prefix,
            visual_schema=source.visual_schema,
            upload_type=source.upload_type,
        )
        session.add(copy)
        await session.flush()
        await repo.clone_images(session, source.id, copy.id)
        await repo.record_captions_of(session, copy.id, f"{actor} cloned dataset {source.id}")
        images = await repo.list_images(session, copy.id)
    return DatasetView(copy, len(images), images)


async def delete(services: Services, org_id: int, dataset_id: int) -> None:
    now = utcnow()
    async with services.db.write() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id, lock="update")
        dataset.deleted_at = now
        files = await repo.tombstone_images(session, [dataset.id], now)
        orphans = await repo.unreferenced(session, files)
    await delete_unreferenced(services, orphans)
