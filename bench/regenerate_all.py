"""Regenerate All Captions on a 200-image dataset, with the worker killed (SIGKILL) in the middle.

Starts a real `tailorset serve` (embedded worker off) on SQLite in a temporary directory, uploads
200 photos, writes 10 manual captions, changes the prefix, asks for Regenerate All, runs
`tailorset worker`, kills it once a quarter is done, starts another, and checks the result through
the API: every automatic caption rewritten exactly once, every manual caption untouched.
Last line: the figures. Run from the repo root: `python bench/regenerate_all.py`.
"""

from __future__ import annotations

import argparse
import base64
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "motorcycle_left.png", "rocket.jpg", "camera.png")
TAILORSET = [sys.executable, "-m", "tailorset"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--manual", type=int, default=10)
    args = parser.parse_args()

    import skimage

    data = Path(skimage.__file__).parent / "data"
    encoded = [base64.b64encode((data / name).read_bytes()).decode() for name in PHOTOS]

    with tempfile.TemporaryDirectory() as home, socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        env = {
            **os.environ,
            "TAILORSET_DATA_DIR": home,
            "TAILORSET_EMBEDDED_WORKER": "false",
            "TAILORSET_JOB_LEASE_SECONDS": "3",
            "TAILORSET_RATE_LIMIT_DEFAULT": "100000/minute",
        }
        env.pop("TAILORSET_DATABASE_URL", None)
        created = subprocess.run([*TAILORSET, "token", "create", "--org", "bench"], env=env, capture_output=True)
        token = created.stdout.decode().strip().splitlines()[-1]
        server = subprocess.Popen([*TAILORSET, "serve", "--port", str(port), "--log-level", "warning"], env=env)
        workers: list[subprocess.Popen] = []
        try:
            http = httpx.Client(
                base_url=f"http://127.0.0.1:{port}/tailored-gen", headers={"api_token": token}, timeout=120
            )
            for _ in range(200):
                try:
                    http.get("/projects")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            project = http.post("/projects", json={"project_name": "b", "ip_medium": "photography", "ip_type": "other"})
            dataset_id = http.post("/datasets", json={"project_id": project.json()["id"], "name": "b"}).json()["id"]
            dataset_url = f"/datasets/{dataset_id}"
            http.put(dataset_url, json={"caption_prefix": "A photo of"})

            started = time.perf_counter()
            ids = []
            for n in range(args.images):
                response = http.post(f"{dataset_url}/images", json={"file": encoded[n % len(encoded)]})
                assert response.status_code == 201, response.text
                ids.append(response.json()["id"])
            upload_s = time.perf_counter() - started
            print(f"uploaded and captioned {args.images} images in {upload_s:.1f} s")

            manual = {
                image_id: f"written by a person, number {n}"
                for n, image_id in enumerate(ids[:: len(ids) // args.manual])
            }
            for image_id, text in manual.items():
                http.put(f"{dataset_url}/images/{image_id}", json={"caption": text})
            http.put(dataset_url, json={"caption_prefix": "sks style"})
            total = http.put(f"{dataset_url}/images").json()["captions_update"]["total"]

            started = time.perf_counter()
            workers.append(
                subprocess.Popen([*TAILORSET, "worker", "--poll-seconds", "0.2", "--log-level", "warning"], env=env)
            )
            while (done := http.get(dataset_url).json()["captions_update"]["done"]) < total // 4:
                time.sleep(0.05)
            workers[-1].send_signal(signal.SIGKILL)
            workers[-1].wait()
            print(f"killed the worker with SIGKILL at {done}/{total} images")
            workers.append(
                subprocess.Popen([*TAILORSET, "worker", "--poll-seconds", "0.2", "--log-level", "warning"], env=env)
            )
            while http.get(dataset_url).json()["captions_update_status"] != "completed":
                time.sleep(0.2)
            regenerate_s = time.perf_counter() - started
            progress = http.get(dataset_url).json()["captions_update"]
            print(f"regenerated: {progress}")

            twice = untouched_manual = automatic_ok = 0
            for image in http.get(f"{dataset_url}/images").json():
                history = http.get(f"{dataset_url}/images/{image['id']}/captions").json()
                from_jobs = sum(r["job_id"] is not None for r in history)
                if image["id"] in manual:
                    untouched_manual += image["caption"] == manual[image["id"]] and from_jobs == 0
                else:
                    twice += from_jobs > 1
                    automatic_ok += from_jobs == 1 and image["caption"].startswith("sks style, ")
        finally:
            for process in [*workers, server]:
                process.terminate()
                process.wait()
    assert progress["status"] == "completed" and progress["done"] == total, progress
    assert twice == 0 and untouched_manual == len(manual) and automatic_ok == total
    print(
        f"{total} captions regenerated in {regenerate_s:.1f} s across a SIGKILL ({total / regenerate_s:.1f}/s incl. "
        f"the {3} s lease wait); captioned twice: {twice}; manual captions untouched: {untouched_manual}/{len(manual)}"
    )


if __name__ == "__main__":
    main()
