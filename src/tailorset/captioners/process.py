"""The local captioner in a child process of its own (TAILORSET_CAPTIONER_PROCESS, on by default).

Its models, ONNX Runtime and OpenCV come to ~200 MB and do their CPU work partly under the GIL. Run in the
server they would share its memory and its GIL with the event loop; a crash in native code on a hostile image
would take the API down with it. So the server starts one child per process and captioner (a fresh interpreter, so no
thread or lock of the server's is copied into it) and talks to it over pipes, one per caption that may run at
once (`CAPTIONS_AT_ONCE`, the same number the server lets run): the child answers each pipe in a thread of its
own, so captions run side by side as they did in the server, on one copy of the models.

- An image crosses as its RGB pixels, in bands of at most BAND_BYTES, so the server never holds a second
  copy of a large picture; the child assembles them in one buffer.
- What the child logs while answering comes back with the answer and is logged here, in the server's format.
- If the child dies (a crash, an OOM kill), the captions it was working on fail with a CaptionerError and the
  next caption starts a new one. If the server dies, the child sees its pipes close and exits.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from PIL import Image

from tailorset.captioners import pixels
from tailorset.captioners.base import Caption, CaptionContext, CaptionerError

log = logging.getLogger(__name__)

CAPTIONS_AT_ONCE = max(1, (os.cpu_count() or 1) // 2)  # each caption runs its models on two threads
BAND_BYTES = 4 * 1024 * 1024
STOP_SECONDS = 5.0


class ProcessCaptioner:
    """The local captioner's interface (caption, load, the suggestion helpers), answered by a child process."""

    name = "local"

    def __init__(self, options: dict[str, Any], slots: int = CAPTIONS_AT_ONCE, idle_seconds: float = 0) -> None:
        self.options = options  # LocalCaptioner's arguments (picklable), plus its scene weights' path
        self.slots = slots
        self.idle_seconds = idle_seconds  # > 0: the child is stopped after this long without a call
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._busy = 0  # calls under way (the idle watch never stops a child they use)
        self._last_used = time.monotonic()
        self._watching = False

    # -- the Captioner interface -------------------------------------------------------------------
    def caption(self, image: Image.Image, context: CaptionContext) -> Caption:
        return self._call("caption", [image], context)

    def load(self) -> None:
        self._call("load", [])

    def suggest_prefix(self, images: Sequence[Image.Image]) -> str:
        return self._call("suggest_prefix", list(images))

    def suggest_visual_schema(self, images: Sequence[Image.Image]) -> str:
        return self._call("suggest_visual_schema", list(images))

    def close(self) -> None:
        """Stop the child (a later call starts another)."""
        with self._lock:
            child, self._child = self._child, None
        if child is not None:
            child.stop()

    @property
    def pid(self) -> int | None:
        """The child's process id, while it runs."""
        child = self._child
        return child.process.pid if child is not None and child.alive() else None

    # -- the conversation --------------------------------------------------------------------------
    def _call(self, method: str, images: list[Image.Image], *args: Any) -> Any:
        images = [pixels.to_rgb(image) for image in images]  # what crosses: upright RGB (the server's already is)
        with self._lock:
            self._busy += 1
        try:
            return self._exchange(method, images, args)
        finally:
            with self._lock:
                self._busy -= 1
                self._last_used = time.monotonic()

    def _exchange(self, method: str, images: list[Image.Image], args: tuple) -> Any:
        while True:  # a free pipe of a running child (several servers' calls may share one child)
            child = self._running()
            with contextlib.suppress(queue.Empty):
                conn = child.free.get(timeout=1.0)
                break
        try:
            conn.send((method, [image.size for image in images], args))
            for image in images:
                _send_pixels(conn, image)
            status, value, records = conn.recv()
        except BaseException as exc:  # the pipe may be cut mid-message: this child is done with
            with self._lock:
                self._lost(child)
            if isinstance(exc, EOFError | OSError):
                stopped = f"The captioner's process stopped ({child.exit_status()}) while it worked."
                raise CaptionerError(stopped) from exc
            raise
        child.free.put(conn)
        for record in records:
            logger = logging.getLogger(record.name)
            if logger.isEnabledFor(record.levelno):
                logger.handle(record)
        if status == "ok":
            return value
        if status == "captioner_error":
            raise CaptionerError(value)
        raise RuntimeError(f"The captioner's process failed: {value}")

    def _running(self) -> _Child:
        with self._lock:
            if self._child is not None and not self._child.alive():
                self._lost(self._child)
            if self._child is None:
                self._child = _Child.start(self.options, self.slots)
                if self.idle_seconds > 0 and not self._watching:
                    self._watching = True
                    threading.Thread(target=self._stop_when_idle, name="captioner-idle", daemon=True).start()
            return self._child

    def _stop_when_idle(self) -> None:
        """Give the child's memory back after idle_seconds without a call; the next call starts another."""
        while True:
            time.sleep(min(self.idle_seconds / 4, 5.0))
            with self._lock:
                idle = self._child is not None and not self._busy
                if not idle or time.monotonic() - self._last_used < self.idle_seconds:
                    continue
                child, self._child = self._child, None
            child.stop()
            log.info("The captioner's process stopped after %g s without a caption; the next one starts it.",
                     self.idle_seconds)  # fmt: skip

    def _lost(self, child: _Child) -> None:  # under self._lock
        if self._child is not child:
            return  # another call found it first
        self._child = None
        child.stop()
        log.error("The captioner's process stopped (%s); the next caption starts another.", child.exit_status())


class _Child:
    def __init__(self, process: subprocess.Popen, ends: list[Connection]) -> None:
        self.process = process
        self.ends = ends
        self.free: queue.SimpleQueue[Connection] = queue.SimpleQueue()  # the pipes no call is using
        for end in ends:
            self.free.put(end)

    @classmethod
    def start(cls, options: dict[str, Any], slots: int) -> _Child:
        """`python -m tailorset.captioners.process`, handed one end of each socket pair (not multiprocessing's
        spawn, which would run the server's __main__ again in the child)."""
        pairs = [socket.socketpair() for _ in range(slots)]
        theirs = [child_end.fileno() for _, child_end in pairs]
        try:
            command = [sys.executable, "-m", __name__, json.dumps(options), *map(str, theirs)]
            process = subprocess.Popen(command, pass_fds=theirs, stdin=subprocess.DEVNULL)
        except OSError as exc:
            for ours, child_end in pairs:
                ours.close()
                child_end.close()
            raise CaptionerError(f"could not start the captioner's process: {exc}") from exc
        ends = []
        for ours, child_end in pairs:
            child_end.close()  # only the child holds these now, so its death reads as EOF here
            ends.append(Connection(ours.detach()))
        return cls(process, ends)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        for end in self.ends:
            end.close()  # the child sees EOF and exits
        try:
            self.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_SECONDS)

    def exit_status(self) -> str:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(STOP_SECONDS)
        code = self.process.returncode
        if code is None:
            return "still running"
        return f"killed by signal {-code}" if code < 0 else f"exit status {code}"


def _send_pixels(conn: Connection, image: Image.Image) -> None:
    width, height = image.size
    rows = max(1, BAND_BYTES // (3 * width))
    for top in range(0, height, rows):
        band = image if rows >= height else image.crop((0, top, width, min(height, top + rows)))
        conn.send_bytes(band.tobytes())


def _receive_pixels(conn: Connection, size: tuple[int, int]) -> Image.Image:
    width, height = size
    buffer = bytearray(3 * width * height)
    view, filled = memoryview(buffer), 0
    while filled < len(buffer):
        filled += conn.recv_bytes_into(view[filled:])
    return Image.frombuffer("RGB", (width, height), buffer, "raw", "RGB", 0, 1)


# -- the child -------------------------------------------------------------------------------------
def _serve(options: dict[str, Any], conns: list[Connection]) -> None:
    """The child's main: the captioner, and a thread per pipe. It exits as soon as any pipe closes (the server
    stopped it, or died)."""
    from tailorset.captioners.local import LocalCaptioner

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the whole process group: the server stops us
    with contextlib.suppress(OSError):  # short of memory, the kernel kills this process before the server (Linux)
        Path("/proc/self/oom_score_adj").write_text("500")
    options = dict(options)
    scene_weights = options.pop("scene_weights", None)
    if scene_weights:
        from tailorset.captioners import weights

        os.environ[weights.PLACES365.env] = scene_weights
    captioner = LocalCaptioner(**options)
    collector = _Collector()
    root = logging.getLogger()
    root.handlers[:] = [collector]
    root.setLevel(logging.INFO)
    closed = threading.Event()
    for conn in conns:
        threading.Thread(target=_answer, args=(captioner, conn, collector, closed), daemon=True).start()
    closed.wait()
    os._exit(0)  # the other threads may be in a model run; nothing of theirs needs saving


def _answer(captioner, conn: Connection, collector: _Collector, closed: threading.Event) -> None:
    try:
        while True:
            method, sizes, args = conn.recv()
            images = [_receive_pixels(conn, size) for size in sizes]
            collector.begin()
            try:
                if method == "load":
                    value = captioner.load()
                elif method == "caption":
                    value = captioner.caption(images[0], *args)
                else:
                    value = getattr(captioner, method)(images)
                reply = ("ok", value)
            except CaptionerError as exc:
                reply = ("captioner_error", str(exc))
            except Exception as exc:  # a bug or a model's failure: the server answers 500 with it
                logging.getLogger(__name__).exception("captioning failed")
                reply = ("error", f"{type(exc).__name__}: {exc}")
            conn.send((*reply, collector.end()))
    except (EOFError, OSError):
        pass
    finally:
        closed.set()


class _Collector(logging.Handler):
    """Keeps what a request logs, to send back with its answer (one request at a time per thread)."""

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()

    def begin(self) -> None:
        self._local.records = []

    def end(self) -> list[logging.LogRecord]:
        records, self._local.records = getattr(self._local, "records", []), []
        return records

    def emit(self, record: logging.LogRecord) -> None:
        records = getattr(self._local, "records", None)
        if records is None:
            return
        # As QueueHandler.prepare does: the message formatted here, so the record pickles.
        record.msg = record.getMessage()
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.args, record.exc_info = None, None
        records.append(record)


def local_options(cache_dir: Path) -> dict[str, Any]:
    """The child's LocalCaptioner arguments, with the scene weights this process would use."""
    from tailorset.captioners import weights

    return {"cache_dir": str(cache_dir), "scene_weights": str(weights.path(weights.PLACES365))}


_shared: dict[tuple, ProcessCaptioner] = {}
_shared_lock = threading.Lock()


def shared(cache_dir: Path, idle_seconds: float = 0) -> ProcessCaptioner:
    """One child per captioner configuration and server process, as models are loaded once per process."""
    options = local_options(Path(cache_dir).resolve())
    key = (*sorted(options.items()), idle_seconds)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = ProcessCaptioner(options, idle_seconds=idle_seconds)
        return _shared[key]


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]), [Connection(int(fd)) for fd in sys.argv[2:]])
