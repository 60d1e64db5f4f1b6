"""SQLAlchemy models. Every resource carries its organization; deletes leave a tombstone
(`deleted_at`) so the API can answer 410 Gone instead of 404 for what once existed."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from tailorset.domain import captions, lifecycle
from tailorset.domain.jobs import JobStatus

# Stable constraint names, so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def same_as_created(context) -> datetime:
    """A new row's updated_at equals its created_at, to the microsecond."""
    return context.get_current_parameters()["created_at"]


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def result_processor(self, dialect, coltype):
        """SQLite: the stored text straight to an aware datetime (see _sqlite_utc); a dataset's images carry
        hundreds of datetimes, and SQLAlchemy's way (parse, then process_result_value) costs five times more."""
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        return _sqlite_utc


def _sqlite_utc(value: str | None) -> datetime | None:
    """SQLite keeps these UTC datetimes as naive text ("YYYY-MM-DD HH:MM:SS.ffffff"): read as UTC. Parsing it with
    the offset appended costs a fifth of datetime.replace(tzinfo=UTC)."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value + "+00:00")
    except ValueError:  # text with an offset of its own, as SQLAlchemy would read it
        return datetime.fromisoformat(value)


# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
Id = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    rate_limit: Mapped[str | None] = mapped_column(String(50))  # e.g. "1000/minute"; None = default plan
    # When a worker last took up one of its jobs: the next claim serves the organization waiting longest.
    jobs_served_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    # SHA-256 of the token: a stolen database does not hand out working tokens.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(16))  # the first characters, to tell tokens apart
    name: Mapped[str | None] = mapped_column(String(200))  # who holds it; recorded with each caption change
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    project_name: Mapped[str] = mapped_column(String(500))
    project_description: Mapped[str | None] = mapped_column(Text)
    ip_name: Mapped[str | None] = mapped_column(String(500))
    ip_description: Mapped[str | None] = mapped_column(Text)
    ip_medium: Mapped[str] = mapped_column(String(20))
    ip_type: Mapped[str] = mapped_column(String(40))
    # The training family the project is locked to; None until its first dataset (or creation) sets it.
    training_version: Mapped[str | None] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=same_as_created)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    training_version: Mapped[str] = mapped_column(String(10))
    caption_prefix: Mapped[str | None] = mapped_column(Text)
    visual_schema: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=lifecycle.DRAFT)
    captions_update_status: Mapped[str] = mapped_column(String(20), default=captions.UPDATE_EMPTY)
    upload_type: Mapped[str] = mapped_column(String(20), default="basic")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=same_as_created)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (
        # Live images only: keyset pages and per-dataset counts read this index alone (index-only
        # scans), so neither slows down as a dataset grows or accumulates tombstones.
        Index(
            "ix_images_live_dataset_id_id",
            "dataset_id",
            "id",
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    image_name: Mapped[str | None] = mapped_column(String(500))
    caption: Mapped[str | None] = mapped_column(Text)
    caption_source: Mapped[str | None] = mapped_column(String(20))
    # What the captioner said of its own automatic caption: a confidence in 0-1 (None when it gave none, and
    # for manual captions) and the signals it rests on, as a JSON object.
    caption_confidence: Mapped[float | None] = mapped_column(Float)
    caption_signals: Mapped[str | None] = mapped_column(Text)
    # domain/review.py: unreviewed, approved or flagged (with an optional note).
    review_state: Mapped[str] = mapped_column(String(20), default="unreviewed", server_default="unreviewed")
    review_note: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the health report needs of the picture (tailorset/quality.py), measured once when it is stored;
    # measured_at is None until then (images stored before the measurements existed are measured in the background).
    phash: Mapped[int | None] = mapped_column(BigInteger)  # 64-bit perceptual hash, as a signed integer
    sharpness: Mapped[float | None] = mapped_column(Float)
    brightness: Mapped[float | None] = mapped_column(Float)  # mean luma, 0-1
    dark_fraction: Mapped[float | None] = mapped_column(Float)  # share of crushed-black pixels
    bright_fraction: Mapped[float | None] = mapped_column(Float)  # share of blown-out pixels
    transparent: Mapped[bool | None] = mapped_column(Boolean)
    turned: Mapped[bool | None] = mapped_column(Boolean)  # EXIF turns it a quarter: upright it is height × width
    measured_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The caption's lint (domain/lint.py) against the dataset's text encoder and prefix; all None = not linted
    # since the caption (or the prefix) last changed.
    lint_tokens: Mapped[int | None] = mapped_column(Integer)
    lint_issues: Mapped[int | None] = mapped_column(Integer)  # bitmask of domain/lint.RULES
    lint_terms: Mapped[str | None] = mapped_column(Text)  # the caption's distinct words, space-separated
    # Keys in the storage backend. Files are immutable and a clone shares its source's files;
    # a file is removed when the last live image that points at it is deleted.
    file_key: Mapped[str] = mapped_column(String(300), index=True)
    thumbnail_key: Mapped[str] = mapped_column(String(300))
    # The backend holding both files ("local", "s3"); rows sharing a file always name the same one.
    storage: Mapped[str] = mapped_column(String(20), default="local", server_default="local")
    content_type: Mapped[str] = mapped_column(String(40))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    byte_size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    upload_source_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=same_as_created)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CaptionRevision(Base):
    """Every caption an image ever had, newest last: who or what wrote it, and when."""

    __tablename__ = "caption_revisions"
    __table_args__ = (Index("ix_caption_revisions_image_id_id", "image_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    image: Mapped[Image] = relationship()
    caption: Mapped[str | None] = mapped_column(Text)
    caption_source: Mapped[str | None] = mapped_column(String(20))
    caption_confidence: Mapped[float | None] = mapped_column(Float)
    caption_signals: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))  # "token:alice", "captioner:local", "job:12 captioner:local"
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    # Revisions written by one bulk operation share a batch id, so the operation can be undone as one.
    batch_id: Mapped[str | None] = mapped_column(String(36), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Job(Base):
    """Background work, persisted so it survives restarts. Workers claim a job with a lease they
    renew as they go; a job whose lease ran out (its worker died) is claimed again and resumes
    after `cursor`, the last item it finished."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default=JobStatus.QUEUED)  # domain/jobs.JobStatus
    options: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    cursor: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # claims in a row that ended in a crash or error
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=same_as_created)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class JobReportEntry(Base):
    """A file a job did not import as it was (a bulk upload's refusals, duplicates and uncaptioned images)."""

    __tablename__ = "job_report_entries"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(String(40))  # a DomainError's class name, "Duplicate" or "NoCaption"
    message: Mapped[str] = mapped_column(Text)


class ServerSecret(Base):
    """Secrets every API process must share (e.g. the key that signs image URLs).

    Kept in the database so that several processes behind a load balancer agree without extra
    configuration."""

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


__all__ = [
    "Base",
    "Organization",
    "ApiToken",
    "Project",
    "Dataset",
    "Image",
    "ServerSecret",
    "CaptionRevision",
    "Job",
    "JobReportEntry",
    "utcnow",
]
