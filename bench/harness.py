"""What the benchmarks share: a real `tailorset serve` on loopback with its own data directory."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the SeaweedFS launcher is the tests' own (tests/s3.py)

POSTGRES_URL = os.environ.get("TAILORSET_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
TAILORSET = [sys.executable, "-m", "tailorset"]
PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "motorcycle_left.png", "rocket.jpg", "camera.png")
# Every benchmark's server shares the model directory of `make serve`, as the processes of a deployment do:
# the ONNX classifier is built there once (the first start on a machine builds it, and peaks ~60 MB higher).
MODEL_DIR = ROOT / "tailorset-data" / "models"


def photo(name: str = "coffee.png") -> bytes:
    import skimage

    return (Path(skimage.__file__).parent / "data" / name).read_bytes()


def photo_b64(name: str = "coffee.png") -> str:
    return base64.b64encode(photo(name)).decode()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fresh_postgres_database(name: str = "tailorset_bench") -> str:
    """An empty database of the bench's own beside the configured one (dropped and made anew)."""
    from sqlalchemy import create_engine, make_url, text

    from tailorset.db.engine import sync_url

    engine = create_engine(sync_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            if process.poll() is not None:
                raise SystemExit(f"the server exited with {process.returncode}") from None
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up in {seconds} s")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def captioner_pid(pid: int) -> int | None:
    """The captioner's child process of the server `pid` (TAILORSET_CAPTIONER_PROCESS), while it runs."""
    tasks = Path(f"/proc/{pid}/task").iterdir()  # a child belongs to the thread that started it
    for child in [child for task in tasks for child in (task / "children").read_text().split()]:
        if b"tailorset.captioners.process" in Path(f"/proc/{child}/cmdline").read_bytes():
            return int(child)
    return None


def copy_images(api: Server, source_ids: list[int], copies: int) -> list[int]:
    """More images in the sources' dataset, as copies of their rows, taken in turn (uploading and captioning
    hundreds of photos would take minutes and measure something else). Returns the new ids, in order."""
    from sqlalchemy import create_engine, text

    from tailorset.db.engine import sync_url

    engine = create_engine(sync_url(api.env["TAILORSET_DATABASE_URL"]))
    columns = (
        "organization_id, dataset_id, image_name, caption, caption_source, file_key, thumbnail_key, storage, "
        "content_type, width, height, byte_size, sha256, created_at, updated_at"
    )
    copy = text(f"INSERT INTO images ({columns}) SELECT {columns} FROM images WHERE id = :i RETURNING id")
    with engine.begin() as connection:
        ids = [connection.execute(copy, {"i": source_ids[n % len(source_ids)]}).scalar_one() for n in range(copies)]
    engine.dispose()
    return ids


class Server:
    """A running `tailorset serve`: its base URL, process, environment and one organization's token."""

    def __init__(self, base: str, process: subprocess.Popen, env: dict, token: str):
        self.base, self.process, self.env, self.token = base, process, env, token
        self.http = httpx.Client(base_url=base + "/tailored-gen", headers={"api_token": token}, timeout=120)

    def dataset(self, name: str = "bench") -> int:
        body = {"project_name": name, "ip_medium": "photography", "ip_type": "other"}
        project = self.http.post("/projects", json=body)
        return self.http.post("/datasets", json={"project_id": project.json()["id"], "name": name}).json()["id"]


@contextmanager
def s3_storage():
    """A SeaweedFS S3 server of the benchmark's own on loopback: the TAILORSET_* settings that use it."""
    from tests.s3 import seaweedfs

    with tempfile.TemporaryDirectory(prefix="tailorset-bench-s3-") as home, seaweedfs(Path(home)) as s3:
        yield s3.env(prefix="bench/")


@contextmanager
def server(database: str = "sqlite", storage: str = "local", log_level: str = "warning", **settings: str):
    """Start one API process on `database` ("sqlite" or "postgresql") with its files in `storage`
    ("local" or "s3", a SeaweedFS started for it), rate limits out of the way. Below "warning", its log
    (the access log, from "info") goes to server.log in its data directory, as a deployment's would."""
    with tempfile.TemporaryDirectory(prefix="tailorset-bench-") as home, ExitStack() as stack:
        url = f"sqlite:///{home}/tailorset.db" if database == "sqlite" else fresh_postgres_database()
        env = {
            **os.environ,
            "TAILORSET_DATA_DIR": home,
            "TAILORSET_DATABASE_URL": url,
            "TAILORSET_RATE_LIMIT_DEFAULT": "10000000/minute",
            "TAILORSET_EMBEDDED_WORKER": "false",
            "TAILORSET_MODEL_DIR": str(MODEL_DIR),
            **(stack.enter_context(s3_storage()) if storage == "s3" else {}),
            **{f"TAILORSET_{k.upper()}": v for k, v in settings.items()},
        }
        created = subprocess.run(
            [*TAILORSET, "token", "create", "--org", "bench"], env=env, capture_output=True, check=True, text=True
        )
        port = free_port()
        log = stack.enter_context(open(Path(home, "server.log"), "ab")) if log_level != "warning" else None
        process = subprocess.Popen(
            [*TAILORSET, "serve", "--port", str(port), "--log-level", log_level], env=env, stderr=log, stdout=log
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(base + "/healthz", process)
            yield Server(base, process, env, created.stdout.splitlines()[-1])
        finally:
            process.terminate()
            process.wait()
