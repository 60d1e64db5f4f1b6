"""Regenerate All Captions on a 200-image dataset, with the worker killed (SIGKILL) in the middle.

Starts a real `tailorset serve` (embedded worker off) on SQLite, uploads 200 photos, writes 10
manual captions, changes the prefix, asks for Regenerate All, runs `tailorset worker`, kills it once
a quarter is done, starts another, and checks the result through the API: every automatic caption
rewritten exactly once, every manual caption untouched. Last line: the figures.
Run from the repo root: `python bench/regenerate_all.py`.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import time

from harness import PHOTOS, TAILORSET, photo_b64, server

LEASE_SECONDS = 3


def start_worker(env: dict) -> subprocess.Popen:
    return subprocess.Popen([*TAILORSET, "worker", "--poll-seconds", "0.2", "--log-level", "warning"], env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--manual", type=int, default=10)
    args = parser.parse_args()

    with server("sqlite", job_lease_seconds=str(LEASE_SECONDS)) as api:
        http, workers = api.http, []
        dataset = f"/datasets/{api.dataset()}"
        http.put(dataset, json={"caption_prefix": "A photo of"})
        started = time.perf_counter()
        ids = []
        for n in range(args.images):
            response = http.post(f"{dataset}/images", json={"file": photo_b64(PHOTOS[n % len(PHOTOS)])})
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        print(f"uploaded and captioned {args.images} images in {time.perf_counter() - started:.1f} s")

        manual = {
            image_id: f"written by a person, number {n}" for n, image_id in enumerate(ids[:: len(ids) // args.manual])
        }
        for image_id, text in manual.items():
            http.put(f"{dataset}/images/{image_id}", json={"caption": text})
        http.put(dataset, json={"caption_prefix": "sks style"})
        total = http.put(f"{dataset}/images").json()["captions_update"]["total"]

        started = time.perf_counter()
        try:
            workers.append(start_worker(api.env))
            while (done := http.get(dataset).json()["captions_update"]["done"]) < total // 4:
                time.sleep(0.05)
            workers[-1].send_signal(signal.SIGKILL)
            workers[-1].wait()
            print(f"killed the worker with SIGKILL at {done}/{total} images")
            workers.append(start_worker(api.env))
            while http.get(dataset).json()["captions_update_status"] != "completed":
                time.sleep(0.2)
        finally:
            for worker in workers:
                worker.terminate()
                worker.wait()
        elapsed = time.perf_counter() - started
        progress = http.get(dataset).json()["captions_update"]
        print(f"regenerated: {progress}")

        twice = untouched_manual = automatic_ok = 0
        for image in http.get(f"{dataset}/images").json():
            history = http.get(f"{dataset}/images/{image['id']}/captions").json()
            from_jobs = sum(r["job_id"] is not None for r in history)
            if image["id"] in manual:
                untouched_manual += image["caption"] == manual[image["id"]] and from_jobs == 0
            else:
                twice += from_jobs > 1
                automatic_ok += from_jobs == 1 and image["caption"].startswith("sks style, ")
    assert progress["status"] == "completed" and progress["done"] == total, progress
    assert twice == 0 and untouched_manual == len(manual) and automatic_ok == total
    print(
        f"{total} captions regenerated in {elapsed:.1f} s across a SIGKILL ({total / elapsed:.1f}/s incl. the "
        f"{LEASE_SECONDS} s lease wait); captioned twice: {twice}; "
        f"manual captions untouched: {untouched_manual}/{len(manual)}"
    )


if __name__ == "__main__":
    main()
