"""The API's own cost per request: tailorset against bare floors, driven by wrk, on SQLite and PostgreSQL.

For each database, one `tailorset serve` process (default log level: the access log is written, to a
file) and one floor process take turns under `wrk` (C keep-alive connections, S seconds a turn,
R rounds each, warm-up first). Three requests:

* `PUT …/images/{id}` with `{"caption": …}` (a manual caption; captions differ on every request, spread
  over 200 images). The floor parses the JSON body and does the write the request cannot do without: the
  guarded UPDATE (the image live, its dataset a live legacy draft of this organization; on PostgreSQL
  under a share lock on the dataset row) with RETURNING, and the caption-history INSERT, committed: one
  transaction of two statements on SQLite, one statement with data-modifying CTEs on PostgreSQL.
* `GET …/images/{id}`. The floor runs one SELECT of the image joined to its dataset (whose organization
  and tombstone decide whether the caller may see it) and returns the image as JSON.
* `GET /datasets/{id}` (the dataset and its first 200 images). The floor runs one SELECT of the dataset,
  a count and one SELECT of 200 image rows, and returns them as JSON.

A floor is a bare Starlette app on uvicorn with the same server options (httptools, uvloop), doing only
the database work the request cannot avoid, on the same database, with the most direct driver: the
sqlite3 module on the event loop (one statement on a local file takes microseconds; WAL,
synchronous=NORMAL as the service), or twenty psycopg async connections in autocommit for PostgreSQL, as
many as the service's pool. No auth, no rate limit, no signed URLs, no log, no response model.

wrk is the load generator (Debian's `wrk`; this script installs it with apt-get when it is missing): one
C program on epoll, which drives these floors at thousands of requests per second here; the figure
printed as "wrk ceiling" is wrk against a static Starlette response, to show that it is not the
bottleneck. Prints, per database and request: median req/s over the rounds, median p50 and p99, and the
service's share of its floor; the last line holds the figures (goal: ≥ 50% of the floor, p99 ≤ 25 ms).

Run from the repo root: `python bench/api_overhead.py [--seconds 5] [--rounds 3] [--connections 16]
[--databases sqlite postgresql] [--requests put get dataset]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from harness import copy_images, free_port, peak_rss_mb, photo_b64, server, wait_until_up

IMAGES = 200

FLOOR_APP = r"""
import contextlib, json, os, sqlite3
from datetime import datetime, timezone
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

URL, ORG = os.environ["FLOOR_DATABASE_URL"], int(os.environ["FLOOR_ORG"])
SQLITE = URL.startswith("sqlite")
COLUMNS = "id, dataset_id, caption, caption_source, image_name, file_key, thumbnail_key, created_at, updated_at"
# The request's own database work, as the service must do it, in the plainest SQL: the image, if it is live
# in a dataset of this organization; the caption written only if the dataset is a live legacy draft (on
# PostgreSQL under a share lock on the dataset, which completion's exclusive lock waits for), with the
# review state a manual caption leaves, and the revision recorded. No auth, rate limit, URLs or log.
IMAGE = (f"SELECT d.organization_id AS org, d.deleted_at AS dataset_deleted_at, i.deleted_at, "
         f"{', '.join('i.' + c for c in COLUMNS.split(', '))} "
         "FROM datasets d LEFT JOIN images i ON i.id = %s AND i.dataset_id = d.id WHERE d.id = %s")
UPDATE = (f"UPDATE images SET caption = %s, caption_source = 'manual', caption_confidence = NULL, "
          f"caption_signals = NULL, review_state = 'approved', reviewed_at = %s, updated_at = %s "
          f"WHERE id = %s AND dataset_id = %s AND deleted_at IS NULL AND EXISTS (SELECT 1 FROM datasets "
          f"WHERE id = %s AND organization_id = %s AND status = 'draft' AND deleted_at IS NULL "
          f"AND training_version != 'fibo'{'' if SQLITE else ' FOR SHARE'}) RETURNING {COLUMNS}")
REVISION = ("INSERT INTO caption_revisions (image_id, caption, caption_source, actor, created_at) "
            "VALUES (%s, %s, 'manual', 'token:floor', %s)")
# PostgreSQL: both in one statement (data-modifying CTEs), as the service sends them.
WRITE = (f"WITH updated AS ({UPDATE}), revision AS (INSERT INTO caption_revisions (image_id, caption, "
         f"caption_source, actor, created_at) SELECT id, caption, caption_source, 'token:floor', updated_at "
         f"FROM updated) SELECT * FROM updated")

if SQLITE:
    db = sqlite3.connect(URL.split("///", 1)[1], isolation_level=None, check_same_thread=False)
    for pragma in ("journal_mode=WAL", "busy_timeout=30000", "synchronous=NORMAL"):
        db.execute(f"PRAGMA {pragma}")
    db.row_factory = sqlite3.Row

    async def read(sql, params):
        return [dict(r) for r in db.execute(sql.replace("%s", "?"), params).fetchall()]

    async def write_caption(caption, now, image_id, dataset_id):
        now = now.replace(tzinfo=None)  # stored as the service stores it: naive UTC
        db.execute("BEGIN IMMEDIATE")
        try:
            rows = db.execute(UPDATE.replace("%s", "?"), (caption, now, now, image_id, dataset_id, dataset_id, ORG))
            row = rows.fetchone()
            if row is not None:
                db.execute(REVISION.replace("%s", "?"), (image_id, caption, now))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return dict(row)
else:
    import asyncio
    import psycopg
    from psycopg.rows import dict_row

    pool = asyncio.Queue()  # autocommit connections, as many as the service's pool holds

    async def read(sql, params):
        connection = await pool.get()
        try:
            return await (await connection.cursor(row_factory=dict_row).execute(sql, params)).fetchall()
        finally:
            pool.put_nowait(connection)

    async def write_caption(caption, now, image_id, dataset_id):
        return (await read(WRITE, (caption, now, now, image_id, dataset_id, dataset_id, ORG)))[0]


def reply(body):
    return Response(json.dumps(body, default=str), media_type="application/json")


async def put_caption(request):
    body = json.loads(await request.body())
    now = datetime.now(timezone.utc)
    params = request.path_params
    return reply(await write_caption(body["caption"], now, params["image_id"], params["dataset_id"]))


async def get_image(request):
    rows = await read(IMAGE, (request.path_params["image_id"], request.path_params["dataset_id"]))
    row = rows[0]
    assert row["org"] == ORG and row["dataset_deleted_at"] is None and row["deleted_at"] is None
    return reply({c: row[c] for c in COLUMNS.split(", ")})


async def get_dataset(request):
    dataset_id = request.path_params["dataset_id"]
    dataset = (await read("SELECT * FROM datasets WHERE id = %s", (dataset_id,)))[0]
    count = await read("SELECT count(*) AS n FROM images WHERE dataset_id = %s AND deleted_at IS NULL", (dataset_id,))
    images = await read(f"SELECT {COLUMNS} FROM images WHERE dataset_id = %s AND deleted_at IS NULL "
                        "ORDER BY id LIMIT 200", (dataset_id,))
    return reply({**dataset, "images_count": count[0]["n"], "images": images})


async def static(request):
    return Response(b'{"ok":true}', media_type="application/json")


@contextlib.asynccontextmanager
async def lifespan(app):
    if not SQLITE:
        url = URL.replace("postgresql+psycopg://", "postgresql://")
        for _ in range(20):
            pool.put_nowait(await psycopg.AsyncConnection.connect(url, autocommit=True))
    yield


app = Starlette(routes=[
    Route("/datasets/{dataset_id:int}/images/{image_id:int}", put_caption, methods=["PUT"]),
    Route("/datasets/{dataset_id:int}/images/{image_id:int}", get_image, methods=["GET"]),
    Route("/datasets/{dataset_id:int}", get_dataset, methods=["GET"]),
    Route("/static", static, methods=["GET"]),
], lifespan=lifespan)
"""

# wrk: each request picks the next image (and, for PUT, a caption no earlier request sent); `done` prints
# the figures as one JSON line. Latency percentiles are wrk's own (microseconds).
LUA = r"""
local paths, n, i = {}, 0, 0
for path in string.gmatch(os.getenv("WRK_PATHS"), "[^ ]+") do n = n + 1; paths[n] = path end
local method, token = os.getenv("WRK_METHOD"), os.getenv("WRK_TOKEN")
wrk.headers["Content-Type"] = "application/json"
if token ~= "" then wrk.headers["api_token"] = token end
local thread_id = 0
setup = function(thread) thread_id = thread_id + 1; thread:set("tid", thread_id) end
request = function()
  i = i + 1
  local path = paths[(i % n) + 1]
  if method == "PUT" then
    return wrk.format("PUT", path, nil, '{"caption": "a caption, version ' .. tid .. "-" .. i .. '"}')
  end
  return wrk.format("GET", path)
end
done = function(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  io.write(string.format('WRK {"requests": %d, "seconds": %f, "errors": %d, "p50": %f, "p99": %f}\n',
    summary.requests, summary.duration / 1e6, errors, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def ensure_wrk() -> str:
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
    return shutil.which("wrk") or sys.exit("wrk is needed: apt-get install wrk")


def wrk(base: str, paths: list[str], method: str, token: str, seconds: float, connections: int, lua: Path) -> dict:
    env = {**os.environ, "WRK_PATHS": " ".join(paths), "WRK_METHOD": method, "WRK_TOKEN": token}
    out = subprocess.run(
        # A 10 s timeout: on a loaded machine a slow answer is slow, not an error (wrk's default is 2 s).
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "--latency", "-s", str(lua), base],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    figures = json.loads(out.split("WRK ", 1)[1].splitlines()[0])
    figures["rps"] = figures["requests"] / figures["seconds"]
    return figures


@contextmanager
def floor_process(env: dict, home: str, org_id: int):
    Path(home, "floor_app.py").write_text(FLOOR_APP)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "floor_app:app", "--port", str(port), "--log-level", "warning",
         "--no-access-log", "--loop", "uvloop", "--http", "httptools"],
        env={**env, "FLOOR_DATABASE_URL": env["TAILORSET_DATABASE_URL"], "FLOOR_ORG": str(org_id),
             "PYTHONPATH": home}, cwd=home,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base + "/static", process)
        yield base
    finally:
        process.terminate()
        process.wait()


def median(rounds: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rounds)


def bench_database(database: str, requests: list[str], seconds: float, rounds: int, connections: int, lua: Path):
    results = {}
    with server(database, log_level="info") as api:
        dataset_id = api.dataset()
        upload = f"/datasets/{dataset_id}/images"
        first = api.http.post(upload, json={"file": photo_b64()}).json()
        ids = [first["id"]] + copy_images(api, [first["id"]], IMAGES - 1)
        cases = {
            "put": ("PUT", [f"/tailored-gen{upload}/{i}" for i in ids], [f"{upload}/{i}" for i in ids]),
            "get": ("GET", [f"/tailored-gen{upload}/{i}" for i in ids], [f"{upload}/{i}" for i in ids]),
            "dataset": ("GET", [f"/tailored-gen/datasets/{dataset_id}"], [f"/datasets/{dataset_id}"]),
        }
        with floor_process(api.env, api.env["TAILORSET_DATA_DIR"], organization_of(api, dataset_id)) as floor:
            ceiling = wrk(floor, ["/static"], "GET", "", seconds, connections, lua)
            print(f"{database}: wrk ceiling (static response on the floor's server) {ceiling['rps']:,.0f} req/s")
            for name in requests:
                method, ours, theirs = cases[name]
                wrk(api.base, ours, method, api.token, 1, connections, lua)  # warm-up, both
                wrk(floor, theirs, method, "", 1, connections, lua)
                service_rounds, floor_rounds = [], []
                for _ in range(rounds):  # taking turns: both see the machine as it is at the time
                    service_rounds.append(wrk(api.base, ours, method, api.token, seconds, connections, lua))
                    floor_rounds.append(wrk(floor, theirs, method, "", seconds, connections, lua))
                errors = sum(r["errors"] for r in service_rounds + floor_rounds)
                if errors:
                    sys.exit(f"{database} {name}: {errors} requests failed")
                results[name] = report(database, name, service_rounds, floor_rounds)
        results["rss_mb"] = peak_rss_mb(api.process.pid)
        print(f"{database}: peak RSS of the API process {results['rss_mb']:.0f} MB")
    return results


def organization_of(api, dataset_id: int) -> int:
    from sqlalchemy import create_engine, text

    from tailorset.db.engine import sync_url

    engine = create_engine(sync_url(api.env["TAILORSET_DATABASE_URL"]))
    with engine.connect() as connection:
        org = connection.execute(text("SELECT organization_id FROM datasets WHERE id = :d"), {"d": dataset_id})
        org_id = org.scalar_one()
    engine.dispose()
    return org_id


def report(database: str, name: str, service: list[dict], floor: list[dict]) -> dict:
    label = {"put": "PUT caption", "get": "GET image", "dataset": "GET dataset (200 images)"}[name]
    print(f"{database} {label}: {len(service)} rounds each, medians")
    for who, rounds in (("tailorset", service), ("floor", floor)):
        each = ", ".join(f"{r['rps']:,.0f}" for r in rounds)
        print(f"  {who:<9} {median(rounds, 'rps'):8,.0f} req/s   p50 {median(rounds, 'p50'):6.1f} ms   "
              f"p99 {median(rounds, 'p99'):6.1f} ms   (rounds: {each})")  # fmt: skip
    share = median(service, "rps") / median(floor, "rps")
    print(f"  tailorset reaches {100 * share:.0f}% of its floor")
    return {"share": share, "p99": median(service, "p99")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--requests", nargs="+", default=["put", "get", "dataset"], choices=["put", "get", "dataset"])
    args = parser.parse_args()
    ensure_wrk()
    print(f"load average before: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    with tempfile.TemporaryDirectory() as tmp:
        lua = Path(tmp, "bench.lua")
        lua.write_text(LUA)
        results = {
            db: bench_database(db, args.requests, args.seconds, args.rounds, args.connections, lua)
            for db in args.databases
        }
    print(f"load average after: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    print(
        "API share of floor (goal ≥ 50%, p99 ≤ 25 ms): "
        + "; ".join(
            f"{db} " + ", ".join(f"{n} {100 * r[n]['share']:.0f}% p99 {r[n]['p99']:.0f} ms" for n in args.requests)
            for db, r in results.items()
        )
    )


if __name__ == "__main__":
    main()
