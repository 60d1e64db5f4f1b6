"""The queries behind the dataset health report (services/health.py): the stored facts kept up to date
(caption lint, picture measurements) and the columns the report aggregates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import bindparam, case, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tailorset.db.models import Dataset, Image, utcnow


def _in(dataset_id: int) -> tuple:
    return Image.dataset_id == dataset_id, Image.deleted_at.is_(None)


async def stale_counts(session: AsyncSession, dataset_id: int) -> tuple[int, int]:
    """How many live captions wait to be linted, and how many pictures to be measured."""
    row = await session.execute(
        select(
            func.count(case((Image.lint_issues.is_(None), 1))), func.count(case((Image.measured_at.is_(None), 1)))
        ).where(*_in(dataset_id))
    )
    return tuple(row.one())


async def unlinted_captions(session: AsyncSession, dataset_id: int, limit: int) -> Sequence[tuple[int, str | None]]:
    """(id, caption) of up to `limit` live images whose lint is stale, by id."""
    query = select(Image.id, Image.caption).where(*_in(dataset_id), Image.lint_issues.is_(None))
    return (await session.execute(query.order_by(Image.id).limit(limit))).all()


_SAVE_LINT = (
    update(Image.__table__)
    .where(
        Image.__table__.c.id == bindparam("b_id"),
        Image.__table__.c.lint_issues.is_(None),
        Image.__table__.c.caption.is_not_distinct_from(bindparam("b_caption")),
        # linted against the prefix the dataset still has (a new prefix marks every caption stale again)
        exists(
            select(Dataset.id).where(
                Dataset.id == Image.__table__.c.dataset_id,
                Dataset.caption_prefix.is_not_distinct_from(bindparam("b_prefix")),
            )
        ),
    )
    .values(lint_tokens=bindparam("b_tokens"), lint_issues=bindparam("b_issues"), lint_terms=bindparam("b_terms"))
)


async def save_lint(session: AsyncSession, linted: Sequence[dict], prefix: str | None) -> None:
    """Store each caption's lint (rows of b_id, b_caption, b_tokens, b_issues, b_terms), unless the caption or
    the dataset's prefix changed since it was read."""
    await session.execute(_SAVE_LINT, [row | {"b_prefix": prefix} for row in linted])


async def unmeasured_files(session: AsyncSession, dataset_id: int, limit: int) -> Sequence[tuple[int, str, str]]:
    """(id, storage, file_key) of up to `limit` live images whose picture has not been measured, by id."""
    query = select(Image.id, Image.storage, Image.file_key).where(*_in(dataset_id), Image.measured_at.is_(None))
    return (await session.execute(query.order_by(Image.id).limit(limit))).all()


async def save_measurements(session: AsyncSession, measured: Mapping[int, dict]) -> None:
    """Store each image's measurements (an empty dict: unmeasurable, not tried again), unless already measured."""
    for image_id, values in measured.items():
        query = update(Image).where(Image.id == image_id, Image.measured_at.is_(None))
        await session.execute(query.values(measured_at=utcnow(), **values))


# What the report reads of every live image: a few numbers each, one scan (5,000 rows are a few hundred KB).
REPORT_COLUMNS = (
    Image.id, Image.width, Image.height, Image.turned, Image.sharpness, Image.brightness, Image.dark_fraction,
    Image.bright_fraction, Image.transparent, Image.measured_at.is_not(None), Image.lint_issues, Image.lint_tokens,
    Image.lint_terms, Image.review_state, Image.caption_source, Image.phash, Image.sha256, Image.caption_confidence,
)  # fmt: skip


async def report_rows(session: AsyncSession, dataset_id: int) -> Sequence[tuple]:
    """REPORT_COLUMNS of every live image, by id."""
    return (await session.execute(select(*REPORT_COLUMNS).where(*_in(dataset_id)).order_by(Image.id))).all()


async def shared_captions(session: AsyncSession, dataset_id: int) -> dict[str, list[int]]:
    """The captions several live images share, each with their ids (by id)."""
    live = _in(dataset_id)
    same = select(Image.caption).where(*live, Image.caption.is_not(None)).group_by(Image.caption)
    captions: dict[str, list[int]] = {}
    query = select(Image.id, Image.caption).where(*live, Image.caption.in_(same.having(func.count() > 1)))
    for image_id, caption in await session.execute(query.order_by(Image.id)):
        captions.setdefault(caption, []).append(image_id)
    return captions


async def exact_duplicate_ids(session: AsyncSession, dataset_id: int) -> set[int]:
    """The live images whose file another live image of the dataset has too."""
    live = _in(dataset_id)
    copies = select(Image.sha256).where(*live).group_by(Image.sha256).having(func.count() > 1)
    return set((await session.execute(select(Image.id).where(*live, Image.sha256.in_(copies)))).scalars())


async def perceptual_hashes(session: AsyncSession, dataset_id: int) -> Sequence[tuple[int, int, str]]:
    """(id, phash, sha256) of the live images that have a perceptual hash."""
    query = select(Image.id, Image.phash, Image.sha256).where(*_in(dataset_id), Image.phash.is_not(None))
    return (await session.execute(query)).all()


async def same_caption_ids(
    session: AsyncSession, dataset_id: int, caption: str, other_than: int, limit: int
) -> list[int]:
    """Up to `limit` live images captioned exactly `caption`, but not image `other_than`, by id."""
    query = select(Image.id).where(*_in(dataset_id), Image.caption == caption, Image.id != other_than)
    return list((await session.execute(query.order_by(Image.id).limit(limit))).scalars())


async def thumbnail_rows(session: AsyncSession, dataset_id: int, image_ids: set[int]) -> Sequence[tuple]:
    """(id, image_name, storage, thumbnail_key) of those live images of the dataset."""
    columns = (Image.id, Image.image_name, Image.storage, Image.thumbnail_key)
    query = select(*columns).where(*_in(dataset_id), Image.id.in_(sorted(image_ids)))
    return (await session.execute(query)).all()
