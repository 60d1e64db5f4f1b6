"""Helper endpoints: a caption prefix (legacy) or a visual_schema (FIBO) suggested from sample images, and a
visual_schema or FIBO caption refined by an instruction.

The configured captioner answers if it knows how (`suggest_prefix` / `suggest_visual_schema`);
otherwise the offline local captioner does, so those endpoints work with every backend. Refining needs a
language model (`refine`: the openai and transformers backends); the local captioner has none."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
from PIL import Image

from tailorset import fetch, imaging
from tailorset.captioners import Captioner
from tailorset.db import repository as repo
from tailorset.domain import lifecycle
from tailorset.domain.errors import Invalid, NotSupported
from tailorset.fibo import check_caption, check_visual_schema
from tailorset.services import Services, files

PREFIX_IP_TYPES = ("stylized_scene", "defined_character", "object_variants")


async def load_images(services: Services, sources: Sequence[str], field: str, least: int, most: int) -> list:
    """Decode base64 images and fetch URLs (with the upload's safety rules), in order."""
    _count(sources, field, least, most)
    images = []
    for number, source in enumerate(sources):
        what = f"{field}[{number}]"
        if source.startswith(("http://", "https://")):
            data = await fetch.fetch_image_url(services.settings, source)
        else:
            data = imaging.decode_base64(source, what)
        images.append(await _decoded(services, data, what))
    return images


async def load_stored_images(
    services: Services, org_id: int, dataset_id: int, image_ids: Sequence[int], least: int, most: int
) -> list:
    """Images already in one of the organization's datasets, read from storage (tailorset's `image_ids`)."""
    _count(image_ids, "image_ids", least, most)
    async with services.db.read() as session:
        rows = [await repo.get_dataset_image(session, org_id, dataset_id, image_id) for image_id in image_ids]
    return [
        await _decoded(services, await files.read(services, image.storage, image.file_key), f"image {image.id}")
        for _, image in rows
    ]


def _count(sources: Sequence, field: str, least: int, most: int) -> None:
    if not least <= len(sources) <= most:
        raise Invalid(f"{field} must hold {least} to {most} images; it holds {len(sources)}.")


# Advisors look at small copies (512–768 px): ten full-size samples held side by side would take gigabytes.
ADVICE_SIDE = 2048


async def _decoded(services: Services, data: bytes, what: str) -> Image.Image:
    settings = services.settings

    def decode() -> Image.Image:
        checked = imaging.check_upload(
            data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels, min_side=1, what=what
        )
        rgb = imaging.to_rgb(checked.image)
        rgb.thumbnail((ADVICE_SIDE, ADVICE_SIDE), Image.Resampling.LANCZOS, reducing_gap=3.0)
        return rgb

    return await services.run_work(decode)


def _advisor(services: Services, method: str) -> Captioner:
    if hasattr(services.captioner, method):
        return services.captioner
    return services.local_captioner


async def prefix(
    services: Services, images: list[Image.Image], ip_type: str, ip_medium: str, ip_name: str | None
) -> str:
    if ip_type not in PREFIX_IP_TYPES:
        raise Invalid(f"ip_type must be one of: {', '.join(PREFIX_IP_TYPES)}.")
    if ip_type == "defined_character" and not ip_name:
        raise Invalid("ip_name is required when ip_type is 'defined_character'.")
    advisor = _advisor(services, "suggest_prefix")
    suggested = await anyio.to_thread.run_sync(advisor.suggest_prefix, images, limiter=services.caption_limiter)
    # The captioner sees photos; the project says what the medium really is, and who the character is.
    if ip_medium == "illustration":
        suggested = suggested.replace("A black and white photo", "A black and white illustration", 1)
        suggested = suggested.replace("A photo", "An illustration", 1)
    if ip_type == "defined_character":
        medium, _, subject = suggested.partition(" of ")
        suggested = f"{medium} of {ip_name}" + (f", {subject}" if subject else "")
    return suggested


async def visual_schema(services: Services, images: list[Image.Image]) -> str:
    advisor = _advisor(services, "suggest_visual_schema")
    text = await anyio.to_thread.run_sync(advisor.suggest_visual_schema, images, limiter=services.caption_limiter)
    return check_visual_schema(text).caption or text


async def refine(
    services: Services, org_id: int, dataset_id: int, structured_prompt: str, instruction: str, sources: Sequence[str]
) -> str:
    """Refine Structured Prompt: the dataset's visual_schema or one of its FIBO captions, changed as the
    instruction says by the configured language model, and checked as its kind before it is returned."""
    async with services.db.read() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id)
    lifecycle.ensure_draft(dataset.id, dataset.status, "refine its prompts")
    if not instruction.strip():
        raise Invalid("instruction must not be empty.")
    as_caption = await anyio.to_thread.run_sync(check_caption, structured_prompt)
    if not as_caption.valid:
        as_schema = await anyio.to_thread.run_sync(check_visual_schema, structured_prompt)
        if not as_schema.valid:
            raise Invalid(as_schema.error_message().replace("visual_schema", "structured_prompt", 1))
    captioner = services.captioner
    if not hasattr(captioner, "refine"):
        raise NotSupported(
            f"Refining a structured prompt needs a language model, which the {captioner.name} captioner does not "
            "have: set TAILORSET_CAPTIONER=openai (any OpenAI-compatible server) or transformers (a local chat model)."
        )
    images = await load_images(services, sources, "context_images", 0, 10)
    current = (as_caption if as_caption.valid else as_schema).caption
    return await anyio.to_thread.run_sync(
        lambda: captioner.refine(current, instruction, images, caption=as_caption.valid),
        limiter=services.caption_limiter,
    )
