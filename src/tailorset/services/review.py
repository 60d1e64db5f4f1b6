"""Review state: approve, flag (with a note) or unapprove images, one at a time or many, and the counts."""

from __future__ import annotations

from collections.abc import Sequence

from tailorset.db import repository as repo
from tailorset.db.models import Image, utcnow
from tailorset.domain import lifecycle, review
from tailorset.services import Services


async def set_state(
    services: Services, org_id: int, dataset_id: int, image_id: int, state: str, note: str | None
) -> Image:
    note = review.checked_note(state, note)
    async with services.db.write() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id, lock="share")
        image = await repo.get_image(session, dataset, image_id)
        lifecycle.ensure_draft(dataset.id, dataset.status, "change its review states")
        image.review_state, image.review_note = state, note
        image.reviewed_at = None if state == review.UNREVIEWED else utcnow()
    return image


async def set_states(
    services: Services,
    org_id: int,
    dataset_id: int,
    state: str,
    note: str | None,
    image_ids: Sequence[int] | None = None,
    where: repo.ImageFilter | None = None,
) -> int:
    """Many images at once: these ids (each must be a live image of the dataset), or every image the filter
    matches (as the image list shows them). Returns how many images it set."""
    note = review.checked_note(state, note)
    async with services.db.write() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id, lock="share")
        lifecycle.ensure_draft(dataset.id, dataset.status, "change its review states")
        if image_ids is not None:
            await repo.live_images_among(session, dataset, image_ids)
            conditions = [Image.id.in_(image_ids)]
        else:
            conditions = repo.image_conditions(where or repo.ImageFilter())
        return await repo.set_review_state(session, dataset.id, conditions, state, note, utcnow())


async def counts(services: Services, org_id: int, dataset_id: int) -> dict[str, int]:
    async with services.db.read() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id)
        return await repo.review_counts(session, dataset.id)
