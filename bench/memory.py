"""Peak memory of one API process serving the other benchmarks' traffic (goal: under 300 MB).

Starts one `tailorset serve` on SQLite and, against it: uploads 60 photos (the captioner loads),
runs 20 s of manual caption PUTs from wrk (16 connections), grows a dataset to 5,000 images and reads it whole and
page by page, regenerates captions. Then reads the process's peak resident set (VmHWM). Once with the
files on the local disk, once in S3 (a SeaweedFS on loopback; boto3 adds ~35 MB).
Last line: the figures. Run from the repo root: `python bench/memory.py [--storage local s3]`.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from api_overhead import LUA, ensure_wrk, wrk
from harness import PHOTOS, peak_rss_mb, photo_b64, server
from listing import grow, walk


def peak_while_serving(storage: str) -> float:
    with server("sqlite", storage) as api:
        dataset_id = api.dataset()
        ids = [
            api.http.post(f"/datasets/{dataset_id}/images", json={"file": photo_b64(PHOTOS[n % 6])}).json()["id"]
            for n in range(60)
        ]
        print(f"{storage}: after 60 uploads: {peak_rss_mb(api.process.pid):.0f} MB peak")
        paths = [f"/tailored-gen/datasets/{dataset_id}/images/{i}" for i in ids]
        with tempfile.TemporaryDirectory() as tmp:
            lua = Path(tmp, "bench.lua")
            lua.write_text(LUA)
            wrk(api.base, paths, "PUT", api.token, 20, 16, lua)  # as fast as the server takes them
        for image_id in ids[:10]:
            api.http.put(f"/datasets/{dataset_id}/images/{image_id}", json={"regenerate_caption": True})
        print(f"{storage}: after caption PUTs: {peak_rss_mb(api.process.pid):.0f} MB peak")
        grow(api.env["TAILORSET_DATABASE_URL"], dataset_id, 5000)
        for _ in range(20):
            api.http.get(f"/datasets/{dataset_id}").raise_for_status()
        walk(api.http, dataset_id)
        return peak_rss_mb(api.process.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", nargs="+", default=["local", "s3"], help="s3: a SeaweedFS on loopback")
    args = parser.parse_args()
    ensure_wrk()
    peaks = {storage: peak_while_serving(storage) for storage in args.storage}
    figures = ", ".join(f"{peak:.0f} MB with files in {storage}" for storage, peak in peaks.items())
    print(f"peak RSS of one API process: {figures} (goal < 300 MB)")


if __name__ == "__main__":
    main()
