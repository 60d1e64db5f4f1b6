"""One organization's long job against another's small one: how long the small one waits.

Starts a real `tailorset serve` with its embedded worker. Organization A bulk-uploads a ZIP of
10,000 junk entries (each refused, 415: a long job of cheap batches); once it is under way,
organization B asks to regenerate the captions of its 2-image dataset. Prints how long B's
Regenerate All took from request to completed while A's job ran, and how long A's job took.
Run from the repo root: `python bench/fairness.py [--database postgresql]`.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import time
import zipfile

import httpx
from harness import TAILORSET, photo_b64, server


def junk_zip(entries: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for n in range(entries):
            archive.writestr(f"junk/{n:05d}.png", f"not a picture {n}")
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()

    with server(args.database, embedded_worker="true", max_zip_entries=str(args.entries + 10)) as api:
        created = subprocess.run(
            [*TAILORSET, "token", "create", "--org", "other"], env=api.env, capture_output=True, check=True, text=True
        )
        b = httpx.Client(
            base_url=api.base + "/tailored-gen", headers={"api_token": created.stdout.splitlines()[-1]}, timeout=120
        )
        project = b.post("/projects", json={"project_name": "b", "ip_medium": "photography", "ip_type": "other"})
        small = f"/datasets/{b.post('/datasets', json={'project_id': project.json()['id'], 'name': 'b'}).json()['id']}"
        for name in ("chelsea.png", "coffee.png"):
            assert b.post(f"{small}/images", json={"file": photo_b64(name)}).status_code == 201

        large = f"/datasets/{api.dataset()}"
        archive = junk_zip(args.entries)
        started = time.perf_counter()
        response = api.http.post(f"{large}/images/bulk-upload", files={"file": ("junk.zip", archive)})
        assert response.status_code == 202, response.text
        while api.http.get(f"{large}/images/bulk-upload/status").json()["total_processed"] < 100:
            time.sleep(0.05)

        asked = time.perf_counter()
        assert b.put(f"{small}/images").status_code == 202
        while b.get(small).json()["captions_update_status"] != "completed":
            time.sleep(0.05)
        waited = time.perf_counter() - asked
        at = api.http.get(f"{large}/images/bulk-upload/status").json()
        print(f"B's Regenerate All (2 images) finished {waited:.1f} s after it was asked, with A's job at "
              f"{at['total_processed']:,}/{at['total']:,} files")  # fmt: skip

        while (status := api.http.get(f"{large}/images/bulk-upload/status").json())["status"] == "processing" or (
            status["status"] == "pending"
        ):
            time.sleep(1)  # each answer lists every refused file so far: asking often would slow the job down
        total = time.perf_counter() - started
    assert status["status"] == "completed" and status["failed"] == args.entries, status
    print(
        f"{args.database}: B waited {waited:.1f} s; A's {len(archive) / 1000:,.0f} KB ZIP of {args.entries:,} junk "
        f"entries took {total:.1f} s ({args.entries / total:,.0f} files/s)"
    )


if __name__ == "__main__":
    main()
