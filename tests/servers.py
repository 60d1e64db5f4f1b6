"""Real `tailorset serve` processes for tests that need a server socket, several processes, or a kill -9."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
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
