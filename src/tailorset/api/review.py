"""tailorset's own review endpoints (not in Bria's API): review state, caption lint, the dataset health report,
and deleting several images at once. Bria's bodies carry none of this; `?include=review` adds the state to them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictStr, model_validator

from tailorset.api.body_limit import ApiRoute
from tailorset.api.deps import Include, Org, PathId, Svc
from tailorset.api.present import Presenter
from tailorset.api.responses import errors
from tailorset.db import repository as repo
from tailorset.schemas import MAX_ID, Body, CaptionSourceFilter, Id, ImageOut, ReviewState
from tailorset.services import health, images, review

router = APIRouter(prefix="/tailored-gen/datasets/{dataset_id}", tags=["Review (tailorset)"], route_class=ApiRoute)

ImageIds = Annotated[list[Annotated[int, Field(ge=1, le=MAX_ID)]], Field(min_length=1, max_length=10000)]
Only = Literal["duplicates", "lint"]
ONLY = "`duplicates`: images in a group of exact or near-duplicate pictures; `lint`: captions with a lint finding."


class ImageQuery(Body):
    """Which images, as the image list's filters choose them."""

    caption_contains: Annotated[StrictStr, Field(max_length=1000)] | None = None
    caption_excludes: Annotated[StrictStr, Field(max_length=1000)] | None = None
    caption_source: CaptionSourceFilter | None = None
    review_state: ReviewState | None = None
    only: Only | None = Field(None, description=ONLY)


async def image_filter(services, org_id: int, dataset_id: int, query: ImageQuery) -> repo.ImageFilter:
    """The repository filter for an image query; `only=duplicates` needs the duplicate groups found first."""
    ids = await health.duplicate_ids(services, org_id, dataset_id) if query.only == "duplicates" else None
    return repo.ImageFilter(
        query.caption_contains, query.caption_excludes, query.caption_source, query.review_state, ids,
        lint_issues=health.lint.ALL if query.only == "lint" else 0,
    )  # fmt: skip


class ReviewChange(Body):
    state: ReviewState
    note: Annotated[StrictStr, Field(max_length=2000)] | None = Field(
        None, description="Why the image needs attention (flagged only)."
    )


class BulkReviewChange(ReviewChange):
    image_ids: ImageIds | None = Field(None, description="These images (each must be a live image of the dataset).")
    filter: ImageQuery | None = Field(None, description="Or every image these filters match ({} for all).")

    @model_validator(mode="after")
    def _one_selection(self):
        if (self.image_ids is None) == (self.filter is None):
            raise ValueError("give either image_ids or filter")
        return self


class ReviewCounts(BaseModel):
    unreviewed: int
    approved: int
    flagged: int
    unreviewed_automatic: int = Field(description="Unreviewed images whose caption the captioner wrote.")


class BulkReviewOut(BaseModel):
    changed: int = Field(description="How many images now have the state.")
    review: ReviewCounts


class ReviewedImage(ImageOut):
    review_state: ReviewState
    review_note: str | None
    reviewed_at: datetime | None


class BulkDelete(Body):
    image_ids: ImageIds


class Deleted(BaseModel):
    deleted: int


class LintDraft(Body):
    caption: StrictStr = Field(
        description="Longer than the service's caption limit (TAILORSET_MAX_CAPTION_CHARS, 20,000) is a 400, as "
        "saving it would be."
    )
    image_id: Id | None = Field(
        None, description="The image this draft is for: its own stored caption is not counted as the same caption."
    )


class TextEncoderOut(BaseModel):
    name: str = Field(description="CLIP, T5 or SmolLM3: the text encoder the dataset's training version uses.")
    limit: int = Field(description="Tokens it reads; a longer caption is cut off in training.")
    exact: bool = Field(description="Counted with the encoder's real tokenizer (CLIP), or estimated (T5, SmolLM3).")


class LintFinding(BaseModel):
    rule: str
    blocking: bool = Field(description="Training on it would go wrong; otherwise a warning.")
    message: str
    path: str | None = Field(None, description="FIBO: the JSON path it is about.")


class CaptionLintReport(BaseModel):
    encoder: TextEncoderOut
    tokens: int | None = Field(description="The caption's length in the encoder's tokens; null without a caption.")
    findings: list[LintFinding]
    same_caption_image_ids: list[int] = Field(description="Other images of the dataset with exactly this caption.")


@router.post(
    "/images/{image_id:int}/review", response_model=ReviewedImage, response_model_exclude_unset=True,
    responses=errors(400, 404, 409, 410),
    summary="Review Image",
    description="Approve, flag (with an optional note) or unapprove (`unreviewed`) one image. A completed dataset "
    "answers 409. Writing a caption also sets the state: a person's caption is approved, the captioner's unreviewed.",
)  # fmt: skip
async def review_image(
    dataset_id: PathId, image_id: PathId, body: ReviewChange, org: Org, services: Svc, request: Request,
    include: Include,
):  # fmt: skip
    image = await review.set_state(services, org, dataset_id, image_id, body.state, body.note)
    return Presenter(request, include | {"review"}).image(image)


@router.post(
    "/images/review", response_model=BulkReviewOut, responses=errors(400, 404, 409, 410),
    summary="Review Images",
    description="Set the review state of many images at once: `image_ids`, or every image a `filter` matches "
    "(the image list's filters: e.g. approve all visible). All or nothing.",
)  # fmt: skip
async def review_images(dataset_id: PathId, body: BulkReviewChange, org: Org, services: Svc):
    if body.image_ids is not None:
        changed = await review.set_states(services, org, dataset_id, body.state, body.note, image_ids=body.image_ids)
    else:
        where = await image_filter(services, org, dataset_id, body.filter)
        changed = await review.set_states(services, org, dataset_id, body.state, body.note, where=where)
    return {"changed": changed, "review": await review.counts(services, org, dataset_id)}


@router.get(
    "/review", response_model=ReviewCounts, responses=errors(400, 404, 410), summary="Review Progress",
    description="How many of the dataset's images are unreviewed, approved and flagged.",
)  # fmt: skip
async def review_progress(dataset_id: PathId, org: Org, services: Svc):
    return await review.counts(services, org, dataset_id)


@router.post(
    "/images/delete", response_model=Deleted, responses=errors(400, 404, 409, 410), summary="Delete Images",
    description="Deletes these images together (e.g. all but one of a group of duplicates). If any of them is not "
    "a live image of the dataset, none is deleted.",
)  # fmt: skip
async def delete_images(dataset_id: PathId, body: BulkDelete, org: Org, services: Svc):
    return {"deleted": await images.delete_many(services, org, dataset_id, body.image_ids)}


@router.post(
    "/captions/lint", response_model=CaptionLintReport, responses=errors(400, 404, 410, 413),
    summary="Lint a Caption",
    description="Lints a caption (unsaved, e.g. while it is typed) for this dataset: its length in the tokens of "
    "the text encoder its training version uses (CLIP 77, T5 512, SmolLM3 3000 for FIBO), the prefix missing or "
    "repeated, no subject, control characters, FIBO fields left “not determined” and the FIBO checker's warnings; "
    "and the images that already have exactly this caption. Nothing is saved.",
)  # fmt: skip
async def lint_draft(dataset_id: PathId, body: LintDraft, org: Org, services: Svc):
    return await health.lint_one(services, org, dataset_id, caption=body.caption, draft_for=body.image_id)


@router.get(
    "/images/{image_id:int}/lint", response_model=CaptionLintReport, responses=errors(400, 404, 410),
    summary="Lint an Image's Caption", description="As Lint a Caption, for the image's stored caption.",
)  # fmt: skip
async def lint_image(dataset_id: PathId, image_id: PathId, org: Org, services: Svc):
    return await health.lint_one(services, org, dataset_id, image_id=image_id)


@router.get(
    "/health", responses=errors(400, 404, 410), summary="Dataset Health Report",
    description="Duplicates (exact and near), image issues (blur, exposure, size, aspect ratio, transparency), "
    "the aspect-ratio buckets a trainer forms at 1024² with 64-px steps, caption lint totals, token lengths and "
    "frequent words, review progress, the automatic captions the captioner doubts (`doubtful_captions`, least sure "
    "first), and readiness against Bria's rules. `problems` lists every finding, "
    "`blocking` counts those that should stop a training run. Computed from measurements stored per image; "
    "`complete` is false while the background job is still measuring or linting (see `pending`). `images` gives "
    "the name and thumbnail of every image in a duplicate group or an image issue.",
)  # fmt: skip
async def dataset_health(dataset_id: PathId, org: Org, services: Svc, request: Request):
    found = await health.report(services, org, dataset_id)
    base_url = Presenter(request).base_url
    found.body["images"] = {
        str(image_id): {"image_name": name, "thumbnail_url": services.file_url(storage, key, base_url)}
        for image_id, name, storage, key in await health.thumbnails(services, dataset_id, found.image_ids)
    }
    return JSONResponse(found.body)  # plain JSON already: no need for FastAPI's encoder over thousands of values


@router.get(
    "/captions/lint", responses=errors(400, 404, 410), summary="Lint the Dataset's Captions",
    description="The caption part of the health report: the text encoder, per-rule totals with the images, "
    "captions shared by several images, token lengths and frequent words.",
)  # fmt: skip
async def lint_dataset(dataset_id: PathId, org: Org, services: Svc):
    found = await health.report(services, org, dataset_id)
    return {**found.body["captions"], "complete": found.body["complete"], "pending": found.body["pending"]}
