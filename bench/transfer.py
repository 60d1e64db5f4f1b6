"""Import and export: a bulk upload's images per second next to single uploads', and what an export of
a large dataset costs the server in memory (it streams from storage, so it should cost next to nothing).

1. The same 60 distinct photos, once one by one through POST …/images and once as one ZIP through
   POST …/images/bulk-upload (each is captioned either way): images per second.
2. 150 large photos (~2 MB each, with .txt captions, so the captioner does not run) imported, then
   exported as kohya: MB/s, and the server's resident memory during the export above what it used before.
One API process on SQLite with its embedded worker. Last line: the figures.
Run from the repo root: `python bench/transfer.py [--images 60] [--large 150]`.
"""

from __future__ import annotations

import argparse
import io
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
from harness import PHOTOS, photo, server
from PIL import Image, ImageOps


def distinct_photos(count: int) -> list[bytes]:
    """Real photos made distinct (mirrored, cropped, re-encoded): a bulk upload skips identical files."""
    out = []
    for n in range(count):
        image = Image.open(io.BytesIO(photo(PHOTOS[n % len(PHOTOS)]))).convert("RGB")
        if (n // len(PHOTOS)) % 2:
            image = ImageOps.mirror(image)
        w, h = image.size
        shave = n // (2 * len(PHOTOS))
        image = image.crop((shave, shave, w - shave, h - shave))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def large_photo(n: int) -> bytes:
    """A 2400×1600 JPEG (~2 MB, as a camera's): a real photo with grain, different for each n."""
    base = Image.open(io.BytesIO(photo(PHOTOS[n % len(PHOTOS)]))).convert("RGB").resize((2400, 1600))
    grain = np.random.default_rng(n).integers(0, 24, (1600, 2400, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(base, dtype=np.uint8) // 10 * 9 + grain).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def bulk_import(api, dataset_id: int, data: bytes) -> float:
    started = time.perf_counter()
    files = {"file": ("photos.zip", data, "application/zip")}
    api.http.post(f"/datasets/{dataset_id}/images/bulk-upload", files=files).raise_for_status()
    while (status := api.http.get(f"/datasets/{dataset_id}/images/bulk-upload/status").json())["status"] in (
        "pending",
        "processing",
    ):
        time.sleep(0.2)
    assert status["status"] == "completed" and not status["failed"], status
    return time.perf_counter() - started


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--large", type=int, default=150)
    args = parser.parse_args()
    photos = distinct_photos(args.images)

    with server("sqlite", embedded_worker="true", max_images_per_dataset="1000") as api:
        warm = api.dataset("warm-up")  # loads the captioner
        api.http.post(f"/datasets/{warm}/images", files={"file": ("w.png", photo(), "image/png")}).raise_for_status()

        single = api.dataset("single")
        started = time.perf_counter()
        for n, data in enumerate(photos):
            files = {"file": (f"{n:03d}.jpg", data, "image/jpeg")}
            api.http.post(f"/datasets/{single}/images", files=files).raise_for_status()
        single_rate = len(photos) / (time.perf_counter() - started)

        bulk = api.dataset("bulk")
        bulk_rate = len(photos) / bulk_import(api, bulk, zip_of({f"{n:03d}.jpg": d for n, d in enumerate(photos)}))
        print(f"captioned: single uploads {single_rate:.2f} images/s, bulk upload {bulk_rate:.2f} images/s")

        large = api.dataset("large")
        files = {}
        for n in range(args.large):
            files[f"{n:03d}.jpg"] = large_photo(n)
            files[f"{n:03d}.txt"] = f"sks style, photo {n}".encode()
        archive = zip_of(files)
        manual_rate = args.large / bulk_import(api, large, archive)
        print(f"with .txt captions: bulk upload {manual_rate:.2f} images/s ({len(archive) / 1e6:.0f} MB ZIP)")

        pid, peak, done = api.process.pid, [0.0], threading.Event()
        before = rss_mb(pid)

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], rss_mb(pid))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        started, size = time.perf_counter(), 0
        with api.http.stream("GET", f"/datasets/{large}/export", params={"format": "kohya"}) as response:
            for chunk in response.iter_bytes():
                size += len(chunk)
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
    print(
        f"import {bulk_rate:.2f} images/s as a ZIP vs {single_rate:.2f} one by one (captioned), "
        f"{manual_rate:.2f} images/s with .txt captions; export {size / 1e6:.0f} MB at {size / 1e6 / elapsed:.0f} MB/s "
        f"with the server's memory {peak[0] - before:+.0f} MB over its {before:.0f} MB"
    )


if __name__ == "__main__":
    main()
