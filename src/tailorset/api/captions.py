"""/tailored-gen/captions/validate: check a caption before saving it."""

from fastapi import APIRouter

from tailorset.api.deps import Org, Svc
from tailorset.api.present import errors
from tailorset.domain import captions
from tailorset.schemas import CaptionLint, CaptionLintOut

router = APIRouter(prefix="/tailored-gen/captions", tags=["Captions"])


@router.post(
    "/validate", response_model=CaptionLintOut, responses=errors(400), summary="Validate Caption",
    description="Reports what Update Image Caption would do with this caption: the stored (repaired, "
    "canonical) form, each repair applied, the errors that would make it a 400, and soft-limit warnings "
    "(more than 5 objects, word limits, the text encoder's token budget). Nothing is saved.",
)  # fmt: skip
async def validate_caption(body: CaptionLint, org: Org, services: Svc):
    return captions.lint(body.caption, body.training_version, services.settings.max_caption_chars)
