"""Helper endpoints: a caption prefix (legacy) or a visual_schema (FIBO) suggested from sample images.

The configured captioner answers if it knows how (`suggest_prefix` / `suggest_visual_schema`);
otherwise the offline local captioner does, so the endpoints work with every backend."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
from PIL import Image

from tailorset import fetch, imaging
from tailorset.captioners import Captioner
from tailorset.domain.errors import Invalid
from tailorset.fibo import check_visual_schema
from tailorset.services import Services

PREFIX_IP_TYPES = ("stylized_scene", "defined_character", "object_variants")


async def load_images(services: Services, sources: Sequence[str], field: str, least: int, most: int) -> list:
    """Decode base64 images and fetch URLs (with the upload's safety rules), in order."""
    if not least <= len(sources) <= most:
        raise Invalid(f"{field} must hold {least} to {most} images; it holds {len(sources)}.")
    settings = services.settings
    images = []
    for number, source in enumerate(sources):
        what = f"{field}[{number}]"
        if source.startswith(("http://", "https://")):
            data = await fetch.fetch_image_url(settings, source)
        else:
            data = imaging.decode_base64(source, what)
        checked = imaging.check_upload(
            data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels, min_side=1, what=what
        )
        images.append(await anyio.to_thread.run_sync(imaging.to_rgb, checked.image))
    return images


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
