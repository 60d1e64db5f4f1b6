"""Files that follow database rows: written before the row commits, removed after it is gone."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from tailorset import imaging
from tailorset.services import Services

log = logging.getLogger(__name__)


def new_keys(extension: str, name: str | None = None) -> tuple[str, str]:
    """Fresh (original, thumbnail) keys, fanned out over 256 directories; `name` if chosen ahead."""
    name = name or uuid.uuid4().hex
    return f"images/{name[:2]}/{name}.{extension}", f"thumbnails/{name[:2]}/{name}.jpg"


def possible_keys(name: str) -> list[str]:
    """Every key `new_keys` can make from `name`, whatever the image turned out to be."""
    originals = [new_keys(extension, name)[0] for _, extension in imaging.FORMATS.values()]
    return [*originals, new_keys("jpg", name)[1]]


async def store(
    services: Services, checked: imaging.CheckedImage, thumbnail: bytes, keys: tuple[str, str] | None = None
) -> tuple[str, str]:
    """Write the original and its thumbnail (under `keys`, if chosen ahead); if either write fails, neither stays."""
    file_key, thumbnail_key = keys or new_keys(checked.extension)
    try:
        await services.storage.put(file_key, checked.data, checked.content_type)
        await services.storage.put(thumbnail_key, thumbnail, "image/jpeg")
    except BaseException:
        await delete_unreferenced(services, [file_key, thumbnail_key])
        raise
    return file_key, thumbnail_key


async def delete_unreferenced(services: Services, keys: Sequence[str]) -> None:
    """Best effort, after the rows are gone: a failure leaves an orphan file (which fsck finds),
    never a row whose file is missing."""
    for key in keys:
        try:
            await services.storage.delete(key)
        except Exception:
            log.exception("Could not delete file %s; it is now an orphan.", key)
