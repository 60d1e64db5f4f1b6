"""GET /datasets/{id}/health on a 5,000-image dataset, once its measurements and lint are stored (issue 12: < 200 ms).

One API process per database. The dataset is grown by inserting image rows straight into the database: copies
of one uploaded image's row, each with its own content hash, perceptual hash, sharpness, exposure, size and
caption lint, as upload and the background job store them (a few exact and near duplicates, blurry and long
captions among them), so the report has real work: duplicate groups over 5,000 hashes, buckets, histograms,
word counts. The floor is GET /projects in the same run (authentication, one query, a small body).
Run from the repo root: `python bench/health.py [--databases sqlite postgresql] [--images 5000] [--times 30]`.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics

from harness import photo_b64, server
from listing import timed
from sqlalchemy import create_engine, text

from tailorset.db.engine import sync_url

COPIED = (
    "organization_id, dataset_id, image_name, caption_source, file_key, thumbnail_key, storage, content_type, "
    "byte_size, upload_source_url, created_at, updated_at, review_state"
)
WORDS = ("tabby cat dog cup espresso rocket launch camera person street tree river boat car bicycle lamp").split()  # noqa: SIM905
SIZES = [(1024, 1024), (1920, 1080), (1080, 1920), (600, 400), (4000, 1000), (800, 800), (1536, 1024)]


def grow(url: str, dataset_id: int, to: int) -> None:
    rng = random.Random(12)
    engine = create_engine(sync_url(url))
    with engine.begin() as connection:
        first = connection.execute(
            text(f"SELECT {COPIED} FROM images WHERE dataset_id = :d ORDER BY id LIMIT 1"), {"d": dataset_id}
        ).mappings().one()  # fmt: skip
        rows, hashes = [], []
        for n in range(1, to):
            phash = rng.getrandbits(63) * rng.choice((1, -1))
            if n % 97 == 0:  # a near duplicate of an earlier picture: two bits flipped
                phash = hashes[rng.randrange(len(hashes))] ^ 0b101
            hashes.append(phash)
            words = rng.sample(WORDS, 4)
            width, height = rng.choice(SIZES)
            rows.append(dict(
                first, image_name=f"photo_{n}.jpg", caption=f"sks style, a photo of a {' '.join(words)} #{n}",
                sha256=f"{n // 2 if n % 113 == 0 else n:064x}", phash=phash, width=width, height=height,
                turned=False, sharpness=rng.uniform(5, 3000), brightness=rng.uniform(0.05, 0.95),
                dark_fraction=rng.uniform(0, 0.6), bright_fraction=rng.uniform(0, 0.6), transparent=n % 211 == 0,
                measured_at=first["created_at"], lint_tokens=rng.randint(8, 95), lint_issues=4 if n % 50 == 0 else 0,
                lint_terms=" ".join(words),
            ))  # fmt: skip
        columns = [*first.keys(), "caption", "sha256", "phash", "width", "height", "turned", "sharpness", "brightness",
                   "dark_fraction", "bright_fraction", "transparent", "measured_at", "lint_tokens", "lint_issues",
                   "lint_terms"]  # fmt: skip
        insert = text(f"INSERT INTO images ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})")
        for start in range(0, len(rows), 5_000):
            connection.execute(insert, rows[start : start + 5_000])
    if engine.dialect.name == "postgresql":  # what autovacuum would do after a bulk load, done now
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE images"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--times", type=int, default=30)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    summary = []
    for database in args.databases:
        with server(database, max_images_per_dataset=str(args.images)) as api:
            dataset_id = api.dataset()
            api.http.post(f"/datasets/{dataset_id}/images", json={"file": photo_b64()}).raise_for_status()
            api.http.get(f"/datasets/{dataset_id}/health").raise_for_status()  # the upload's own caption is linted
            grow(api.env["TAILORSET_DATABASE_URL"], dataset_id, args.images)
            report = api.http.get(f"/datasets/{dataset_id}/health").json()
            assert report["complete"] and report["images_count"] == args.images, report["pending"]
            near, exact = len(report["duplicates"]["near"]), len(report["duplicates"]["exact"])
            health = timed(lambda url=f"/datasets/{dataset_id}/health": api.http.get(url), args.times)
            floor = timed(lambda: api.http.get("/projects"), args.times)
            p50, p95 = statistics.median(health), statistics.quantiles(health, n=20)[-1]
            print(
                f"{database}: {args.images} images ({exact} exact and {near} near-duplicate groups, "
                f"{report['blocking']} blocking findings): health p50 {p50:.0f} ms, p95 {p95:.0f} ms, "
                f"max {max(health):.0f} ms | floor GET /projects p50 {statistics.median(floor):.1f} ms"
            )
            summary.append(f"{database} health p50 {p50:.0f} ms p95 {p95:.0f} ms")
    print("; ".join(summary))


if __name__ == "__main__":
    main()
