"""Request and response bodies, field for field as in Bria's Tailored Generation API (Gen B)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator

from tailorset.domain import captions, lifecycle
from tailorset.domain.jobs import BULK_UPLOAD_STATUSES, JobStatus
from tailorset.domain.review import REVIEW_STATES
from tailorset.domain.text import unstorable

IpMedium = Literal["photography", "illustration"]
IpType = Literal[
    "multi_object_set", "object_variants", "icons", "defined_character", "character_variants", "stylized_scene", "other"
]
# The API's enums are the domain's tuples: a value added there is accepted and documented here.
TrainingVersion = Literal[lifecycle.TRAINING_VERSIONS]
DatasetStatus = Literal[lifecycle.STATUSES]
CaptionSource = Literal[captions.SOURCES]
CaptionSourceFilter = Literal[(*captions.SOURCES, captions.NONE)]  # "none": images without a caption
ReviewState = Literal[REVIEW_STATES]

# A larger number names nothing, and must not reach a query (ids are 64-bit on both databases):
# the largest integer every JSON client (JavaScript, float parsers) represents exactly.
MAX_ID = 2**53 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


def no_nul(value):
    """Text no database can store (NUL, a lone surrogate) is refused on every database, with the field's name."""
    texts = value if isinstance(value, list) else [value]
    for text in texts:
        if isinstance(text, str) and (problem := unstorable(text)):
            raise ValueError(problem)
    return value


NoNul = AfterValidator(no_nul)  # for query and path strings; request bodies check every field
Name = Annotated[StrictStr, Field(min_length=1, max_length=500)]
Text = Annotated[StrictStr, Field(max_length=5000)]


class Body(BaseModel):
    """Request bodies: strict types (no "yes" → true), unknown fields ignored for forward compatibility."""

    model_config = ConfigDict(extra="ignore", strict=True)

    @field_validator("*")
    @classmethod
    def _no_nul_characters(cls, value):
        return no_nul(value)


class ErrorBody(BaseModel):
    error: str = Field(description="One sentence that says what was wrong.")


# --- projects ------------------------------------------------------------------------------


class ProjectCreate(Body):
    project_name: Name
    project_description: Text | None = None
    ip_name: Name | None = None
    ip_description: Text | None = None
    ip_medium: IpMedium
    ip_type: IpType
    training_version: TrainingVersion | None = Field(
        None, description="Lock the project to the FIBO or legacy family now; otherwise its first dataset does."
    )


class ProjectUpdate(Body):
    project_name: Name | None = None
    project_description: Text | None = None
    ip_name: Name | None = None
    ip_description: Text | None = None
    # Declared only to refuse them with a clear message rather than ignore them silently.
    ip_medium: object = Field(None, description="Cannot be changed after creation.")
    ip_type: object = Field(None, description="Cannot be changed after creation.")


class ProjectOut(BaseModel):
    id: int
    project_name: str
    project_description: str | None
    ip_name: str | None
    ip_description: str | None
    ip_medium: IpMedium
    ip_type: IpType
    training_version: TrainingVersion | None
    status: Literal["active"]
    created_at: datetime
    updated_at: datetime


# --- images --------------------------------------------------------------------------------


class ImageOut(BaseModel):
    """The image object; exactly the fields of the Update Image Caption response."""

    id: int
    dataset_id: int
    caption: str | None = Field(description="Text for legacy datasets; a JSON object as a string for FIBO datasets.")
    caption_source: CaptionSource | None
    image_name: str | None
    image_url: str = Field(description="URL of the original image file.")
    thumbnail_url: str = Field(description="URL of the image thumbnail.")
    created_at: datetime
    updated_at: datetime
    # tailorset's own fields, present only when the request asks for them with `?include=` (api/deps.py),
    # so that without it the body stays exactly Bria's.
    caption_confidence: float | None = Field(
        None, description="include=confidence: the captioner's confidence (0-1) in this automatic caption; "
        "null for manual captions and for captioners that give none."
    )  # fmt: skip
    caption_signals: dict | None = Field(
        None, description="include=confidence: the signals the automatic caption rests on, as its captioner says. "
        "The local captioner's: subject (null when none is named), kind, evidence, named, guess (a subject it "
        "suspected but was not sure enough to name), classifier, detector, scene (the scene classifier's places, "
        "where it was asked), faces, monochrome, exposure."
    )  # fmt: skip
    review_state: ReviewState | None = Field(
        None, description="include=review: unreviewed (new or re-captioned automatically), approved or flagged."
    )
    review_note: str | None = Field(None, description="include=review: the note given when the image was flagged.")
    reviewed_at: datetime | None = Field(None, description="include=review: when a person last reviewed it.")


class DatasetImageOut(ImageOut):
    upload_source_url: str | None = Field(description="The image_url the image was imported from, if any.")


class ImageUpload(Body):
    file: StrictStr | None = Field(None, description="The image, base64-encoded (a data: URL prefix is accepted).")
    image_url: Annotated[StrictStr, Field(max_length=4000)] | None = Field(
        None, description="A public http(s) URL to fetch the image from."
    )
    image_name: Annotated[StrictStr, Field(max_length=255)] | None = None
    increase_resolution: StrictBool = Field(
        True, description="Accept images from 256 px on each side; when false, both sides must be ≥ 1024 px."
    )
    content_moderation: StrictBool = Field(False, description="Accepted for compatibility; no moderation is run.")


class CaptionUpdate(Body):
    caption: StrictStr | None = Field(
        None, description='New caption text; sets caption_source to "manual". FIBO datasets: a JSON object string.'
    )
    regenerate_caption: StrictBool | None = Field(
        None, description='When true, the captioner writes a new caption and caption_source becomes "automatic".'
    )


# --- datasets ------------------------------------------------------------------------------


class DatasetCreate(Body):
    project_id: Id
    name: Name
    upload_type: Literal["basic", "advanced"] = "basic"
    training_version: TrainingVersion = "max"


class DatasetUpdate(Body):
    name: Name | None = None
    caption_prefix: Annotated[StrictStr, Field(max_length=1000)] | None = None
    visual_schema: Annotated[StrictStr, Field(max_length=20000)] | None = None
    status: DatasetStatus | None = None


class DatasetClone(Body):
    name: Name | None = Field(None, description='Default: "Copy of <original name>".')
    description: Text | None = Field(None, description="Accepted for compatibility; datasets keep no description.")


class CaptionsUpdate(BaseModel):
    """Progress of the latest Regenerate All Captions job."""

    job_id: int
    status: JobStatus
    done: int = Field(description="Images handled so far.")
    failed: int = Field(description="Images the captioner could not caption (their captions are unchanged).")
    total: int = Field(description="Images the job set out to caption.")
    include_manual: bool
    error: str | None = Field(None, description="Why the job failed or was cancelled, in one sentence.")


class RegenerateAll(Body):
    include_manual: StrictBool = Field(False, description="Also replace manual captions (kept by default).")


class CaptionRevisionOut(BaseModel):
    id: int
    caption: str | None
    caption_source: CaptionSource | None
    actor: str = Field(description='Who or what wrote it: "token:<name>", "captioner:local for token:<name>"…')
    job_id: int | None
    created_at: datetime


class DatasetOut(BaseModel):
    id: int
    project_id: int
    name: str
    training_version: TrainingVersion
    caption_prefix: str | None
    visual_schema: str | None
    status: DatasetStatus
    captions_update_status: Literal[captions.UPDATE_STATES]
    upload_type: Literal["basic", "advanced"]
    images_count: int
    captions_update: CaptionsUpdate | None = Field(
        description="Progress of the latest Regenerate All Captions job; null if there never was one."
    )
    created_at: datetime
    updated_at: datetime


class DatasetWithImagesOut(DatasetOut):
    images: list[DatasetImageOut]


# --- caption lint --------------------------------------------------------------------------


class CaptionLint(Body):
    caption: StrictStr
    training_version: TrainingVersion = lifecycle.FIBO


class LintCorrection(BaseModel):
    rule: str = Field(description="Name of the repair rule, e.g. trailing_commas.")
    path: str = Field(description="Where it applied, e.g. caption.objects[0].number_of_objects.")
    detail: str


class LintProblem(BaseModel):
    rule: str
    path: str
    message: str = Field(description="One sentence naming the JSON path.")


class CaptionLintOut(BaseModel):
    valid: bool
    caption: str | None = Field(description="The caption as it would be stored (repaired and canonical), if valid.")
    corrections: list[LintCorrection]
    errors: list[LintProblem]
    warnings: list[LintProblem] = Field(description="Soft limits (object count, word counts, token budget).")


# --- bulk caption edits --------------------------------------------------------------------


class CaptionReplace(Body):
    find: Annotated[StrictStr, Field(min_length=1, max_length=1000)]
    replace: Annotated[StrictStr, Field(max_length=5000)] = ""
    regex: StrictBool = Field(False, description="find is a regular expression; replace may use \\1 or \\g<name>.")
    case_sensitive: StrictBool = True
    caption_source: CaptionSource | None = Field(None, description="Only captions from this source.")
    image_ids: Annotated[list[Annotated[int, Field(ge=-MAX_ID, le=MAX_ID)]], Field(max_length=10000)] | None = Field(
        None, description="Only these images."
    )
    dry_run: StrictBool = Field(False, description="Report the before/after of each image without saving.")
    limit: Annotated[int, Field(ge=1, le=1000)] = Field(100, description="List at most this many changes…")
    after: Annotated[int, Field(ge=0, le=MAX_ID)] = Field(
        0, description="…of images after this id (the answer's next_after: the next page of a dry run)."
    )


class CaptionChange(BaseModel):
    image_id: int
    before: str | None
    after: str | None
    error: str | None = Field(None, description="Why this result would be refused (FIBO datasets).")


class SkippedImage(BaseModel):
    image_id: int
    reason: str


class CaptionEditOut(BaseModel):
    batch_id: str | None = Field(description="Undo the whole edit with POST …/captions/batches/{batch_id}/undo.")
    dry_run: bool
    changed: int
    changes: list[CaptionChange] = Field(description="At most `limit` of them, in image order.")
    skipped: list[SkippedImage]
    matched: int = Field(0, description="Captions the replace changes (or would, in a dry run), listed or not.")
    refused: int = Field(0, description="Of those, how many results would be refused (too long, invalid FIBO).")
    next_after: int | None = Field(None, description="Pass as `after` for the next page of changes.")


# --- bulk upload ---------------------------------------------------------------------------


class BulkUpload(Body):
    zip_url: Annotated[StrictStr, Field(max_length=4000)] | None = Field(
        None, description="A public http(s) URL of the ZIP; or send the ZIP itself as the multipart `file`."
    )
    automatic_captioning: StrictBool = Field(
        True, description="Caption images without a .txt beside them; when false, each image needs its .txt."
    )
    increase_resolution: StrictBool = Field(
        True, description="Accept images from 256 px on each side; when false, both sides must be ≥ 1024 px."
    )
    content_moderation: StrictBool = Field(False, description="Accepted for compatibility; no moderation is run.")


class FailedImage(BaseModel):
    filename: str = Field(description="The file's path inside the ZIP.")
    error_code: int = Field(description="The status code a single upload of this file would have answered.")
    error_message: str


class SkippedFile(BaseModel):
    filename: str
    reason: str = Field(description="Which image (or earlier file in the ZIP) it is the same file as.")


class BulkUploadStatus(BaseModel):
    status: Literal[BULK_UPLOAD_STATUSES]
    progress_percentage: int
    total_processed: int = Field(description="Files handled so far: done + failed + skipped.")
    done: int = Field(description="Images imported.")
    failed: int = Field(description="Files refused; each is in failed_images.")
    failed_images: list[FailedImage]
    total: int = Field(description="Files in the ZIP to handle (0 until the ZIP has been read).")
    skipped: int = Field(description="Files already in the dataset (same content), not imported again.")
    skipped_images: list[SkippedFile]
    uncaptioned_images: list[SkippedFile] = Field(
        description="Images imported with an automatic caption because the ZIP, which brings captions, has none "
        "for them (no .txt or .caption beside them, no row in metadata.jsonl or metadata.csv)."
    )
    error: str | None = Field(description="Why the whole upload failed or was stopped, if it did.")
