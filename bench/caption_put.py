"""Manual caption PUT under concurrency, against its floor, on SQLite and on PostgreSQL.

For each database: a real `tailorset serve` (one process) takes `PUT /tailored-gen/datasets/{d}/images/{i}`
with `{"caption": …}` from a load generator on loopback (C concurrent keep-alive connections, T seconds,
captions spread over many images). The floor is a bare Starlette app in its own process doing only the
single-row UPDATE of the same caption on the same database with the same driver. Both are measured in
this run, taking turns (five each). Prints throughput and p50/p99 latency for each, then the ratio; the last
line holds the figures (goal: ≥ 70% of the floor's throughput).

Run from the repo root: `python bench/caption_put.py [--seconds 10] [--concurrency 16] [--databases sqlite postgresql]`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from harness import free_port, photo_b64, server, wait_until_up

ROOT = Path(__file__).resolve().parents[1]
IMAGES = 50
TURNS = 5

FLOOR_APP = """
import os
from datetime import datetime, timezone
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from sqlalchemy import text
from tailorset.db.engine import Database

db = Database(os.environ["FLOOR_DATABASE_URL"])

async def put_caption(request):
    body = await request.json()
    async with db.write() as session:
        await session.execute(
            text("UPDATE images SET caption = :caption, updated_at = :now WHERE id = :id"),
            {"caption": body["caption"], "now": datetime.now(timezone.utc), "id": int(request.path_params["image_id"])},
        )
    return JSONResponse({"id": int(request.path_params["image_id"]), "caption": body["caption"]})

app = Starlette(routes=[Route("/images/{image_id:int}", put_caption, methods=["PUT"])])
"""


async def load(urls: list[str], headers: dict, seconds: float, concurrency: int) -> list[float]:
    """C workers, each on its own keep-alive connection, PUTting captions round-robin; latencies in seconds."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    errors = 0

    async def worker(n: int) -> None:
        nonlocal errors
        async with httpx.AsyncClient(headers=headers, timeout=30, limits=httpx.Limits(max_connections=1)) as http:
            i = n
            while time.perf_counter() < deadline:
                url = urls[i % len(urls)]
                started = time.perf_counter()
                response = await http.put(url, json={"caption": f"a caption, version {i}"})
                latencies.append(time.perf_counter() - started)
                errors += response.status_code != 200
                i += concurrency

    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    if errors:
        raise SystemExit(f"{errors} requests failed")
    return latencies


def summary(label: str, latencies: list[float], seconds: float) -> float:
    ordered = sorted(latencies)
    rps = len(latencies) / seconds
    p50, p99 = statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99) - 1] * 1000
    print(f"  {label:<9} {rps:8.0f} req/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   ({len(latencies)} requests)")
    return rps


def bench_database(database: str, seconds: float, concurrency: int) -> float:
    with server(database) as api:
        dataset_id = api.dataset()
        url = f"/datasets/{dataset_id}/images"
        ids = [api.http.post(url, json={"file": photo_b64()}).json()["id"] for _ in range(IMAGES)]
        ours = [f"{api.base}/tailored-gen{url}/{i}" for i in ids]
        headers = {"api_token": api.token}

        # The floor, on the same database, in a process beside the service's.
        home = api.env["TAILORSET_DATA_DIR"]
        Path(home, "floor_app.py").write_text(FLOOR_APP)
        floor_port = free_port()
        floor = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "floor_app:app", "--port", str(floor_port), "--log-level", "warning"],
            env={**api.env, "FLOOR_DATABASE_URL": api.env["TAILORSET_DATABASE_URL"], "PYTHONPATH": home},
            cwd=home,
        )
        try:
            floor_urls = [f"http://127.0.0.1:{floor_port}/images/{i}" for i in ids]
            wait_until_up(f"http://127.0.0.1:{floor_port}/", floor)
            asyncio.run(load(ours, headers, 1, concurrency))  # warm-up
            asyncio.run(load(floor_urls, {}, 1, concurrency))
            # Five turns each, the other idle meanwhile: on a shared machine whose load drifts, both
            # see the same conditions.
            our_latencies, floor_latencies = [], []
            for _ in range(TURNS):
                our_latencies += asyncio.run(load(ours, headers, seconds / TURNS, concurrency))
                floor_latencies += asyncio.run(load(floor_urls, {}, seconds / TURNS, concurrency))
        finally:
            floor.terminate()
            floor.wait()

    print(f"{database}: {concurrency} concurrent connections, {seconds:g} s each")
    ours_rps = summary("tailorset", our_latencies, seconds)
    floor_rps = summary("floor", floor_latencies, seconds)
    print(f"  tailorset reaches {100 * ours_rps / floor_rps:.0f}% of the floor's throughput")
    return ours_rps / floor_rps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"])
    args = parser.parse_args()
    ratios = {db: bench_database(db, args.seconds, args.concurrency) for db in args.databases}
    print(
        "manual caption PUT vs floor: "
        + ", ".join(f"{db} {100 * r:.0f}%" for db, r in ratios.items())
        + " (goal ≥ 70%)"
    )


if __name__ == "__main__":
    main()
