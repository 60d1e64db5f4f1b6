"""Benchmark the local captioner on the real photos shipped with scikit-image, and the service around it.

Prints load time, ms per image, the RSS the captioner adds, the captions per second (after warm-up;
legacy and FIBO captions alternate), then the service's overhead: Update Image Caption with
regenerate_caption through HTTP against a real `tailorset serve`, versus decoding and captioning the
same images directly. The last line holds both figures. Run from the repo root: `python bench/caption.py`.
Needs scikit-image (a test dependency) for the photos.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

import numpy as np  # noqa: F401  (imported before the baseline: the server process has it anyway)
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tailorset.captioners.base import CaptionContext  # noqa: E402
from tailorset.captioners.local import LocalCaptioner, build_model_file  # noqa: E402

PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "motorcycle_left.png", "rocket.jpg", "camera.png")
CONTEXTS = (CaptionContext(caption_prefix="sks style"), CaptionContext(training_version="fibo"))


def memory_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed passes over the photos")
    parser.add_argument("--cache-dir", type=Path, default=None, help="model cache (default: the service's)")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    args = parser.parse_args()

    import skimage

    data = Path(skimage.__file__).parent / "data"
    images = []
    for name in PHOTOS:
        with Image.open(data / name) as image:
            image.load()
            images.append(image)

    paths = LocalCaptioner(cache_dir=args.cache_dir)
    for model in (paths.model_path, paths.detector_path):
        if not model.is_file():
            started = time.perf_counter()
            build_model_file(model)  # one-off: not part of the load time or the RSS
            print(f"one-off ONNX build of {model}: {time.perf_counter() - started:.1f} s")

    baseline = memory_mb("VmRSS")
    started = time.perf_counter()
    captioner = LocalCaptioner(cache_dir=args.cache_dir, threads=args.threads)
    captioner.load()
    print(f"load: {time.perf_counter() - started:.2f} s")

    for image, context in itertools.product(images, CONTEXTS):  # warm-up
        captioner.caption(image, context)

    per_image = []
    started = time.perf_counter()
    for _, image, context in itertools.product(range(args.rounds), images, CONTEXTS):
        t = time.perf_counter()
        captioner.caption(image, context)
        per_image.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - started

    print(f"photos: {len(images)} x {len(CONTEXTS)} contexts x {args.rounds} rounds = {len(per_image)} captions")
    median = statistics.median(per_image)
    print(
        f"ms per image: mean {1000 * elapsed / len(per_image):.1f}, median {1000 * median:.1f}, "
        f"max {1000 * max(per_image):.1f}"
    )
    peak = memory_mb("VmHWM")
    print(
        f"RSS added by the captioner: {memory_mb('VmRSS') - baseline:.0f} MB now, {peak - baseline:.0f} MB at peak "
        f"(process: {baseline:.0f} MB before loading, {peak:.0f} MB peak)"
    )
    captions_per_second = len(per_image) / elapsed
    print(f"captions per second: {captions_per_second:.2f}")

    overhead = service_overhead(captioner, data, args.rounds)
    print(f"captions per second: {captions_per_second:.2f}; service overhead: {overhead:.1f}% (limit 15%)")


def service_overhead(captioner: LocalCaptioner, data: Path, rounds: int) -> float:
    """Percent extra time per caption through PUT regenerate_caption over HTTP, on SQLite."""
    from harness import photo_b64, server

    from tailorset import imaging

    photos = {name: (data / name).read_bytes() for name in PHOTOS}
    context = CaptionContext(caption_prefix="A photo of")

    def direct() -> None:
        for raw in photos.values():
            captioner.caption(imaging.open_rgb(raw), context)

    with server("sqlite", model_dir=str(captioner.cache_dir)) as api:
        dataset_id = api.dataset()
        urls = [
            f"/datasets/{dataset_id}/images/"
            + str(api.http.post(f"/datasets/{dataset_id}/images", json={"file": photo_b64(name)}).json()["id"])
            for name in photos
        ]

        def through_http() -> None:
            for url in urls:
                response = api.http.put(url, json={"regenerate_caption": True})
                assert response.status_code == 200, response.text

        through_http()  # warm-up
        direct_s, http_s = [], []
        for _ in range(rounds):  # interleaved, so both see the same machine load
            t = time.perf_counter()
            direct()
            direct_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            through_http()
            http_s.append(time.perf_counter() - t)
    per_direct = 1000 * statistics.median(direct_s) / len(photos)
    per_http = 1000 * statistics.median(http_s) / len(photos)
    print(f"per caption: direct {per_direct:.1f} ms, PUT regenerate_caption over HTTP {per_http:.1f} ms")
    return 100 * (per_http - per_direct) / per_direct


if __name__ == "__main__":
    main()
