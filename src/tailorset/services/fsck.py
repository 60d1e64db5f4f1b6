"""`tailorset fsck`: do the database and the file store agree, and if not, make them.

Drift can only come from a crash or from someone touching the store: an upload writes its files
before its row commits (killed in between: files without a row), and a delete removes files after
its row commits (killed in between: the same). A live row whose file is missing means the store
lost it. The repairs:

* A file no live image uses is removed, once it is older than the grace period: a younger one may
  belong to an upload about to commit (its key says when it was made; see files.new_keys). So is a
  local write a crash cut off before its rename (LocalStorage.partials), by the time it was written.
* A live image whose thumbnail is missing gets it rebuilt from the original: nothing is lost.
* A live image whose original is missing is tombstoned, as if deleted: the API answers 410 for it
  and its caption history stays in the database, where nothing is destroyed that could still be
  read. Removing the row would erase the history; leaving it would keep handing out a URL that
  404s, a regenerate that fails, and a dataset that cannot be trained from.
* Tombstones older than TAILORSET_TOMBSTONE_RETENTION_DAYS are purged (the API already answers
  404 for them).

Each configured backend is checked against the rows that name it (migrate-storage moves rows
between backends); rows on a backend this process is not configured for are counted, never judged.
Only keys under images/ and thumbnails/ belong to image rows; anything else in a store is reported
and left alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import anyio

from tailorset import imaging
from tailorset.db import repository as repo
from tailorset.db.models import utcnow
from tailorset.services import Services
from tailorset.services.files import delete_unreferenced, made_at

IMAGE_PREFIXES = ("images/", "thumbnails/")


@dataclass(frozen=True)
class Missing:
    image_id: int
    dataset_id: int
    key: str  # the missing file: its original or its thumbnail
    original: str
    thumbnail: str
    storage: str  # the backend the row says holds it


@dataclass
class Report:
    files: int = 0
    live_images: int = 0
    missing_originals: list[Missing] = field(default_factory=list)
    missing_thumbnails: list[Missing] = field(default_factory=list)
    # (backend, key) pairs:
    orphans: list[tuple[str, str]] = field(default_factory=list)  # old enough to be a crash's leftovers
    in_flight: list[tuple[str, str]] = field(default_factory=list)  # unreferenced, but young: left alone
    foreign: list[tuple[str, str]] = field(default_factory=list)  # not an image file; never touched
    unchecked: int = 0  # live images on a backend this process is not configured for: never judged missing
    tombstoned: list[int] = field(default_factory=list)
    purged: dict[str, int] = field(default_factory=dict)

    @property
    def drift(self) -> bool:
        return bool(self.missing_originals or self.missing_thumbnails or self.orphans)


async def check(services: Services, repair: bool = False, grace: timedelta = timedelta(hours=1)) -> Report:
    """Every configured backend against the rows that name it (`tailorset migrate-storage` moves rows
    between them)."""
    report = Report()
    # The stores are listed before the database is read: a file written after the listing cannot be
    # taken for an orphan, and a row committed after the reading cannot be taken for missing.
    stored = {name: {key async for key in store.keys()} for name, store in services.stores.items()}  # noqa: SIM118
    async with services.db.read() as session:
        rows = await repo.live_image_files(session)
    report.files, report.live_images = sum(map(len, stored.values())), len(rows)
    referenced: dict[str, set[str]] = {name: set() for name in stored}

    for row in rows:
        if row.storage not in stored:
            report.unchecked += 1
            continue
        referenced[row.storage].update((row.file_key, row.thumbnail_key))
        for key, found in ((row.file_key, report.missing_originals), (row.thumbnail_key, report.missing_thumbnails)):
            # Asked again: the listing may predate an upload that has committed since.
            if key not in stored[row.storage] and not await services.store(row.storage).exists(key):
                found.append(Missing(row.id, row.dataset_id, key, row.file_key, row.thumbnail_key, row.storage))
    young = utcnow() - grace
    for name, store in services.stores.items():
        partials = getattr(store, "partials", None)  # LocalStorage: writes a crash cut off before their rename
        for key, written in await partials() if partials else ():
            (report.in_flight if written > young else report.orphans).append((name, key))
    for name, keys in stored.items():
        for key in sorted(keys):
            if not key.startswith(IMAGE_PREFIXES):
                report.foreign.append((name, key))
            elif key not in referenced[name]:
                made = made_at(key)
                (report.in_flight if made is not None and made > young else report.orphans).append((name, key))

    if repair:
        await _repair(services, report)
    return report


async def _repair(services: Services, report: Report) -> None:
    settings = services.settings
    for name, key in report.orphans:
        await services.store(name).delete(key)
    lost = {missing.key for missing in report.missing_originals}
    for missing in report.missing_thumbnails:
        if missing.original in lost:
            continue  # tombstoned below
        store = services.store(missing.storage)
        rgb = await anyio.to_thread.run_sync(imaging.open_rgb, await store.get(missing.original))
        thumbnail = await anyio.to_thread.run_sync(imaging.thumbnail, rgb, settings.thumbnail_size)
        await store.put(missing.key, thumbnail, "image/jpeg")
    now = utcnow()
    async with services.db.write() as session:
        for key in sorted(lost):
            report.tombstoned += await repo.tombstone_images_using(session, key, now)
        # Their thumbnails, now used by no live image, go the way of a deleted image's files.
        unused = await repo.unreferenced(session, [(m.original, m.thumbnail) for m in report.missing_originals])
        report.purged = await repo.purge_tombstones(session, now - settings.tombstone_retention)
    await delete_unreferenced(services, unused)
