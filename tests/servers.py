"""Real `tailorset serve` processes for tests that need a server socket, several processes, or a kill -9."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

TAILORSET = [sys.executable, "-m", "tailorset"]


def free_ports(count: int = 1) -> list[int]:
    with ExitStack() as held:  # held open together, so no two are the same
        sockets = [held.enter_context(socket.socket()) for _ in range(count)]
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in sockets]


def free_port() -> int:
    return free_ports()[0]


def wait_for(base: str, process: subprocess.Popen, seconds: float = 60, path: str = "/healthz") -> None:
    """Until the server at `base` answers 200 on `path` (failing early if its process died)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + path, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert process.poll() is None, f"the server at {base} exited with {process.returncode}"
        time.sleep(0.2)
    raise AssertionError(f"{base}{path} did not answer within {seconds} s")


class ServerProcess:
    """One `tailorset serve` on a free loopback port, with the given environment."""

    def __init__(self, env: dict[str, str] | None = None, log: Path | None = None, *args: str):
        self.env = dict(os.environ if env is None else env)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._log = open(log, "a") if log else subprocess.DEVNULL  # noqa: SIM115 — open for the server's life
        self.process = subprocess.Popen(
            [*TAILORSET, "serve", "--port", str(self.port), "--log-level", "warning", *args],
            env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for(self.base, self.process)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        if self._log is not subprocess.DEVNULL:
            self._log.close()

    def kill(self) -> None:
        """kill -9: no shutdown, no cleanup, whatever was in flight is cut off."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=20)


@contextmanager
def serve(env: dict[str, str] | None = None, log: Path | None = None, *args: str):
    server = ServerProcess(env, log, *args)
    try:
        yield server
    finally:
        server.stop()


def cli(env: dict[str, str] | None, *args: str) -> str:
    """Run a `tailorset` command as a user would; its stdout."""
    done = subprocess.run(
        [*TAILORSET, *args], env=dict(os.environ if env is None else env), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def new_token(env: dict[str, str] | None, org: str, *extra: str) -> str:
    return cli(env, "token", "create", "--org", org, *extra).strip().splitlines()[-1]


def start_worker() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tailorset", "worker", "--poll-seconds", "0.2", "--log-level", "warning"],
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def work_until(finished: Callable[[], bool], describe: Callable[[], object], timeout: float = 120) -> None:
    """Run a worker until `finished()`, then stop it as an operator would (SIGTERM); it must exit cleanly."""
    worker = start_worker()
    try:
        deadline = time.monotonic() + timeout
        while not finished():
            assert time.monotonic() < deadline and worker.poll() is None, describe()
            time.sleep(0.1)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        worker.kill()


def kill_worker_when(ready: Callable[[], bool], timeout: float = 60) -> None:
    """Run a worker until `ready()`, then kill it with SIGKILL: no shutdown, whatever was in flight cut off."""
    worker = start_worker()
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert time.monotonic() < deadline and worker.poll() is None, "the worker made no progress"
            time.sleep(0.01)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    finally:
        worker.kill()
