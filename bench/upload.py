"""Upload throughput: images per second through POST …/images, next to Pillow's own thumbnail time.

An upload checks the image, captions it, makes its thumbnail, stores both files and writes the row.
The floor is what Pillow alone needs to decode the same photo and write its thumbnail; the captioner's
own time is shown too, since captioning is most of an upload. One API process on SQLite, uploads one
at a time and two at a time, with the files on the local disk and in S3 (a SeaweedFS on loopback).
Last line: the figures. Run from the repo root: `python bench/upload.py [--images 60] [--storage local s3]`.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import time

from harness import PHOTOS, photo, photo_b64, server

from tailorset import imaging
from tailorset.captioners import CaptionContext
from tailorset.captioners.local import LocalCaptioner


def per_photo_ms(work, rounds: int = 5) -> float:
    timings = []
    for _ in range(rounds):
        for name in PHOTOS:
            data = photo(name)
            started = time.perf_counter()
            work(data)
            timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--storage", nargs="+", default=["local", "s3"], help="s3: a SeaweedFS on loopback")
    args = parser.parse_args()

    thumbnail_ms = per_photo_ms(lambda data: imaging.thumbnail(imaging.open_rgb(data), 256))
    captioner = LocalCaptioner()
    captioner.load()
    caption_ms = per_photo_ms(lambda data: captioner.caption(imaging.open_rgb(data), CaptionContext()))
    print(f"floor: Pillow decode + thumbnail {thumbnail_ms:.1f} ms per photo; the captioner alone {caption_ms:.1f} ms")

    bodies = [{"file": photo_b64(PHOTOS[n % len(PHOTOS)])} for n in range(args.images)]
    figures = {}
    for storage in args.storage:
        with server("sqlite", storage) as api:
            dataset_id = api.dataset()
            url = f"/datasets/{dataset_id}/images"
            api.http.post(url, json=bodies[0]).raise_for_status()  # warm-up: loads the captioner
            print(f"files in {storage}:")
            for parallel in (1, 2):
                dataset_id = api.dataset(f"bench {parallel}")
                url = f"/datasets/{dataset_id}/images"
                started = time.perf_counter()
                with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
                    for response in pool.map(lambda body, u=url: api.http.post(u, json=body), bodies):
                        assert response.status_code == 201, response.text
                elapsed = time.perf_counter() - started
                figures[storage, parallel] = args.images / elapsed
                each = 1000 * elapsed / args.images
                print(f"  {parallel} at a time: {args.images / elapsed:.1f} images/s ({each:.0f} ms each)")
    print(
        "upload images/s (one, two at a time): "
        + ", ".join(f"{storage} {figures[storage, 1]:.1f}, {figures[storage, 2]:.1f}" for storage in args.storage)
        + f"; floor: Pillow thumbnail {thumbnail_ms:.1f} ms, captioner {caption_ms:.1f} ms per photo"
    )


if __name__ == "__main__":
    main()
