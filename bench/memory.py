"""Peak memory of one API process serving the other benchmarks' traffic (goal: under 300 MB).

Starts one `tailorset serve` on SQLite and, against it: uploads 60 photos (the captioner loads),
runs 20 s of concurrent manual caption PUTs, grows a dataset to 5,000 images and reads it whole and
page by page, regenerates captions. Then reads the process's peak resident set (VmHWM).
Last line: the figure. Run from the repo root: `python bench/memory.py`.
"""

from __future__ import annotations

import asyncio

from caption_put import load
from harness import PHOTOS, peak_rss_mb, photo_b64, server
from listing import grow, walk


def main() -> None:
    with server("sqlite") as api:
        dataset_id = api.dataset()
        ids = [
            api.http.post(f"/datasets/{dataset_id}/images", json={"file": photo_b64(PHOTOS[n % 6])}).json()["id"]
            for n in range(60)
        ]
        print(f"after 60 uploads: {peak_rss_mb(api.process.pid):.0f} MB peak")
        urls = [f"{api.base}/tailored-gen/datasets/{dataset_id}/images/{i}" for i in ids]
        asyncio.run(load(urls, {"api_token": api.token}, 20, 16))
        for image_id in ids[:10]:
            api.http.put(f"/datasets/{dataset_id}/images/{image_id}", json={"regenerate_caption": True})
        print(f"after caption PUTs: {peak_rss_mb(api.process.pid):.0f} MB peak")
        grow(api.env["TAILORSET_DATABASE_URL"], dataset_id, 5000)
        for _ in range(20):
            api.http.get(f"/datasets/{dataset_id}").raise_for_status()
        walk(api.http, dataset_id)
        peak = peak_rss_mb(api.process.pid)
    print(f"peak RSS of one API process: {peak:.0f} MB (goal < 300 MB)")


if __name__ == "__main__":
    main()
