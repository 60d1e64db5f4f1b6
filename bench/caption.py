"""Benchmark the local captioner on the real photos shipped with scikit-image, and the service around it.

Prints load time, ms per image, the RSS the captioner adds, the captions per second (after warm-up;
legacy and FIBO captions alternate), then the service's overhead twice, each against the floor of the
models alone on the same images (decoding the file, then the captioner, in this process):
- Update Image Caption with regenerate_caption, one image at a time through HTTP;
- Regenerate All Captions on a 200-image dataset: the job that a real `tailorset serve` (embedded worker)
  runs, from the request until captions_update_status is completed, in captions per second. Its overhead
  is its time over the time the server itself spent decoding images and in its captioner during the job
  (tailorset_caption_duration_seconds in /metrics): the same process at the same moments, so the
  machine's load moves it least. For comparison, the models alone in this process on the same images,
  half before the job and half after; the classifier takes batches, so it is timed one image and eight
  images per run and the floor counts the faster (the face cascades, most of the time, take one at a time).
The last line holds the figures (goal: the service adds < 15% to the models' own time).
Run from the repo root: `python bench/caption.py [--images 200]`. Needs scikit-image (a test dependency).
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

from harness import MODEL_DIR, PHOTOS  # noqa: E402

from tailorset.captioners.base import CaptionContext  # noqa: E402
from tailorset.captioners.local import LocalCaptioner, build_model_file  # noqa: E402

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
    parser.add_argument("--cache-dir", type=Path, default=MODEL_DIR, help="model cache (default: the benchmarks')")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    parser.add_argument("--images", type=int, default=200, help="images in the Regenerate All dataset")
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
    service_rate, floor_rate, job_overhead = regenerate_all(captioner, data, args.images)
    print(
        f"captions per second: {captions_per_second:.2f}; service overhead (goal < 15%): single regenerate "
        f"{overhead:.1f}%, Regenerate All of {args.images} images {job_overhead:.1f}% over its own captioner time "
        f"({service_rate:.2f} captions/s; the models alone here {floor_rate:.2f}/s)"
    )


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


def batching_gain(captioner: LocalCaptioner, images: list[Image.Image], batch: int = 8) -> float:
    """Seconds per image the classifier saves when it runs `batch` images at once rather than one (0 if none).
    The same crop and scaling as LocalCaptioner._classify."""
    from tailorset.captioners import pixels

    def tensor(image: Image.Image) -> np.ndarray:
        rgb = pixels.shrink(pixels.to_rgb(image), 768)
        w, h = rgb.size
        side = min(w, h) * 224 / 256
        left, top = (w - side) / 2, (h - side) / 2
        crop = rgb.resize((224, 224), Image.Resampling.BILINEAR, box=(left, top, left + side, top + side))
        return ((np.asarray(crop, dtype=np.float32) - 127.0) / 128.0).transpose(2, 0, 1)

    tensors = [tensor(image) for image in itertools.islice(itertools.cycle(images), batch)]
    session = captioner._session
    one, many = [], []
    for _ in range(5):
        t = time.perf_counter()
        for x in tensors:
            session.run(None, {"image": x[None]})
        one.append((time.perf_counter() - t) / batch)
        t = time.perf_counter()
        session.run(None, {"image": np.stack(tensors)})
        many.append((time.perf_counter() - t) / batch)
    best_one, best_many = 1000 * min(one), 1000 * min(many)
    print(f"classifier alone: {best_one:.1f} ms per image one at a time, {best_many:.1f} in batches of {batch}")
    return max(0.0, min(one) - min(many))


def caption_seconds(api) -> float:
    """Seconds the server has spent decoding images and running its captioner (its /metrics)."""
    for line in api.http.get(api.base + "/metrics").text.splitlines():
        if line.startswith("tailorset_caption_duration_seconds_sum"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def status(api, dataset: str) -> str:
    listed = {f"/datasets/{d['id']}": d for d in api.http.get("/datasets").json()}
    return listed[dataset]["captions_update_status"]


def regenerate_all(captioner: LocalCaptioner, data: Path, count: int) -> tuple[float, float, float]:
    """Captions per second of Regenerate All Captions on `count` images and of the models alone on them, and
    the percentage the job's time exceeds the time its server spent in the captioner (same process, same
    moments: the figure the machine's load moves least)."""
    from harness import copy_images, peak_rss_mb, photo_b64, server

    from tailorset import imaging

    photos = [(data / name).read_bytes() for name in PHOTOS]
    context = CaptionContext(caption_prefix="sks style")  # the prefix the job captions with

    def floor(images: range) -> float:
        t = time.perf_counter()
        for n in images:
            captioner.caption(imaging.open_rgb(photos[n % len(photos)]), context)
        return time.perf_counter() - t

    saved = batching_gain(captioner, [imaging.open_rgb(raw) for raw in photos])
    floor_s = floor(range(count // 2))
    with server("sqlite", model_dir=str(captioner.cache_dir), embedded_worker="true") as api:
        dataset = f"/datasets/{api.dataset()}"
        api.http.put(dataset, json={"caption_prefix": "A photo of"})
        ids = [api.http.post(f"{dataset}/images", json={"file": photo_b64(name)}).json()["id"] for name in PHOTOS]
        copy_images(api, ids, count - len(ids))  # image n shows photo n % 6, as in floor()
        api.http.put(dataset, json={"caption_prefix": "sks style"})
        model_s = caption_seconds(api)
        started = time.perf_counter()
        assert api.http.put(f"{dataset}/images").status_code == 202
        while status(api, dataset) != "completed":  # the list: a lighter GET than the dataset's 200 images
            time.sleep(0.1)
        service_s = time.perf_counter() - started
        model_s = caption_seconds(api) - model_s
        progress = api.http.get(dataset).json()["captions_update"]
        assert progress["done"] == count and progress["failed"] == 0, progress
        rss = peak_rss_mb(api.process.pid)
    floor_s += floor(range(count // 2, count))
    floor_s -= saved * count
    print(
        f"Regenerate All on {count} images: {service_s:.1f} s ({count / service_s:.2f} captions/s), of which "
        f"{model_s:.1f} s inside the captioner ({100 * (1 - model_s / service_s):.1f}% of the job's time outside it); "
        f"the models alone in this process: {floor_s:.1f} s ({count / floor_s:.2f}/s); API process peak RSS "
        f"{rss:.0f} MB"
    )
    return count / service_s, count / floor_s, 100 * (service_s / model_s - 1)


if __name__ == "__main__":
    main()
