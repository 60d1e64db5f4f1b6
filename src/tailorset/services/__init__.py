"""Use cases: each function is one API operation, with its transaction, around the domain rules."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

import anyio

from tailorset.captioners import Captioner
from tailorset.config import Settings
from tailorset.db.engine import Database
from tailorset.storage import Storage
from tailorset.urls import UrlSigner


@dataclass
class Services:
    """What every operation may use, built once per process by `create_app`."""

    settings: Settings
    db: Database
    storage: Storage
    signer: UrlSigner
    _captioner: Captioner | None = field(default=None, repr=False)
    _caption_limiter: anyio.CapacityLimiter | None = field(default=None, repr=False)
    _captioner_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def captioner(self) -> Captioner:
        """Loaded on first use: models take seconds to load and many processes never caption."""
        if self._captioner is None:
            from tailorset.captioners.registry import load_captioner

            with self._captioner_lock:
                if self._captioner is None:
                    self._captioner = load_captioner(self.settings)
        return self._captioner

    @property
    def caption_limiter(self) -> anyio.CapacityLimiter:
        """Captioning is CPU-bound: more threads than cores only adds latency."""
        if self._caption_limiter is None:
            self._caption_limiter = anyio.CapacityLimiter(os.cpu_count() or 1)
        return self._caption_limiter
