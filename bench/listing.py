"""Reading big datasets: GET dataset, and paging through all images, as a dataset grows to 100,000 images.

One API process per database. The dataset is grown by inserting image rows straight into the
database (copies of one uploaded image's row: uploading and captioning 100,000 photos would take
hours and measure something else). At 1k, 5k, 10k and 100k images it times GET /datasets/{id}
(which counts the images and returns the first 200) and a walk through every page of
GET /images?limit=100 (keyset pagination), first pages against last pages. Last line: the figures.
Run from the repo root: `python bench/listing.py [--databases sqlite postgresql] [--sizes 1000 5000 10000 100000]
[--storage local|s3]`.
"""

from __future__ import annotations

import argparse
import statistics
import time

from harness import photo_b64, server
from sqlalchemy import create_engine, text

from tailorset.db.engine import sync_url

COPIED = (
    "organization_id, dataset_id, image_name, caption, caption_source, file_key, thumbnail_key, storage, content_type, "
    "width, height, byte_size, sha256, upload_source_url, created_at, updated_at"
)


def grow(url: str, dataset_id: int, to: int) -> None:
    """Copy the dataset's first image row until the dataset holds `to` images."""
    engine = create_engine(sync_url(url))
    with engine.begin() as connection:
        have = connection.execute(text("SELECT count(*) FROM images WHERE dataset_id = :d"), {"d": dataset_id}).scalar()
        first = (
            connection.execute(
                text(f"SELECT {COPIED} FROM images WHERE dataset_id = :d ORDER BY id LIMIT 1"), {"d": dataset_id}
            )
            .mappings()
            .one()
        )
        rows = [dict(first, caption=f"{first['caption']} #{n}") for n in range(have, to)]
        placeholders = ", ".join(f":{name.strip()}" for name in COPIED.split(","))
        for start in range(0, len(rows), 10_000):
            insert = text(f"INSERT INTO images ({COPIED}) VALUES ({placeholders})")
            connection.execute(insert, rows[start : start + 10_000])
    if engine.dialect.name == "postgresql":  # what autovacuum would do after a bulk load, done now
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE images"))
    engine.dispose()


def timed(call, times: int) -> list[float]:
    latencies = []
    for _ in range(times):
        started = time.perf_counter()
        response = call()
        latencies.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return latencies


def walk(http, dataset_id: int) -> tuple[list[float], int]:
    """Every page of 100, in order; returns each page's latency and how many images were seen."""
    latencies, seen, params = [], 0, {"limit": 100}
    while True:
        started = time.perf_counter()
        response = http.get(f"/datasets/{dataset_id}/images", params=params)
        latencies.append((time.perf_counter() - started) * 1000)
        seen += len(response.json())
        if "x-next-cursor" not in response.headers:
            return latencies, seen
        params = {"limit": 100, "cursor": response.headers["x-next-cursor"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[1000, 5000, 10000, 100000])
    parser.add_argument("--storage", default="local", help="s3: pre-signed URLs from a SeaweedFS on loopback")
    args = parser.parse_args()
    summary = []
    for database in args.databases:
        with server(database, args.storage) as api:
            dataset_id = api.dataset()
            api.http.post(f"/datasets/{dataset_id}/images", json={"file": photo_b64()}).raise_for_status()
            print(f"{database}:")
            for size in args.sizes:
                grow(api.env["TAILORSET_DATABASE_URL"], dataset_id, size)
                get = timed(lambda url=f"/datasets/{dataset_id}": api.http.get(url), 30)
                pages, seen = walk(api.http, dataset_id)
                assert seen == size, (seen, size)
                head, tail = statistics.median(pages[:10]), statistics.median(pages[-10:])
                print(
                    f"  {size:>7} images: GET dataset p50 {statistics.median(get):6.1f} ms, p99 {max(get):6.1f} ms | "
                    f"page of 100: first pages {head:5.1f} ms, last pages {tail:5.1f} ms | "
                    f"all {len(pages)} pages in {sum(pages) / 1000:5.1f} s"
                )
                figure = f"dataset {statistics.median(get):.1f} ms, page {tail:.1f} ms"
                summary.append(f"{database} {size // 1000}k: {figure}")
    print("; ".join(summary))


if __name__ == "__main__":
    main()
