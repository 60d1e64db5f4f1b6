"""The storage seam: a flat key → bytes store with immutable objects."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol


class Storage(Protocol):
    """Keys look like "images/ab/abcdef….png". Objects are written once and never modified."""

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store `data` under `key`, atomically: readers see all of it or nothing."""

    async def get(self, key: str) -> bytes:
        """The whole object. Raises FileNotFoundError when it is missing."""

    def stream(self, key: str) -> AsyncIterator[bytes]:
        """The object in chunks, for responses. Raises FileNotFoundError when it is missing."""

    async def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""

    async def exists(self, key: str) -> bool: ...

    def keys(self) -> AsyncIterator[str]:
        """Every stored key (for consistency checks)."""


class ServesUrls(Protocol):
    """Optional: a backend clients download from directly (S3). The API hands out its URLs; files of
    backends without one are served by the service itself at /files/…, with a signed URL."""

    def url_for(self, key: str) -> str:
        """A URL that fetches the object without other credentials, for a limited time."""
