"""A large object (a bulk upload's ZIP) kept in any Storage as numbered parts.

The Storage interface takes whole objects; parts keep memory bounded on every backend, and
`PartsReader` gives the parts back as one seekable file, fetching a part only when a read needs it,
so a ZIP's central directory and its entries are read without ever holding the whole archive."""

from __future__ import annotations

import io
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from tailorset.storage.base import Storage

PART_BYTES = 8 * 1024 * 1024
CONTENT_TYPE = "application/octet-stream"


def part_key(prefix: str, number: int) -> str:
    return f"{prefix}/{number:06d}"


class PartsWriter:
    """Collects bytes and stores each full part as it fills; `close` stores the rest."""

    def __init__(self, storage: Storage, prefix: str, part_bytes: int = PART_BYTES):
        self.storage, self.prefix, self.part_bytes = storage, prefix, part_bytes
        self.size = 0
        self._parts = 0
        self._buffer = bytearray()

    async def write(self, data: bytes) -> None:
        self._buffer += data
        self.size += len(data)
        while len(self._buffer) >= self.part_bytes:
            await self._store(bytes(self._buffer[: self.part_bytes]))
            del self._buffer[: self.part_bytes]

    async def close(self) -> int:
        """Store what is left; returns the object's size."""
        if self._buffer or not self._parts:
            await self._store(bytes(self._buffer))
            self._buffer.clear()
        return self.size

    async def _store(self, data: bytes) -> None:
        await self.storage.put(part_key(self.prefix, self._parts), data, CONTENT_TYPE)
        self._parts += 1


async def delete_parts(storage: Storage, prefix: str) -> None:
    """Remove every part, however far an interrupted writer got."""
    number = 0
    while await storage.exists(part_key(prefix, number)):
        await storage.delete(part_key(prefix, number))
        number += 1


class PartsReader(io.RawIOBase):
    """The parts as one read-only, seekable file, for code that wants a file (zipfile).

    It runs in a worker thread; `get` fetches one part (e.g. the storage's `get`, called back on the
    event loop). The last few parts read are kept, so reading entries in order fetches each part once."""

    def __init__(self, get: Callable[[str], bytes], prefix: str, size: int, part_bytes: int = PART_BYTES, keep=3):
        self._get, self._prefix, self._size, self._part_bytes, self._keep = get, prefix, size, part_bytes, keep
        self._position = 0
        self._cache: OrderedDict[int, bytes] = OrderedDict()

    @classmethod
    def from_thread(cls, storage: Storage, prefix: str, size: int, **kwargs) -> PartsReader:
        """A reader for use in a thread started by anyio.to_thread, fetching parts on the event loop."""
        from anyio import from_thread

        fetch: Callable[[str], Awaitable[bytes]] = storage.get
        return cls(lambda key: from_thread.run(fetch, key), prefix, size, **kwargs)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer) -> int:
        wanted = min(len(buffer), self._size - self._position)
        written = 0
        while written < wanted:
            number, offset = divmod(self._position, self._part_bytes)
            chunk = self._part(number)[offset : offset + wanted - written]
            if not chunk:
                raise OSError(f"Part {number} of {self._prefix} is shorter than expected.")
            buffer[written : written + len(chunk)] = chunk
            written += len(chunk)
            self._position += len(chunk)
        return written

    def _part(self, number: int) -> bytes:
        if number in self._cache:
            self._cache.move_to_end(number)
        else:
            self._cache[number] = self._get(part_key(self._prefix, number))
            while len(self._cache) > self._keep:
                self._cache.popitem(last=False)
        return self._cache[number]
