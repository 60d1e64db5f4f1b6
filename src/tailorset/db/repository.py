"""The queries on organizations, projects, datasets, images and their caption history (db/jobs.py, captions.py,
health.py and tokens.py hold their own features'; no query runs outside db/). Lookups are scoped to an
organization and know about tombstones: a row of another organization is NotFound, a deleted row of this one
is Gone — for the retention period the session carries (`tombstone_retention` in its info, set by Database),
NotFound after (lifecycle.deleted)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NoReturn

from sqlalchemy import and_, bindparam, case, delete, exists, func, insert, literal, or_, select, tuple_, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from tailorset.db.models import (
    ApiToken,
    CaptionRevision,
    Dataset,
    Image,
    Job,
    Organization,
    Project,
    ServerSecret,
    UTCDateTime,
    utcnow,
)
from tailorset.domain import captions, lifecycle, review
from tailorset.domain.errors import NotFound
from tailorset.domain.jobs import ACTIVE


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _deleted(session: AsyncSession | Connection, kind: str, ident: int, when: datetime, missing: str) -> NoReturn:
    """Raise what a deleted row is to the API (lifecycle.deleted), with the retention the session carries."""
    if isinstance(session, Connection):  # Database._run() sets it as an execution option
        retention = session.get_execution_options().get("tombstone_retention")
    else:
        retention = session.info.get("tombstone_retention")
    lifecycle.deleted(kind, ident, when, missing, retention, utcnow())


# --- organizations and tokens -------------------------------------------------------------


def _token_owner():
    tokens, organizations = ApiToken.__table__, Organization.__table__
    return (
        select(organizations.c.id.label("org_id"), organizations.c.rate_limit, tokens.c.name, tokens.c.token_prefix)
        .join(tokens, tokens.c.organization_id == organizations.c.id)
        .where(tokens.c.token_hash == bindparam("token_hash"), tokens.c.revoked_at.is_(None))
    )


_TOKEN_OWNER = _token_owner()


def token_owner(connection: Connection, token_hash: str):
    """A live token's organization (org_id, rate_limit) and its name and token_prefix, by the token's hash: the
    token itself is never stored nor compared character by character. Core: Database.read_blocking."""
    return connection.execute(_TOKEN_OWNER, {"token_hash": token_hash}).one_or_none()


async def url_signing_key(session: AsyncSession) -> str:
    return (
        await session.execute(select(ServerSecret.value).where(ServerSecret.name == "url_signing_key"))
    ).scalar_one()


# --- projects ------------------------------------------------------------------------------


async def get_project(session: AsyncSession, org_id: int, project_id: int, *, for_update=False) -> Project:
    query = select(Project).where(Project.id == project_id)
    if for_update:
        query = query.with_for_update()
    project = (await session.execute(query)).scalar_one_or_none()
    if project is None or project.organization_id != org_id:
        raise NotFound(f"Project {project_id} not found.")
    if project.deleted_at is not None:
        _deleted(session, "Project", project_id, project.deleted_at, f"Project {project_id} not found.")
    return project


async def list_projects(session: AsyncSession, org_id: int) -> Sequence[Project]:
    query = select(Project).where(Project.organization_id == org_id, Project.deleted_at.is_(None)).order_by(Project.id)
    return (await session.execute(query)).scalars().all()


# --- datasets ------------------------------------------------------------------------------


async def get_dataset(
    session: AsyncSession, org_id: int, dataset_id: int, *, lock: Literal["share", "update"] | None = None
) -> Dataset:
    """The dataset, row-locked on PostgreSQL when asked (SQLite serialises writers anyway).

    Changes to the dataset itself take the "update" lock; changes to its images take "share",
    so they run side by side but never overlap a status change."""
    query = select(Dataset).where(Dataset.id == dataset_id)
    if lock:
        query = query.with_for_update(read=lock == "share")
    return _visible_dataset(session, (await session.execute(query)).scalar_one_or_none(), org_id, dataset_id)


def _visible_dataset(session: AsyncSession | Connection, dataset, org_id: int, dataset_id: int) -> Dataset:
    missing = f"Dataset {dataset_id} not found."
    if dataset is None or dataset.organization_id != org_id:
        raise NotFound(missing)
    if dataset.deleted_at is not None:
        _deleted(session, "Dataset", dataset_id, dataset.deleted_at, missing)
    return dataset


async def list_datasets(session: AsyncSession, org_id: int, project_id: int | None = None) -> Sequence[Dataset]:
    query = select(Dataset).where(Dataset.organization_id == org_id, Dataset.deleted_at.is_(None))
    if project_id is not None:
        query = query.where(Dataset.project_id == project_id)
    return (await session.execute(query.order_by(Dataset.id))).scalars().all()


async def count_images(session: AsyncSession, dataset_ids: Sequence[int]) -> dict[int, int]:
    """Live images per dataset, in one query for any number of datasets."""
    if not dataset_ids:
        return {}
    query = (
        select(Image.dataset_id, func.count())
        .where(Image.dataset_id.in_(dataset_ids), Image.deleted_at.is_(None))
        .group_by(Image.dataset_id)
    )
    counts = dict((await session.execute(query)).all())
    return {dataset_id: counts.get(dataset_id, 0) for dataset_id in dataset_ids}


def _dataset_counted():
    """The dataset and how many live images it has, in one row (one statement: one snapshot)."""
    datasets, images = Dataset.__table__, Image.__table__
    count = select(func.count()).where(images.c.dataset_id == datasets.c.id, images.c.deleted_at.is_(None))
    return select(*datasets.c, count.scalar_subquery().label("images_count")).where(
        datasets.c.id == bindparam("dataset")
    )


def _live_images(limited: bool):
    """The dataset's live images in upload order after the id `after` (0: from the first); `limit` of them."""
    images = Image.__table__
    query = (
        select(images)
        .where(
            images.c.dataset_id == bindparam("dataset"), images.c.deleted_at.is_(None), images.c.id > bindparam("after")
        )
        .order_by(images.c.id)
    )
    return query.limit(bindparam("limit")) if limited else query


def _latest_job():
    jobs = Job.__table__
    newest = select(func.max(jobs.c.id)).where(
        jobs.c.dataset_id == bindparam("dataset"), jobs.c.kind == bindparam("kind")
    )
    return select(jobs).where(jobs.c.id == newest.scalar_subquery())


_DATASET_COUNTED, _LATEST_JOB = _dataset_counted(), _latest_job()
_LIVE_IMAGES = {limited: _live_images(limited) for limited in (True, False)}
_DATASET_VISIBILITY = select(Dataset.__table__.c.organization_id, Dataset.__table__.c.deleted_at).where(
    Dataset.__table__.c.id == bindparam("dataset")
)


def _images_after(connection: Connection, dataset_id: int, after_id: int, limit: int | None) -> list:
    values = {"dataset": dataset_id, "after": after_id, "limit": limit}
    return connection.execute(_LIVE_IMAGES[limit is not None], values).all()


def dataset_with_images(connection: Connection, org_id: int, dataset_id: int, limit: int, job_kind: str) -> tuple:
    """The dataset with its live images' count, its first `limit` live images and its newest job of `job_kind`
    (or None), as rows, with the errors get_dataset would raise. Core: Database.read_blocking (for 200 images an
    ORM session and its objects cost several times the SQL). Three statements, each its own snapshot (as
    READ COMMITTED gives on PostgreSQL): an upload landing between them can make the count one off the list."""
    dataset = connection.execute(_DATASET_COUNTED, {"dataset": dataset_id}).one_or_none()
    _visible_dataset(connection, dataset, org_id, dataset_id)
    images = _images_after(connection, dataset_id, 0, limit) if limit else []
    job = connection.execute(_LATEST_JOB, {"dataset": dataset_id, "kind": job_kind}).one_or_none()
    return dataset, images, job


def live_images(connection: Connection, org_id: int, dataset_id: int, after_id: int, limit: int | None) -> list:
    """list_images without a filter, in upload order (the dataset's images, all or a page), as rows, with the errors
    get_dataset would raise. Core: Database.read_blocking (see dataset_with_images)."""
    dataset = connection.execute(_DATASET_VISIBILITY, {"dataset": dataset_id}).one_or_none()
    _visible_dataset(connection, dataset, org_id, dataset_id)
    return _images_after(connection, dataset_id, after_id, limit)


# --- images --------------------------------------------------------------------------------


async def get_image(session: AsyncSession, dataset: Dataset, image_id: int) -> Image:
    image = (await session.execute(select(Image).where(Image.id == image_id))).scalar_one_or_none()
    return _visible_image(session, image, dataset.id, image_id)


def _visible_image(session: AsyncSession | Connection, image, dataset_id: int, image_id: int) -> Image:
    missing = f"Image {image_id} not found in dataset {dataset_id}."
    if image is None or image.dataset_id != dataset_id:
        raise NotFound(missing)
    if image.deleted_at is not None:
        _deleted(session, "Image", image_id, image.deleted_at, missing)
    return image


async def get_dataset_image(
    session: AsyncSession, org_id: int, dataset_id: int, image_id: int
) -> tuple[Dataset, Image]:
    """Both in one query, with the errors get_dataset then get_image would raise."""
    query = (
        select(Dataset, Image)
        .outerjoin(Image, and_(Image.id == image_id, Image.dataset_id == Dataset.id))
        .where(Dataset.id == dataset_id)
    )
    row = (await session.execute(query)).one_or_none()
    dataset = _visible_dataset(session, row[0] if row else None, org_id, dataset_id)
    if row[1] is None:  # not in this dataset: say whether it exists elsewhere only as "not found"
        raise NotFound(f"Image {image_id} not found in dataset {dataset_id}.")
    return dataset, _visible_image(session, row[1], dataset.id, image_id)


# A caption's lint depends on its text (and the dataset's prefix): a new caption is linted anew (services/health.py).
STALE_LINT = {"lint_tokens": None, "lint_issues": None, "lint_terms": None}


def set_caption(
    image: Image, caption: str | None, source: str | None, now: datetime, *,
    confidence: float | None = None, signals: str | None = None, chosen_by_person: bool = False,
) -> None:  # fmt: skip
    """Write a caption to a loaded image row, as write_caption does: with its captioner's confidence and
    signals (None for a person's text), its review state following who wrote it (domain/review.py), and
    its lint gone stale. (Call record_caption after.)"""
    state = review.state_after_caption_write(source, chosen_by_person)
    image.caption, image.caption_source, image.updated_at = caption, source, now
    image.caption_confidence, image.caption_signals = confidence, signals
    image.review_state, image.review_note, image.reviewed_at = state, None, now if state == review.APPROVED else None
    for name, value in STALE_LINT.items():
        setattr(image, name, value)


def _image_in_dataset():
    """One query for the image and what decides whether the caller may see it: its dataset's organization
    and tombstone (as get_dataset_image, without loading the dataset)."""
    images, datasets = Image.__table__, Dataset.__table__
    return (
        select(datasets.c.organization_id.label("dataset_org"), datasets.c.deleted_at.label("dataset_deleted_at"),
               *images.c)
        .select_from(datasets)
        .outerjoin(images, and_(images.c.id == bindparam("image"), images.c.dataset_id == datasets.c.id))
        .where(datasets.c.id == bindparam("dataset"))
    )  # fmt: skip


_IMAGE_IN_DATASET = _image_in_dataset()


def image_in_dataset(connection: Connection, org_id: int, dataset_id: int, image_id: int):
    """The image row, with the errors get_dataset then get_image would raise. Core: Database.read_blocking."""
    row = connection.execute(_IMAGE_IN_DATASET, {"dataset": dataset_id, "image": image_id}).one_or_none()
    dataset = row and _DatasetVisibility(row.dataset_org, row.dataset_deleted_at)
    _visible_dataset(connection, dataset, org_id, dataset_id)
    if row.id is None:
        raise NotFound(f"Image {image_id} not found in dataset {dataset_id}.")
    return _visible_image(connection, row, dataset_id, image_id)


@dataclass(frozen=True)
class _DatasetVisibility:
    organization_id: int
    deleted_at: datetime | None


def _caption_update(legacy_only: bool):
    """The guarded UPDATE, built once: SQLAlchemy memoizes a reused statement's cache key."""
    images, datasets = Image.__table__, Dataset.__table__
    guard = [
        datasets.c.id == bindparam("in_dataset"),
        datasets.c.organization_id == bindparam("of_org"),
        lifecycle.is_draft(datasets.c.status),
        datasets.c.deleted_at.is_(None),
    ]
    if legacy_only:
        guard.append(lifecycle.is_legacy(datasets.c.training_version))
    live_draft = select(datasets.c.id).where(*guard).with_for_update(read=True)
    return (
        update(images)
        .where(
            images.c.id == bindparam("image"),
            images.c.dataset_id == bindparam("in_dataset"),
            images.c.deleted_at.is_(None),
            exists(live_draft),
        )
        .values(
            caption=bindparam("new_caption"),
            caption_source=bindparam("new_source"),
            caption_confidence=bindparam("new_confidence", type_=images.c.caption_confidence.type),
            caption_signals=bindparam("new_signals", type_=images.c.caption_signals.type),
            updated_at=bindparam("at", type_=UTCDateTime()),
            review_state=bindparam("new_review_state"),
            review_note=None,
            reviewed_at=bindparam("reviewed", type_=UTCDateTime()),
            **STALE_LINT,
        )
        .returning(*images.c)
    )


_CAPTION_UPDATE = {legacy_only: _caption_update(legacy_only) for legacy_only in (False, True)}
_REVISION_INSERT = insert(CaptionRevision.__table__)


def _caption_write(legacy_only: bool):
    """PostgreSQL: the guarded UPDATE and the revision INSERT as one statement (data-modifying CTEs), so a
    caption write is one round trip, as a bare UPDATE is."""
    updated = _CAPTION_UPDATE[legacy_only].cte("updated")
    revisions = CaptionRevision.__table__
    columns = (
        "image_id", "caption", "caption_source", "caption_confidence", "caption_signals", "actor", "job_id",
        "batch_id", "created_at",
    )  # fmt: skip
    values = select(
        updated.c.id, updated.c.caption, updated.c.caption_source, updated.c.caption_confidence,
        updated.c.caption_signals, bindparam("actor"),
        bindparam("job_id", type_=revisions.c.job_id.type), bindparam("batch_id", type_=revisions.c.batch_id.type),
        updated.c.updated_at,
    )  # fmt: skip
    revision = insert(revisions).from_select(columns, values).cte("revision")
    return select(updated).add_cte(revision)


_CAPTION_WRITE = {legacy_only: _caption_write(legacy_only) for legacy_only in (False, True)}


def write_caption(
    connection: Connection,
    org_id: int,
    dataset_id: int,
    image_id: int,
    caption: str | None,
    source: str | None,
    actor: str,
    *,
    legacy_only: bool = False,
    job_id: int | None = None,
    batch_id: str | None = None,
    confidence: float | None = None,
    signals: str | None = None,
):
    """Set an image's caption and record the revision, if the image is live and its dataset a live
    draft of this organization (and not FIBO, with `legacy_only`). Returns the updated image row.
    `confidence` and `signals` are the captioner's word on an automatic caption; a manual one has neither.
    The review state becomes the one a caption from `source` leaves (domain/review).

    One guarded UPDATE instead of read-check-write: on PostgreSQL it takes a share lock on the dataset
    row that completion's exclusive lock must wait for, so no caption lands after completion; on
    SQLite, writers are serialised. Returns None when the guard fails (the caller finds out why).
    Core, on a Connection: run it with Database.write_blocking."""
    now = utcnow()
    state = review.state_after_caption_write(source)
    parameters = {
        "of_org": org_id, "in_dataset": dataset_id, "image": image_id, "new_caption": caption,
        "new_source": source, "new_confidence": confidence, "new_signals": signals, "at": now,
        "new_review_state": state, "reviewed": now if state == review.APPROVED else None,
    }  # fmt: skip
    if connection.dialect.name == "postgresql":
        revision = {"actor": actor, "job_id": job_id, "batch_id": batch_id}
        return connection.execute(_CAPTION_WRITE[legacy_only], parameters | revision).one_or_none()
    image = connection.execute(_CAPTION_UPDATE[legacy_only], parameters).one_or_none()
    if image is not None:
        connection.execute(
            _REVISION_INSERT,
            {
                "image_id": image_id, "caption": caption, "caption_source": source, "caption_confidence": confidence,
                "caption_signals": signals, "actor": actor, "job_id": job_id, "batch_id": batch_id, "created_at": now,
            },
        )  # fmt: skip
    return image


@dataclass(frozen=True)
class ImageFilter:
    caption_contains: str | None = None  # case-insensitive substring
    caption_excludes: str | None = None
    caption_source: str | None = None  # "automatic", "manual", or "none" for images without a caption
    review_state: str | None = None  # domain/review.REVIEW_STATES
    image_ids: frozenset[int] | None = None  # only these (e.g. the duplicates the health report found)
    lint_issues: int = 0  # only captions failing one of these lint rules (a domain/lint bitmask)


# The review queue: unreviewed first (then flagged, then approved), the captioner's least confident caption first
# (none given: after those it gave), then upload order. Confidences are in 0-1, so 2 sorts after every one of them.
QUEUE_KEY = (
    case(review.QUEUE_RANK, value=Image.review_state, else_=len(review.QUEUE_RANK)),
    func.coalesce(Image.caption_confidence, 2.0),
    Image.id,
)
ORDERS = {"upload": (Image.id,), "review": QUEUE_KEY}


def sort_key(image: Image, order: str) -> tuple:
    """The image's place in `order`, as list_images's `after` takes it (to continue a keyset page)."""
    if order == "upload":
        return (image.id,)
    rank = review.QUEUE_RANK.get(image.review_state, len(review.QUEUE_RANK))
    return (rank, 2.0 if image.caption_confidence is None else image.caption_confidence, image.id)


async def list_images(
    session: AsyncSession,
    dataset_id: int,
    *,
    limit: int | None = None,
    after_id: int | None = None,
    where: ImageFilter | None = None,
    order: str = "upload",
    after: tuple | None = None,
) -> Sequence[Image]:
    """Live images in upload order, or in the review queue's; `after` (a sort_key), or `after_id` in upload
    order, continues a keyset page (WHERE id > …, on an index, in upload order)."""
    query = select(Image).where(Image.dataset_id == dataset_id, Image.deleted_at.is_(None))
    keys = ORDERS[order]
    if after_id is not None:
        after = (after_id,)
    if after is not None:
        query = query.where(tuple_(*keys) > tuple_(*after) if len(keys) > 1 else keys[0] > after[0])
    if where:
        query = query.where(*image_conditions(where))
    query = query.order_by(*keys)
    if limit is not None:
        query = query.limit(limit)
    return (await session.execute(query)).scalars().all()


def image_conditions(where: ImageFilter) -> list:
    """The WHERE clauses of a filter, beyond "the dataset's live images"."""
    conditions = []
    if where.caption_contains:
        conditions.append(Image.caption.icontains(where.caption_contains, autoescape=True))
    if where.caption_excludes:
        conditions.append(
            or_(Image.caption.is_(None), ~Image.caption.icontains(where.caption_excludes, autoescape=True))
        )
    if where.caption_source:
        source = None if where.caption_source == captions.NONE else where.caption_source
        conditions.append(Image.caption_source.is_(None) if source is None else Image.caption_source == source)
    if where.review_state:
        conditions.append(Image.review_state == where.review_state)
    if where.image_ids is not None:
        conditions.append(Image.id.in_(sorted(where.image_ids)))
    if where.lint_issues:
        conditions.append(Image.lint_issues.op("&")(where.lint_issues) != 0)
    return conditions


# A clone keeps each image's review state, and its measurements and lint (same file, caption and prefix).
CLONED_REVIEW_AND_HEALTH = (
    "review_state", "review_note", "reviewed_at", "phash", "sharpness", "brightness", "dark_fraction",
    "bright_fraction", "transparent", "turned", "measured_at", *STALE_LINT,
)  # fmt: skip


async def clone_images(session: AsyncSession, source_id: int, target_id: int) -> None:
    """Copy every live image row (captions, sources and file keys) in one INSERT … SELECT."""
    now = utcnow()
    copied = [
        "organization_id", "image_name", "caption", "caption_source", "caption_confidence", "caption_signals",
        "file_key", "thumbnail_key", "storage", "content_type", "width", "height", "byte_size", "sha256",
        "upload_source_url", *CLONED_REVIEW_AND_HEALTH,
    ]  # fmt: skip
    source = (
        select(
            *[getattr(Image, name) for name in copied],
            literal(target_id, Image.dataset_id.type).label("dataset_id"),
            literal(now, UTCDateTime()).label("created_at"),
            literal(now, UTCDateTime()).label("updated_at"),
        )
        .where(Image.dataset_id == source_id, Image.deleted_at.is_(None))
        .order_by(Image.id)
        .with_for_update(read=True)
    )
    await session.execute(insert(Image).from_select([*copied, "dataset_id", "created_at", "updated_at"], source))


FileKeys = tuple[str, str]  # (original, thumbnail)


async def tombstone_datasets(session: AsyncSession, dataset_ids: Sequence[int], now: datetime) -> None:
    """Mark the datasets deleted (their images: tombstone_images)."""
    if dataset_ids:
        await session.execute(update(Dataset).where(Dataset.id.in_(dataset_ids)).values(deleted_at=now))


async def tombstone_images(session: AsyncSession, dataset_ids: Sequence[int], now: datetime) -> list[FileKeys]:
    """Mark the datasets' live images deleted; returns their files."""
    if not dataset_ids:
        return []
    live = (Image.dataset_id.in_(dataset_ids), Image.deleted_at.is_(None))
    files = (await session.execute(select(Image.file_key, Image.thumbnail_key).where(*live))).all()
    await session.execute(update(Image).where(*live).values(deleted_at=now))
    return [(original, thumbnail) for original, thumbnail in files]


async def unreferenced(session: AsyncSession, files: Sequence[FileKeys]) -> list[str]:
    """The keys of those `files` that no live image uses any more (a clone shares its source's files)."""
    if not files:
        return []
    originals = list({original for original, _ in files})
    query = select(Image.file_key).where(Image.deleted_at.is_(None), Image.file_key.in_(originals))
    used = set((await session.execute(query)).scalars())
    return [key for original, thumb in dict.fromkeys(files) if original not in used for key in (original, thumb)]


async def images_by_sha256(session: AsyncSession, dataset_id: int, hashes: Sequence[str]) -> dict[str, Image]:
    """The dataset's live images with any of these contents, by content hash."""
    if not hashes:
        return {}
    query = select(Image).where(Image.dataset_id == dataset_id, Image.deleted_at.is_(None), Image.sha256.in_(hashes))
    return {image.sha256: image for image in (await session.execute(query.order_by(Image.id.desc()))).scalars()}


async def used_keys(session: AsyncSession, keys: Sequence[str]) -> set[str]:
    """Those of `keys` that any image row (live or deleted) points at."""
    if not keys:
        return set()
    query = select(Image.file_key, Image.thumbnail_key).where(
        or_(Image.file_key.in_(keys), Image.thumbnail_key.in_(keys))
    )
    return {key for row in (await session.execute(query)).all() for key in row} & set(keys)


async def live_image_files(session: AsyncSession) -> Sequence:
    """(id, dataset_id, file_key, thumbnail_key, storage) of every live image: the files that must exist."""
    columns = (Image.id, Image.dataset_id, Image.file_key, Image.thumbnail_key, Image.storage)
    query = select(*columns).where(Image.deleted_at.is_(None))
    return (await session.execute(query.order_by(Image.id))).all()


async def tombstone_images_using(session: AsyncSession, file_key: str, now: datetime) -> list[int]:
    """Mark deleted every live image whose original is `file_key` (a clone shares it); their ids."""
    query = select(Image.id).where(Image.file_key == file_key, Image.deleted_at.is_(None))
    ids = list((await session.execute(query)).scalars())
    await session.execute(update(Image).where(Image.id.in_(ids)).values(deleted_at=now))
    return ids


async def purge_tombstones(session: AsyncSession, deleted_before: datetime) -> dict[str, int]:
    """Remove rows deleted before then, for good (their caption history and jobs go with them)."""
    purged = {}
    for name, model in (("images", Image), ("datasets", Dataset), ("projects", Project)):
        purged[name] = (await session.execute(delete(model).where(model.deleted_at < deleted_before))).rowcount
    return purged


@dataclass(frozen=True)
class StoredFile:
    """An original and its thumbnail, as the image rows sharing them describe them."""

    file_key: str
    thumbnail_key: str
    storage: str
    sha256: str
    content_type: str


async def files_elsewhere(
    session: AsyncSession, storage: str, dataset_ids: Sequence[int] | None, after_key: str, limit: int
) -> list[StoredFile]:
    """Files of live images (of these datasets, or all) not in `storage`, in key order after `after_key`."""
    columns = (Image.file_key, Image.thumbnail_key, Image.storage, Image.sha256, Image.content_type)
    query = select(*columns).where(Image.deleted_at.is_(None), Image.storage != storage, Image.file_key > after_key)
    if dataset_ids is not None:
        query = query.where(Image.dataset_id.in_(dataset_ids))
    rows = await session.execute(query.distinct().order_by(Image.file_key).limit(limit))
    return [StoredFile(*row) for row in rows]


async def move_file(session: AsyncSession, file_key: str, storage: str) -> bool:
    """Point every row sharing the file at `storage`; False (and nothing changed) if no live image uses it.

    The datasets holding it are locked first, as a clone locks its source: a clone copying these rows
    either finishes before (and its copies move too) or starts after (and copies the new backend)."""
    holders = select(Image.dataset_id).where(Image.file_key == file_key)
    await session.execute(select(Dataset.id).where(Dataset.id.in_(holders)).with_for_update())
    if not await file_in_use(session, file_key):
        return False
    await session.execute(update(Image).where(Image.file_key == file_key).values(storage=storage))
    return True


async def file_in_use(session: AsyncSession, file_key: str) -> bool:
    return bool(await session.scalar(select(exists().where(Image.file_key == file_key, Image.deleted_at.is_(None)))))


# --- caption history -------------------------------------------------------------------------


def record_caption(
    session: AsyncSession, image: Image, actor: str, job_id: int | None = None, batch_id: str | None = None
) -> None:
    """Keep the image's current caption as a revision (call after changing it)."""
    session.add(
        CaptionRevision(
            image=image,
            caption=image.caption,
            caption_source=image.caption_source,
            caption_confidence=image.caption_confidence,
            caption_signals=image.caption_signals,
            actor=actor,
            job_id=job_id,
            batch_id=batch_id,
        )
    )


async def latest_revision(session: AsyncSession, image_id: int) -> CaptionRevision | None:
    query = select(CaptionRevision).where(CaptionRevision.image_id == image_id).order_by(CaptionRevision.id.desc())
    return (await session.execute(query.limit(1))).scalar_one_or_none()


async def caption_revision(session: AsyncSession, image_id: int, revision_id: int) -> CaptionRevision | None:
    """One of the image's revisions; None when it has no revision of that id."""
    revision = await session.get(CaptionRevision, revision_id)
    return revision if revision is not None and revision.image_id == image_id else None


async def revision_before(session: AsyncSession, image_id: int, revision_id: int) -> CaptionRevision | None:
    query = (
        select(CaptionRevision)
        .where(CaptionRevision.image_id == image_id, CaptionRevision.id < revision_id)
        .order_by(CaptionRevision.id.desc())
    )
    return (await session.execute(query.limit(1))).scalar_one_or_none()


async def record_captions_of(session: AsyncSession, dataset_id: int, actor: str) -> None:
    """One revision per live image of the dataset, in one INSERT … SELECT (after a clone)."""
    source = select(
        Image.id, Image.caption, Image.caption_source, Image.caption_confidence, Image.caption_signals,
        literal(actor), literal(utcnow(), UTCDateTime()),
    ).where(Image.dataset_id == dataset_id, Image.deleted_at.is_(None))  # fmt: skip
    columns = ["image_id", "caption", "caption_source", "caption_confidence", "caption_signals", "actor", "created_at"]
    await session.execute(insert(CaptionRevision).from_select(columns, source))


async def caption_history(session: AsyncSession, image_id: int) -> Sequence[CaptionRevision]:
    query = select(CaptionRevision).where(CaptionRevision.image_id == image_id).order_by(CaptionRevision.id)
    return (await session.execute(query)).scalars().all()


# --- jobs ----------------------------------------------------------------------------------


async def active_job(session: AsyncSession, dataset_id: int, kind: str) -> Job | None:
    query = select(Job).where(Job.dataset_id == dataset_id, Job.kind == kind, Job.status.in_(ACTIVE))
    return (await session.execute(query.limit(1))).scalar_one_or_none()


async def latest_jobs(session: AsyncSession, dataset_ids: Sequence[int], kind: str) -> dict[int, Job]:
    """The newest job of this kind for each dataset, in one query."""
    if not dataset_ids:
        return {}
    newest = select(func.max(Job.id)).where(Job.dataset_id.in_(dataset_ids), Job.kind == kind).group_by(Job.dataset_id)
    jobs = (await session.execute(select(Job).where(Job.id.in_(newest)))).scalars().all()
    return {job.dataset_id: job for job in jobs}


# --- review state ----------------------------------------------------------------------------


async def review_counts(session: AsyncSession, dataset_id: int) -> dict[str, int]:
    """Live images per review state, and how many of the unreviewed carry an automatic caption."""
    live = (Image.dataset_id == dataset_id, Image.deleted_at.is_(None))
    rows = await session.execute(select(Image.review_state, func.count()).where(*live).group_by(Image.review_state))
    counts = {state: 0 for state in review.REVIEW_STATES} | dict(rows.all())
    automatic = select(func.count()).where(*live, Image.review_state == review.UNREVIEWED)
    counts["unreviewed_automatic"] = await session.scalar(automatic.where(Image.caption_source == captions.AUTOMATIC))
    return counts


async def set_review_state(
    session: AsyncSession, dataset_id: int, conditions: Sequence, state: str, note: str | None, now: datetime
) -> int:
    """Set the review state of the dataset's live images matching `conditions`; how many there were."""
    live = (Image.dataset_id == dataset_id, Image.deleted_at.is_(None), *conditions)
    reviewed = None if state == review.UNREVIEWED else now
    query = update(Image).where(*live).values(review_state=state, review_note=note, reviewed_at=reviewed)
    return (await session.execute(query.execution_options(synchronize_session=False))).rowcount


async def live_images_among(session: AsyncSession, dataset: Dataset, image_ids: Sequence[int]) -> list[Image]:
    """These images of the dataset, all live, or the error get_image gives for the first that is not."""
    found = {i.id: i for i in (await session.execute(select(Image).where(Image.id.in_(image_ids)))).scalars()}
    for image_id in image_ids:
        _visible_image(session, found.get(image_id), dataset.id, image_id)
    return [found[image_id] for image_id in dict.fromkeys(image_ids)]


async def mark_lint_stale(session: AsyncSession, dataset_id: int) -> None:
    """Every caption of the dataset is to be linted anew (services/health.py), e.g. after a new prefix."""
    query = update(Image).where(Image.dataset_id == dataset_id, Image.deleted_at.is_(None)).values(**STALE_LINT)
    await session.execute(query.execution_options(synchronize_session=False))
