"""The queries behind the bulk caption jobs and edits: Regenerate All (services/captioning.py) and
find/replace with undo (services/caption_edits.py)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from tailorset.db.models import CaptionRevision, Dataset, Image
from tailorset.domain import captions


def _regenerable(dataset_id: int, include_manual: bool) -> tuple:
    """The live images of a dataset that Regenerate All rewrites: manual captions only when asked."""
    eligible = true() if include_manual else Image.caption_source.is_distinct_from(captions.MANUAL)
    return Image.dataset_id == dataset_id, Image.deleted_at.is_(None), eligible


async def regenerable_count_and_last(session: AsyncSession, dataset_id: int, include_manual: bool) -> tuple[int, int]:
    """How many images Regenerate All would rewrite now, and the newest one's id (0 when none)."""
    total, last_id = (
        await session.execute(select(func.count(), func.max(Image.id)).where(*_regenerable(dataset_id, include_manual)))
    ).one()
    return total, last_id or 0


async def regenerable_after(
    session: AsyncSession, dataset_id: int, include_manual: bool, after: int, up_to: int, limit: int
) -> Sequence[Image]:
    """The next `limit` images to rewrite, with ids in (after, up_to], oldest first."""
    query = (
        select(Image)
        .where(*_regenerable(dataset_id, include_manual), Image.id > after, Image.id <= up_to)
        .order_by(Image.id)
        .limit(limit)
    )
    return (await session.execute(query)).scalars().all()


async def image_by_id(session: AsyncSession, image_id: int) -> Image | None:
    """An image as this transaction sees it, whatever its dataset or state (the caller knows it is its own)."""
    return await session.get(Image, image_id)


async def dataset_by_id(session: AsyncSession, dataset_id: int) -> Dataset | None:
    """A dataset as this transaction sees it, whatever its organization or state."""
    return await session.get(Dataset, dataset_id)


async def live_captions(
    session: AsyncSession, dataset_id: int, caption_source: str | None, image_ids: Sequence[int] | None
) -> Sequence[tuple[int, str]]:
    """(id, caption) of the dataset's live captioned images, by id; only `caption_source`'s and `image_ids`
    when given."""
    query = select(Image.id, Image.caption).where(
        Image.dataset_id == dataset_id, Image.deleted_at.is_(None), Image.caption.is_not(None)
    )
    if caption_source:
        query = query.where(Image.caption_source == caption_source)
    if image_ids is not None:
        query = query.where(Image.id.in_(image_ids))
    return (await session.execute(query.order_by(Image.id))).all()


async def batch_revisions(session: AsyncSession, dataset_id: int, batch_id: str) -> Sequence[CaptionRevision]:
    """The revisions one bulk edit wrote in a dataset, in the order written."""
    query = (
        select(CaptionRevision)
        .join(Image, Image.id == CaptionRevision.image_id)
        .where(CaptionRevision.batch_id == batch_id, Image.dataset_id == dataset_id)
        .order_by(CaptionRevision.id)
    )
    return (await session.execute(query)).scalars().all()


async def images_by_id(session: AsyncSession, ids: Sequence[int]) -> dict[int, Image]:
    """The images with these ids, whatever their state, by id."""
    if not ids:
        return {}
    return {image.id: image for image in (await session.execute(select(Image).where(Image.id.in_(ids)))).scalars()}
