"""Peak memory of one API process serving the other benchmarks' traffic (goal: under 300 MB).

Starts one `tailorset serve` on SQLite and, against it: uploads 60 photos (the captioner loads),
runs 20 s of manual caption PUTs from wrk (16 connections), regenerates captions, uploads frames of plain sky that
name no thing (so the captioner opens its scene classifier), grows a dataset to 5,000 images and reads it whole
and page by page. Then reads the process's peak resident set (VmHWM), and that of the captioner's child process
(captioners/process.py), which holds the models. Once with the files on the local disk, once in S3 (a SeaweedFS on
loopback; boto3 adds ~35 MB).
Last line: the figures. Run from the repo root: `python bench/memory.py [--storage local s3]`.
"""

from __future__ import annotations

import argparse
import base64
import io
import tempfile
from pathlib import Path

from api_overhead import LUA, ensure_wrk, wrk
from harness import PHOTOS, captioner_pid, peak_rss_mb, photo, photo_b64, server
from listing import grow, walk
from PIL import Image


def sky_b64() -> str:
    """The dusk sky between the towers of rocket.jpg, enlarged to pass the upload's 256 px minimum: nothing in
    it is a thing, so its caption asks the scene classifier (tests/captioners/test_local.py uses the same cut)."""
    with Image.open(io.BytesIO(photo("rocket.jpg"))) as rocket:
        sky = rocket.convert("RGB").crop((210, 0, 430, 110)).resize((512, 256))
    out = io.BytesIO()
    sky.save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def peaks(pid: int) -> tuple[float, float | None]:
    """Peak RSS of the API process `pid` and of its captioner's child process (None while it has none)."""
    child = captioner_pid(pid)
    return peak_rss_mb(pid), peak_rss_mb(child) if child else None


def described(pid: int) -> str:
    api, child = peaks(pid)
    captioner = f", its captioner's process {child:.0f} MB" if child is not None else ""
    return f"the API process {api:.0f} MB{captioner} (peaks)"


def peak_while_serving(storage: str) -> tuple[float, float | None]:
    with server("sqlite", storage) as api:
        dataset_id = api.dataset()
        ids = [
            api.http.post(f"/datasets/{dataset_id}/images", json={"file": photo_b64(PHOTOS[n % 6])}).json()["id"]
            for n in range(60)
        ]
        print(f"{storage}: after 60 uploads: {described(api.process.pid)}")
        paths = [f"/tailored-gen/datasets/{dataset_id}/images/{i}" for i in ids]
        with tempfile.TemporaryDirectory() as tmp:
            lua = Path(tmp, "bench.lua")
            lua.write_text(LUA)
            wrk(api.base, paths, "PUT", api.token, 20, 16, lua)  # as fast as the server takes them
        for image_id in ids[:10]:
            api.http.put(f"/datasets/{dataset_id}/images/{image_id}", json={"regenerate_caption": True})
        print(f"{storage}: after caption PUTs: {described(api.process.pid)}")
        for _ in range(5):
            api.http.post(f"/datasets/{dataset_id}/images", json={"file": sky_b64()}).raise_for_status()
        print(f"{storage}: after frames of sky (the scene classifier): {described(api.process.pid)}")
        grow(api.env["TAILORSET_DATABASE_URL"], dataset_id, 5000)
        for _ in range(20):
            api.http.get(f"/datasets/{dataset_id}").raise_for_status()
        walk(api.http, dataset_id)
        return peaks(api.process.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", nargs="+", default=["local", "s3"], help="s3: a SeaweedFS on loopback")
    args = parser.parse_args()
    ensure_wrk()
    measured = {storage: peak_while_serving(storage) for storage in args.storage}
    figures = ", ".join(
        f"{api:.0f} MB with files in {storage} (its captioner's process {child or 0:.0f} MB)"
        for storage, (api, child) in measured.items()
    )
    print(f"peak RSS of one API process: {figures} (goal < 300 MB)")


if __name__ == "__main__":
    main()
