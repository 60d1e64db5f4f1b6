"""The worker's wake-up signal: whatever queues a job in this process tells this process's worker at once,
instead of letting it sleep out its poll interval. Workers in other processes still poll the database."""

from __future__ import annotations

import anyio


class Wakeup:
    """One event for all of a worker's idle slots, replaced once it has fired."""

    def __init__(self) -> None:
        self._event: anyio.Event | None = None

    def notify(self) -> None:
        """A job is waiting: wake the idle worker, if this process runs one."""
        if self._event is not None:
            self._event.set()

    async def wait(self, timeout: float) -> None:
        """Until `notify` or `timeout` seconds, whichever comes first."""
        if self._event is None or self._event.is_set():
            self._event = anyio.Event()
        event = self._event
        with anyio.move_on_after(timeout):
            await event.wait()
