"""Mixed traffic at the rate limit, for minutes, against a real `tailorset serve` on 127.0.0.1 only.

Several organizations on the default plan (60 requests per minute per endpoint) each drive seven
endpoints 10% faster than their limit, from one thread per endpoint: uploads (captioned on the way
in), deletes of what was uploaded, caption edits, reads of an image, of a dataset, of a filtered
listing and of a caption history. Every answer is counted. At the end every write is checked: each
image whose upload was acknowledged and not deleted is there, each deleted one answers 410, each
caption is the last one acknowledged. Fails (exit 1) on any 5xx, any lost write, or a 429 without a
sane Retry-After. The last line holds the figures.

`--abuse` adds, beside that traffic, an organization that sends what issue 15 found could stall the
server or bloat it, each request every few seconds: find/replace dry runs that would multiply 20,000-
character captions, a catastrophic regex, replacements naming a missing group or writing NUL, an
8944×8944 PNG (upload and generate_visual_schema), lone surrogates, a 1.1 MB Regenerate All body, invalid
JSON without a token, a path that tries to forge a log line. It also probes /healthz every 50 ms, and
prints its p99 (goal < 100 ms), whether every normal request was answered, the 5xx count (0), the server's
peak RSS (goal < 500 MB) and forged log lines (0). Each abusive request must get its 4xx (or its bounded 200).

Run from the repo root: `python bench/load.py [--duration 300] [--orgs 3] [--database sqlite|postgresql]
[--abuse]` (with --abuse: 1 organization for 120 s, unless --orgs and --duration say otherwise).
"""

from __future__ import annotations

import argparse
import base64
import collections
import struct
import subprocess
import threading
import time
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from harness import PHOTOS, TAILORSET, peak_rss_mb, photo, server

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


def drive(
    send, seconds: float, tally: collections.Counter, problems: list[str], name: str, interval: float | None = None
) -> None:
    interval = interval or 60 / (LIMIT_PER_MINUTE * OVER_THE_LIMIT)
    started = time.monotonic()
    for n in range(10**9):
        due = started + n * interval
        if min(due, time.monotonic()) > started + seconds:  # a lane whose answers lag stops on time too
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


def patient_get(http: httpx.Client, url: str) -> httpx.Response:
    """A read that waits out a 429 (the servers may still hold the old plan for a few seconds)."""
    for _ in range(10):
        response = http.get(url)
        if response.status_code != 429:
            return response
        time.sleep(int(response.headers.get("Retry-After", "1")))
    raise RuntimeError(f"{url} still answers 429 after ten tries")


def lost_writes(org: Org) -> list[str]:
    lost = []
    url = f"/datasets/{org.dataset}"
    present = {image["id"] for image in patient_get(org.http, f"{url}/images").json()}
    for image in org.uploaded:
        if image not in present:
            lost.append(f"uploaded image {image} is missing")
    for image in org.deleted:
        if (status := patient_get(org.http, f"{url}/images/{image}").status_code) != 410:
            lost.append(f"deleted image {image} answers {status}, not 410")
    for image, caption in org.captions.items():
        if (stored := patient_get(org.http, f"{url}/images/{image}").json()["caption"]) != caption:
            lost.append(f"image {image} has caption {stored!r}, not the last acknowledged {caption!r}")
    expected = SEED_IMAGES + len(org.uploaded)
    if len(present) != expected:
        lost.append(f"dataset {org.dataset} holds {len(present)} images, not {expected}")
    return lost


# --- the abuse mix ---------------------------------------------------------------------------------

ABUSE_INTERVAL = 5.0  # seconds between two requests of one abusive kind (12 a minute: under the rate limit)


def black_png(side: int) -> bytes:
    """An RGB PNG of side×side black pixels: 8944 makes the issue's 311 KB file that decodes to 240 MB."""
    compressor, row = zlib.compressobj(9), b"\0" * (1 + 3 * side)
    pixels = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def abusive(org: Org, base: str) -> dict:
    """Each abusive request, as (function that sends it, the statuses it may get)."""
    url = f"/datasets/{org.dataset}"
    for image in org.seeds[:2]:  # the captions: 20,000 characters each
        org.http.put(f"{url}/images/{image}", json={"caption": "a" * 20_000}).raise_for_status()
    org.http.put(f"{url}/images/{org.seeds[2]}", json={"caption": "a" * 30 + "!"}).raise_for_status()
    bomb = base64.b64encode(black_png(8944)).decode()
    json_headers = {"Content-Type": "application/json"}

    def replace(body: dict):
        return lambda: org.http.post(f"{url}/captions/replace", json=body)

    return {
        "replace a→5,000 chars (dry run)": (replace({"find": "a", "replace": "x" * 5000, "dry_run": True}), {200}),
        "regex (a|a)+$": (replace({"find": "(a|a)+$", "replace": "b", "regex": True}), {400}),
        "regex replace \\9": (replace({"find": "(a)", "replace": "\\9", "regex": True}), {400}),
        "regex replace \\x00": (replace({"find": "(a)!", "replace": "\\x00", "regex": True}), {400}),
        "upload 8944×8944 PNG": (lambda: org.http.post(f"{url}/images", json={"file": bomb}), {413}),
        "visual_schema 5×8944² PNG": (
            lambda: org.http.post("/generate_visual_schema", json={"images": [bomb] * 5}), {413}),
        "PUT caption \\ud800": (
            lambda: org.http.put(f"{url}/images/{org.seeds[3]}", content=b'{"caption": "\\ud800x"}',
                                 headers=json_headers), {400}),
        "validate \\ud800": (
            lambda: org.http.post("/captions/validate", content=b'{"caption": "\\ud800x"}', headers=json_headers),
            {400}),
        # Just over the 1 MiB cap: a client still writing a much larger body when the 413 comes sees the
        # connection closed instead (the server does not read what it refuses).
        "Regenerate All, 1.1 MB body": (
            lambda: org.http.put(f"{url}/images", content=b'{"x": "' + b"x" * 1_100_000 + b'"}', headers=json_headers),
            {413}),
        "invalid JSON, no token": (
            lambda: httpx.put(f"{base}/tailored-gen{url}/images/{org.seeds[3]}", content=b"{", headers=json_headers),
            {401}),
        "GET /healthz%0AFORGED-LINE": (lambda: httpx.get(f"{base}/healthz%0AFORGED-LINE"), {404}),
    }  # fmt: skip


def probe_health(base: str, seconds: float, latencies: list[float], problems: list[str]) -> None:
    with httpx.Client(base_url=base, timeout=30) as http:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                http.get("/healthz").raise_for_status()
            except httpx.HTTPError as exc:
                problems.append(f"/healthz: {type(exc).__name__}")
            latencies.append(time.perf_counter() - started)
            time.sleep(0.05)


def run_abuse(abuser: Org, base: str, seconds: float, tally: collections.Counter, problems: list[str]):
    """Threads that send the abusive requests and probe /healthz; the list of /healthz latencies they fill."""
    latencies: list[float] = []
    threads = [threading.Thread(target=probe_health, args=(base, seconds, latencies, problems))]
    for name, (send, expected) in abusive(abuser, base).items():

        def checked(send=send, expected=expected, name=name):
            response = send()
            if response.status_code not in expected | {429}:
                problems.append(f"abuse {name}: {response.status_code} {response.text[:200]}")
            return response

        lane = f"abuse: {name}"
        threads.append(threading.Thread(target=drive, args=(checked, seconds, tally, problems, lane, ABUSE_INTERVAL)))
    return threads, latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, help="seconds of traffic (default 300, 120 with --abuse)")
    parser.add_argument("--orgs", type=int, help="organizations sending normal traffic (default 3, 1 with --abuse)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--abuse", action="store_true", help="add issue 15's abusive requests beside the traffic")
    args = parser.parse_args()
    args.duration = args.duration or (120 if args.abuse else 300)
    args.orgs = args.orgs or (1 if args.abuse else 3)
    settings = {"rate_limit_default": f"{LIMIT_PER_MINUTE}/minute", "embedded_worker": "true"}

    with server(args.database, log_level="info" if args.abuse else "warning", **settings) as running:
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
        if args.abuse:
            abuse_threads, latencies = run_abuse(Org(client("abuser")), running.base, args.duration, tally, problems)
            threads += abuse_threads
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
        peak_mb = peak_rss_mb(running.process.pid)
        log = Path(running.env["TAILORSET_DATA_DIR"], "server.log")
        forged = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("FORGED")]

    names = sorted({name for name, _ in tally})
    for name in names:
        counts = ", ".join(f"{code}: {n}" for (lane, code), n in sorted(tally.items(), key=str) if lane == name)
        print(f"  {name:30} {counts}")
    for problem in (problems + lost)[:20]:
        print("  problem:", problem)
    by_code: collections.Counter = collections.Counter()
    for (lane, code), n in tally.items():
        if not lane.startswith("abuse"):
            by_code[code] += n
    codes = [code for code in by_code if isinstance(code, int)]
    total = sum(by_code.values())
    ok = sum(by_code[code] for code in codes if code < 400)
    other_4xx = sum(by_code[code] for code in codes if 400 <= code < 500 and code != 429)
    server_errors = sum(by_code[code] for code in codes if code >= 500)
    print(
        f"load: {elapsed:.0f} s, {args.orgs} orgs × {len(lanes(orgs[0]))} endpoints at {OVER_THE_LIMIT:.0%} of "
        f"{LIMIT_PER_MINUTE}/minute on {args.database}: {total} requests ({total / elapsed:.1f}/s), "
        f"{ok} 2xx, {by_code[429]} 429, {other_4xx} other 4xx, {server_errors} 5xx, "
        f"{by_code['transport error']} transport errors, {len(lost)} lost writes"
    )
    if args.abuse:
        abuse = sum(n for (lane, _), n in tally.items() if lane.startswith("abuse"))
        abuse_5xx = sum(n for (lane, code), n in tally.items() if lane.startswith("abuse") and code in range(500, 600))
        p99 = sorted(latencies)[int(len(latencies) * 0.99)] * 1000
        answered = "all" if not by_code["transport error"] else f"{by_code['transport error']} unanswered"
        print(
            f"abuse: {abuse} abusive requests beside the traffic; /healthz p99 {p99:.0f} ms over {len(latencies)} "
            f"probes (goal < 100), normal requests answered: {answered}, 5xx: {server_errors + abuse_5xx} (goal 0), "
            f"server peak RSS {peak_mb:.0f} MB (goal < 500), forged log lines: {len(forged)}"
        )
        if p99 >= 100 or peak_mb >= 500 or forged:
            return 1
    return 1 if problems or lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
