"""Mixed traffic at the rate limit, for minutes, against a real `tailorset serve` on 127.0.0.1 only.

Several organizations on the default plan (60 requests per minute per endpoint) each drive seven
endpoints 10% faster than their limit, from one thread per endpoint: uploads (captioned on the way
in), deletes of what was uploaded, caption edits, reads of an image, of a dataset, of a filtered
listing and of a caption history. Every answer is counted. At the end every write is checked: each
image whose upload was acknowledged and not deleted is there, each deleted one answers 410, each
caption is the last one acknowledged. Fails (exit 1) on any 5xx, any lost write, or a 429 without a
sane Retry-After. The last line holds the figures.

Run from the repo root: `python bench/load.py [--duration 300] [--orgs 3] [--database sqlite|postgresql]`.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import threading
import time
from urllib.parse import urlsplit

import httpx
from harness import PHOTOS, TAILORSET, photo, server

OVER_THE_LIMIT = 1.1  # each endpoint gets 66 requests a minute against a limit of 60
LIMIT_PER_MINUTE = 60
SEED_IMAGES = 4


class Org:
    """One organization's dataset, what it uploaded and deleted, and its last acknowledged caption."""

    def __init__(self, http: httpx.Client):
        self.http = http
        project = http.post("/projects", json={"project_name": "load", "ip_medium": "photography", "ip_type": "other"})
        self.dataset = http.post("/datasets", json={"project_id": project.json()["id"], "name": "load"}).json()["id"]
        self.seeds = [self._upload(n).json()["id"] for n in range(SEED_IMAGES)]
        self.uploaded: collections.deque[int] = collections.deque()  # acknowledged, not yet deleted
        self.deleted: list[int] = []
        self.captions: dict[int, str] = {}  # image → last acknowledged manual caption
        self.lock = threading.Lock()

    def _upload(self, n: int) -> httpx.Response:
        name = PHOTOS[n % len(PHOTOS)]
        return self.http.post(f"/datasets/{self.dataset}/images", files={"file": (name, photo(name))})


def lanes(org: Org):
    """Each endpoint as a function that sends one request (or None when it has nothing to do)."""
    url = f"/datasets/{org.dataset}"
    counter = iter(range(10**9))

    def upload():
        response = org._upload(next(counter))
        if response.status_code == 201:
            with org.lock:
                org.uploaded.append(response.json()["id"])
        return response

    def delete():
        with org.lock:
            if len(org.uploaded) < 2:
                return None
            image = org.uploaded.popleft()
        response = org.http.delete(f"{url}/images/{image}")
        with org.lock:
            (org.deleted.append if response.status_code == 204 else org.uploaded.appendleft)(image)
        return response

    def edit():
        image, caption = org.seeds[0], f"edited {next(counter)}"
        response = org.http.put(f"{url}/images/{image}", json={"caption": caption})
        if response.status_code == 200:
            org.captions[image] = caption
        return response

    return {
        "POST images": upload,
        "DELETE image": delete,
        "PUT caption": edit,
        "GET image": lambda: org.http.get(f"{url}/images/{org.seeds[1]}"),
        "GET dataset": lambda: org.http.get(url, params={"max_images": 20}),
        "GET images?caption_contains": lambda: org.http.get(f"{url}/images", params={"caption_contains": "a"}),
        "GET captions": lambda: org.http.get(f"{url}/images/{org.seeds[0]}/captions"),
    }


def drive(send, seconds: float, tally: collections.Counter, problems: list[str], name: str) -> None:
    interval = 60 / (LIMIT_PER_MINUTE * OVER_THE_LIMIT)
    started = time.monotonic()
    for n in range(10**9):
        due = started + n * interval
        if due > started + seconds:
            return
        time.sleep(max(0.0, due - time.monotonic()))
        try:
            response = send()
        except httpx.HTTPError as exc:
            tally[(name, "transport error")] += 1
            problems.append(f"{name}: {type(exc).__name__}")
            continue
        if response is None:
            continue
        tally[(name, response.status_code)] += 1
        if response.status_code == 429 and not 1 <= int(response.headers.get("Retry-After", "0")) <= 60:
            problems.append(f"{name}: 429 with Retry-After {response.headers.get('Retry-After')!r}")
        if response.status_code >= 500:
            problems.append(f"{name}: {response.status_code} {response.text[:200]}")


def lost_writes(org: Org) -> list[str]:
    lost = []
    url = f"/datasets/{org.dataset}"
    present = {image["id"] for image in org.http.get(f"{url}/images").json()}
    for image in org.uploaded:
        if image not in present:
            lost.append(f"uploaded image {image} is missing")
    for image in org.deleted:
        if (status := org.http.get(f"{url}/images/{image}").status_code) != 410:
            lost.append(f"deleted image {image} answers {status}, not 410")
    for image, caption in org.captions.items():
        if (stored := org.http.get(f"{url}/images/{image}").json()["caption"]) != caption:
            lost.append(f"image {image} has caption {stored!r}, not the last acknowledged {caption!r}")
    expected = SEED_IMAGES + len(org.uploaded)
    if len(present) != expected:
        lost.append(f"dataset {org.dataset} holds {len(present)} images, not {expected}")
    return lost


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=300, help="seconds of traffic (default 300)")
    parser.add_argument("--orgs", type=int, default=3)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()

    with server(args.database, rate_limit_default=f"{LIMIT_PER_MINUTE}/minute", embedded_worker="true") as running:
        assert urlsplit(running.base).hostname == "127.0.0.1", "the load only ever goes to loopback"

        def client(org: str, *plan: str) -> httpx.Client:
            created = subprocess.run(
                [*TAILORSET, "token", "create", "--org", org, *plan],
                env=running.env, capture_output=True, check=True, text=True,
            )  # fmt: skip
            headers = {"api_token": created.stdout.splitlines()[-1]}
            return httpx.Client(base_url=running.base + "/tailored-gen", headers=headers, timeout=60)

        orgs = [Org(client(f"load-{n}")) for n in range(args.orgs)]

        tally: collections.Counter = collections.Counter()
        problems: list[str] = []
        threads = [
            threading.Thread(target=drive, args=(send, args.duration, tally, problems, name))
            for org in orgs
            for name, send in lanes(org).items()
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        # Checking every write takes more reads than the plan allows: lift it, and wait for the
        # servers' memory of the old plan (TAILORSET_TOKEN_CACHE_SECONDS) to lapse.
        for n, org in enumerate(orgs):
            org.http = client(f"load-{n}", "--rate-limit", "1000000/minute")
        time.sleep(6)
        lost = [problem for org in orgs for problem in lost_writes(org)]

    names = sorted({name for name, _ in tally})
    for name in names:
        counts = ", ".join(f"{code}: {n}" for (lane, code), n in sorted(tally.items(), key=str) if lane == name)
        print(f"  {name:30} {counts}")
    for problem in (problems + lost)[:20]:
        print("  problem:", problem)
    by_code: collections.Counter = collections.Counter()
    for (_, code), n in tally.items():
        by_code[code] += n
    codes = [code for code in by_code if isinstance(code, int)]
    total = sum(by_code.values())
    ok = sum(by_code[code] for code in codes if code < 400)
    other_4xx = sum(by_code[code] for code in codes if 400 <= code < 500 and code != 429)
    server_errors = sum(by_code[code] for code in codes if code >= 500)
    print(
        f"load: {elapsed:.0f} s, {args.orgs} orgs × {len(names)} endpoints at {OVER_THE_LIMIT:.0%} of "
        f"{LIMIT_PER_MINUTE}/minute on {args.database}: {total} requests ({total / elapsed:.1f}/s), "
        f"{ok} 2xx, {by_code[429]} 429, {other_4xx} other 4xx, {server_errors} 5xx, "
        f"{by_code['transport error']} transport errors, {len(lost)} lost writes"
    )
    return 1 if problems or lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
