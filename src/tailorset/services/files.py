"""Files that follow database rows: written before the row commits, removed after it is gone."""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from tailorset import imaging
from tailorset.services import Services

log = logging.getLogger(__name__)


def new_name() -> str:
    """A fresh file name: a UUIDv7, which carries the time it was made, so fsck can tell a file an upload is
    about to commit a row for (young) from one a crash left behind (old), on any storage backend."""
    ms = time.time_ns() // 1_000_000
    value = (ms & (2**48 - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 4122 variant
    return uuid.UUID(int=value).hex


def new_keys(extension: str, name: str | None = None) -> tuple[str, str]:
    """(original, thumbnail) keys for `name` (default: a new one), fanned out over 256 directories by the
    name's random last digits."""
    name = name or new_name()
    return f"images/{name[-2:]}/{name}.{extension}", f"thumbnails/{name[-2:]}/{name}.jpg"


def made_at(key: str) -> datetime | None:
    """When new_name made `key`'s name; None for a name it did not make (older versions used UUIDv4)."""
    try:
        name = uuid.UUID(hex=key.rsplit("/", 1)[-1].split(".", 1)[0])
    except ValueError:
        return None
    return datetime.fromtimestamp((name.int >> 80) / 1000, UTC) if name.version == 7 else None


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
