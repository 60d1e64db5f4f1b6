"""/tailored-gen/captions/validate: check a caption before saving it."""

from typing import Annotated

from fastapi import APIRouter, Path

from tailorset.api.body_limit import ApiRoute
from tailorset.api.deps import Org, PathId, Svc, Who
from tailorset.api.responses import errors
from tailorset.domain import captions
from tailorset.schemas import CaptionEditOut, CaptionLint, CaptionLintOut, CaptionReplace, NoNul
from tailorset.services import caption_edits

router = APIRouter(prefix="/tailored-gen", tags=["Captions"], route_class=ApiRoute)


@router.post(
    "/captions/validate", response_model=CaptionLintOut, responses=errors(400), summary="Validate Caption",
    description="Reports what Update Image Caption would do with this caption: the stored (repaired, "
    "canonical) form, each repair applied, the errors that would make it a 400, and soft-limit warnings "
    "(more than 5 objects, word limits, the text encoder's token budget). Nothing is saved.",
)  # fmt: skip
async def validate_caption(body: CaptionLint, org: Org, services: Svc):
    max_chars = services.settings.max_caption_chars
    return await services.run_work(captions.lint, body.caption, body.training_version, max_chars)


def _edit_body(result: caption_edits.EditResult, dry_run: bool) -> dict:
    return {
        "batch_id": result.batch_id,
        "dry_run": dry_run,
        "changed": 0 if dry_run else result.matched,
        "changes": [vars(change) for change in result.changes],
        "skipped": result.skipped,
        "matched": result.matched,
        "refused": result.refused,
        "next_after": result.next_after,
    }


@router.post(
    "/datasets/{dataset_id}/captions/replace", response_model=CaptionEditOut, responses=errors(400, 404, 409, 410),
    summary="Find and Replace in Captions",
    description="Literal or regex find/replace over the dataset's captions (optionally only one caption source "
    "or some images). `dry_run` shows the before/after of each image without saving, `limit` at a time (`after`: "
    "the next page). Otherwise it is atomic: every changed caption becomes manual, in one batch that "
    "`…/captions/batches/{batch_id}/undo` reverts. A result over the caption limit is refused; so is a pattern "
    "that runs longer than 2 s.",
)  # fmt: skip
async def replace_in_captions(dataset_id: PathId, body: CaptionReplace, caller: Who, services: Svc):
    spec = caption_edits.Replace(
        body.find,
        body.replace,
        body.regex,
        body.case_sensitive,
        body.caption_source,
        body.image_ids,
        body.limit,
        body.after,
    )
    result = await caption_edits.replace(services, caller.org_id, dataset_id, spec, body.dry_run, caller.actor)
    return _edit_body(result, body.dry_run)


@router.post(
    "/datasets/{dataset_id}/captions/batches/{batch_id}/undo", response_model=CaptionEditOut,
    responses=errors(400, 404, 409, 410), summary="Undo a Caption Batch",
    description="Puts back each image's caption from before the batch (a replace, or an earlier undo). Images "
    "whose caption changed since are skipped and listed. The undo is a batch of its own.",
)  # fmt: skip
async def undo_caption_batch(
    dataset_id: PathId, batch_id: Annotated[str, Path(max_length=36), NoNul], caller: Who, services: Svc
):
    return _edit_body(await caption_edits.undo(services, caller.org_id, dataset_id, batch_id, caller.actor), False)
