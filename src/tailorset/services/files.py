"""Files that follow database rows: written before the row commits, removed after it is gone."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Sequence

from tailorset import imaging
from tailorset.services import Services

log = logging.getLogger(__name__)


def new_keys(extension: str) -> tuple[str, str]:
    """Fresh (original, thumbnail) keys, fanned out over 256 directories."""
    name = uuid.uuid4().hex
    return f"images/{name[:2]}/{name}.{extension}", f"thumbnails/{name[:2]}/{name}.jpg"


async def store(services: Services, checked: imaging.CheckedImage, thumbnail: bytes) -> tuple[str, str]:
    """Write the original and its thumbnail; if either write fails, neither stays."""
    file_key, thumbnail_key = new_keys(checked.extension)
    try:
        await services.storage.put(file_key, checked.data, checked.content_type)
        await services.storage.put(thumbnail_key, thumbnail, "image/jpeg")
    except BaseException:
        await delete_unreferenced(services, [file_key, thumbnail_key])
        raise
    return file_key, thumbnail_key


async def read(services: Services, storage: str, key: str) -> bytes:
    """A file's bytes from the backend its row names, or from another one if it moved there since
    the row was read (`tailorset migrate-storage` runs beside the service; keys never repeat)."""
    try:
        return await services.store(storage).get(key)
    except FileNotFoundError:
        for name, other in services.stores.items():
            if name != storage:
                with contextlib.suppress(FileNotFoundError):
                    return await other.get(key)
        raise


async def delete_unreferenced(services: Services, keys: Sequence[str]) -> None:
    """Best effort, after the rows are gone: a failure leaves an orphan file (which fsck finds),
    never a row whose file is missing. From every backend: a key is unique to one file, and a copy
    may be left in the old backend by an interrupted move."""
    for key in keys:
        for store in services.stores.values():
            try:
                await store.delete(key)
            except Exception:
                log.exception("Could not delete file %s; it is now an orphan.", key)
