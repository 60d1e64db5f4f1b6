"""Files that follow database rows: written before the row commits, removed after it is gone."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from tailorset import imaging
from tailorset.services import Services

log = logging.getLogger(__name__)


def new_keys(extension: str) -> tuple[str, str]:
    """Fresh (original, thumbnail) keys, fanned out over 256 directories by their random last digits.

    The name is a UUIDv7: it carries the time it was made, so fsck can tell a file an upload is
    about to commit a row for (young) from one a crash left behind (old), on any storage backend."""
    ms = time.time_ns() // 1_000_000
    value = (ms & (2**48 - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 4122 variant
    name = uuid.UUID(int=value).hex
    return f"images/{name[-2:]}/{name}.{extension}", f"thumbnails/{name[-2:]}/{name}.jpg"


def made_at(key: str) -> datetime | None:
    """When new_keys made `key`; None for a key it did not make (older versions used UUIDv4)."""
    try:
        name = uuid.UUID(hex=key.rsplit("/", 1)[-1].split(".", 1)[0])
    except ValueError:
        return None
    return datetime.fromtimestamp((name.int >> 80) / 1000, UTC) if name.version == 7 else None


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


async def delete_unreferenced(services: Services, keys: Sequence[str]) -> None:
    """Best effort, after the rows are gone: a failure leaves an orphan file (which fsck finds),
    never a row whose file is missing."""
    for key in keys:
        try:
            await services.storage.delete(key)
        except Exception:
            log.exception("Could not delete file %s; it is now an orphan.", key)
