"""/tailored-gen/generate_prefix, /tailored-gen/generate_visual_schema and /tailored-gen/refine_structured_prompt"""

from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field, StrictStr

from tailorset.api.body_limit import ApiRoute, carries_images
from tailorset.api.deps import Org, Svc
from tailorset.api.responses import errors
from tailorset.domain.errors import Invalid
from tailorset.schemas import Body, IpMedium
from tailorset.services import suggestions

router = APIRouter(prefix="/tailored-gen", tags=["Captioning helpers"], route_class=ApiRoute)

ImageSource = Annotated[StrictStr, Field(max_length=40_000_000)]


class StoredImages(Body):
    """tailorset's own way to name sample images: ones already in a dataset of yours (Bria takes only bytes or URLs)."""

    dataset_id: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = Field(None, description="With image_ids.")
    image_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] | None = Field(
        None, max_length=10, description="Images of dataset_id to use instead of images / image_urls."
    )

    async def load(self, services, org: int, given: list | None, field: str, least: int, most: int) -> list:
        """The images `given` in the request (`field`), or the stored ones image_ids names."""
        if (given is None) == (self.image_ids is None):
            raise Invalid(f"Provide either {field} or image_ids (with dataset_id), not both and not neither.")
        if self.image_ids is None:
            return await suggestions.load_images(services, given, field, least, most)
        if self.dataset_id is None:
            raise Invalid("image_ids needs the dataset_id they belong to.")
        return await suggestions.load_stored_images(services, org, self.dataset_id, self.image_ids, least, most)


class PrefixRequest(StoredImages):
    image_urls: list[ImageSource] | None = Field(None, description="1–6 public image URLs.")
    images: list[ImageSource] | None = Field(None, description="1–6 base64-encoded images.")
    ip_type: Literal["stylized_scene", "defined_character", "object_variants"]
    ip_medium: IpMedium
    ip_name: Annotated[StrictStr, Field(max_length=200)] | None = Field(None, description="For defined_character.")
    content_moderation: bool = Field(False, description="Accepted for compatibility; no moderation is run.")


class PrefixOut(BaseModel):
    prefix: str


class VisualSchemaRequest(StoredImages):
    images: list[ImageSource] | None = Field(None, description="5–10 images, each base64-encoded or a public URL.")
    content_moderation: bool = Field(False, description="Accepted for compatibility; no moderation is run.")


class VisualSchemaOut(BaseModel):
    visual_schema: str = Field(description="A JSON object as a string; save it with PUT /datasets/{id}.")


class RefineRequest(Body):
    dataset_id: Annotated[int, Field(ge=1, le=2**63 - 1)] = Field(description="A draft dataset of yours.")
    structured_prompt: Annotated[StrictStr, Field(max_length=80_000)] = Field(
        description="A visual_schema or a FIBO caption: a JSON object as a string."
    )
    instruction: Annotated[StrictStr, Field(min_length=1, max_length=2000)] = Field(
        description='What to change, e.g. "Make the style description more detailed".'
    )
    context_images: list[ImageSource] | None = Field(None, description="Up to 10 images, base64 or public URLs.")


class RefineOut(BaseModel):
    structured_prompt: str = Field(description="The refined JSON object as a string, in the same format.")


@router.post(
    "/refine_structured_prompt", response_model=RefineOut, responses=errors(400, 404, 409, 410, 413, 415, 422, 501),
    summary="Refine Structured Prompt",
    description="Applies a natural-language instruction to a visual_schema or a FIBO caption with the configured "
    "language model (TAILORSET_CAPTIONER openai or transformers; 501 with the offline local captioner) and returns "
    "it checked: a caption as a valid FIBO caption, a visual_schema as a JSON object. Nothing is saved.",
)  # fmt: skip
async def refine_structured_prompt(body: RefineRequest, org: Org, services: Svc):
    refined = await suggestions.refine(
        services, org, body.dataset_id, body.structured_prompt, body.instruction, body.context_images or []
    )
    return {"structured_prompt": refined}


@router.post(
    "/generate_prefix", response_model=PrefixOut, responses=errors(400, 404, 410, 413, 415, 422),
    summary="Generate Prefix",
    description="Suggests a caption_prefix for a legacy dataset from 1–6 representative images. Save it with "
    "PUT /tailored-gen/datasets/{id} before uploading, or run Regenerate All Captions afterwards.",
)  # fmt: skip
@carries_images(6)
async def generate_prefix(body: PrefixRequest, org: Org, services: Svc):
    if body.images is not None and body.image_urls is not None:
        raise Invalid("Provide either images (base64) or image_urls, not both and not neither.")
    field, sources = ("images", body.images) if body.images is not None else ("image_urls", body.image_urls)
    images = await body.load(services, org, sources, field, 1, 6)
    return {"prefix": await suggestions.prefix(services, images, body.ip_type, body.ip_medium, body.ip_name)}


@router.post(
    "/generate_visual_schema", response_model=VisualSchemaOut, responses=errors(400, 404, 410, 413, 415, 422),
    summary="Generate Visual Schema",
    description="Suggests a FIBO dataset's visual_schema (what its images share: medium, style, colours, "
    "lighting, composition) from 5–10 representative images. Automatic captions of the dataset follow it.",
)  # fmt: skip
@carries_images(10)
async def generate_visual_schema(body: VisualSchemaRequest, org: Org, services: Svc):
    images = await body.load(services, org, body.images, "images", 5, 10)
    return {"visual_schema": await suggestions.visual_schema(services, images)}
