"""Use cases: each function is one API operation, with its transaction, around the domain rules."""

from __future__ import annotations

import functools
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio

from tailorset.auth import TokenLookup
from tailorset.captioners import Captioner
from tailorset.config import Settings
from tailorset.db import repository as repo
from tailorset.db.engine import Database, migrate
from tailorset.services.wakeup import Wakeup
from tailorset.storage import Storage, open_stores
from tailorset.urls import UrlSigner


@dataclass
class Services:
    """What every operation may use, built once per process by `Services.open`."""

    settings: Settings
    db: Database
    storage: Storage  # where new files go (TAILORSET_STORAGE)
    signer: UrlSigner
    # Every configured backend by name; each image row says which one holds its files.
    stores: dict[str, Storage] = field(default_factory=dict)
    _captioner: Captioner | None = field(default=None, repr=False)
    _captioner_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _caption_limiter: anyio.CapacityLimiter | None = field(default=None, repr=False)
    _work_limiter: anyio.CapacityLimiter | None = field(default=None, repr=False)
    wakeup: Wakeup = field(default_factory=Wakeup, repr=False)  # queued jobs wake this process's worker

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: Settings) -> AsyncIterator[Services]:
        """Migrate the database, connect, and close everything on the way out."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        await anyio.to_thread.run_sync(migrate, settings.resolved_database_url)
        db = Database(settings.resolved_database_url, settings.tombstone_retention)
        try:
            async with db.read() as session:
                signer = UrlSigner(await repo.url_signing_key(session))
            stores = await open_stores(settings)
            yield cls(settings, db, stores[settings.storage], signer, stores)
        finally:
            await db.dispose()

    def __post_init__(self) -> None:
        self.stores = self.stores or {self.settings.storage: self.storage}

    def store(self, name: str) -> Storage:
        """The backend image rows call `name`."""
        try:
            return self.stores[name]
        except KeyError:
            raise RuntimeError(
                f"The {name} storage backend is not configured here (s3: set TAILORSET_S3_BUCKET)."
            ) from None

    def file_url(self, storage: str, key: str, base_url: str) -> str:
        """A URL that fetches the file without an api_token: the backend's own (pre-signed), or the
        service's /files/… with a signature."""
        url_for = getattr(self.store(storage), "url_for", None)  # see storage.ServesUrls
        return url_for(key) if url_for else self.signer.url(base_url, key)

    @property
    def captioner(self) -> Captioner:
        """Loaded on first use: models take seconds to load and many processes never caption."""
        if self._captioner is None:
            from tailorset.captioners.registry import load_captioner

            with self._captioner_lock:
                if self._captioner is None:
                    self._captioner = load_captioner(self.settings)
        return self._captioner

    def prepare_captioner(self) -> None:
        """Load the captioner's models now rather than in the first request that needs them (a model
        directory, a remote endpoint's client, the local classifier's ONNX build on a new machine)."""
        captioner = self.captioner
        load = getattr(captioner, "load", None)
        if callable(load):
            load()

    @functools.cached_property
    def tokens(self) -> TokenLookup:
        return TokenLookup(self.db, self.settings.token_cache_seconds)

    @functools.cached_property
    def local_captioner(self) -> Captioner:
        """The offline captioner, whatever the configured backend (for the suggestion endpoints)."""
        if self.captioner.name == "local":
            return self.captioner
        from tailorset.captioners import registry

        return registry.local(self.settings)

    @property
    def caption_limiter(self) -> anyio.CapacityLimiter:
        """Captioning is CPU-bound and each caption already runs on two threads: on a small machine,
        captions side by side only add latency."""
        if self._caption_limiter is None:
            from tailorset.captioners.process import CAPTIONS_AT_ONCE

            self._caption_limiter = anyio.CapacityLimiter(CAPTIONS_AT_ONCE)
        return self._caption_limiter

    @property
    def work_limiter(self) -> anyio.CapacityLimiter:
        """A request's CPU work (decoding an image, a regex over a dataset, checking a large FIBO caption) runs
        in a worker thread, so the event loop keeps answering; this many at once, so memory stays bounded
        (a decoded image can take 200 MB) and one client's work cannot take every core."""
        if self._work_limiter is None:
            self._work_limiter = anyio.CapacityLimiter(2)
        return self._work_limiter

    async def run_work(self, function, *args, **kwargs):
        """`function(*args, **kwargs)` in a worker thread under the work limiter."""
        return await anyio.to_thread.run_sync(functools.partial(function, *args, **kwargs), limiter=self.work_limiter)
