"""`tailorset migrate-storage`: move image files to another backend (local → s3, or back).

Each file (an original with its thumbnail) is copied, read back and checked against the sha256 its
rows recorded at upload, then every row sharing it switches backend in one transaction, and only
then is the old copy removed. The service may run meanwhile: until the switch commits readers use
the old copy, after it the new one, and an old /files/… URL redirects to the new backend. After a
crash, run it again: a file whose switch did not commit is copied again; one whose switch did is
done (at most the files in flight then leave a stray old copy, which no row points at)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import anyio

from tailorset.db import repository as repo
from tailorset.services import Services

BATCH = 100


@dataclass
class MigrationReport:
    moved: int = 0  # files, each an original with its thumbnail
    failures: list[str] = field(default_factory=list)  # one sentence per file left where it was


async def migrate_storage(
    services: Services,
    target: str,
    dataset_ids: Sequence[int] | None = None,
    concurrency: int = 8,
    progress: Callable[[MigrationReport], None] | None = None,
) -> MigrationReport:
    """Move the files of live images of `dataset_ids` (None: of every image) to the `target` backend."""
    destination = services.store(target)
    report, after = MigrationReport(), ""
    limiter = anyio.CapacityLimiter(concurrency)
    while True:
        async with services.db.read() as session:
            batch = await repo.files_elsewhere(session, target, dataset_ids, after, BATCH)
        if not batch:
            return report
        after = batch[-1].file_key  # a file that fails is reported and passed over, never retried forever

        async def move(file: repo.StoredFile) -> None:
            async with limiter:
                failure = await _move(services, file, target, destination)
            if failure:
                report.failures.append(failure)
            else:
                report.moved += 1

        async with anyio.create_task_group() as tasks:
            for file in batch:
                tasks.start_soon(move, file)
        if progress:
            progress(report)


async def _move(services: Services, file: repo.StoredFile, target: str, destination) -> str | None:
    """Copy, verify, switch, remove; a sentence saying why not, if the file stays where it was."""
    source = services.store(file.storage)
    keys = (file.file_key, file.thumbnail_key)
    try:
        original, thumbnail = await source.get(file.file_key), await source.get(file.thumbnail_key)
    except FileNotFoundError as exc:
        async with services.db.read() as session:
            if not await repo.file_in_use(session, file.file_key):
                return None  # deleted by the service since we looked: nothing to move
        return f"{exc.args[0]} is missing from the {file.storage} backend."
    if _sha256(original) != file.sha256:
        return f"{file.file_key} in the {file.storage} backend does not match its recorded sha256."

    await destination.put(file.file_key, original, file.content_type)
    await destination.put(file.thumbnail_key, thumbnail, "image/jpeg")
    copies = await destination.get(file.file_key), await destination.get(file.thumbnail_key)
    if (_sha256(copies[0]), copies[1]) != (file.sha256, thumbnail):
        await _remove(destination, keys)
        return f"The copy of {file.file_key} in the {target} backend came back different; it stays in {file.storage}."

    async with services.db.write() as session:
        moved = await repo.move_file(session, file.file_key, target)
    await _remove(source if moved else destination, keys)  # not moved: its last image was deleted meanwhile
    return None


async def _remove(store, keys: Sequence[str]) -> None:
    for key in keys:
        await store.delete(key)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
