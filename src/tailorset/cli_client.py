"""`tailorset push`, `pull`, `caption` and `check`: the command line of a client, on `tailorset.client`.

The server and the token come from --url/--token or TAILORSET_URL/TAILORSET_TOKEN. A refusal is
printed as the server's own sentence, with exit status 1."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path, PurePosixPath

import httpx

from tailorset.client import DEFAULT_URL, ApiError, BulkUploadStatus, Client

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}
CAPTION_SUFFIX = ".txt"


def register(commands: argparse._SubParsersAction) -> None:
    """Add the client commands to the `tailorset` parser."""
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument("--url", help=f"the server (default: $TAILORSET_URL, else {DEFAULT_URL})")
    server.add_argument("--token", help="an API token (default: $TAILORSET_TOKEN)")

    p = commands.add_parser(
        "push", parents=[server], help="upload a folder of images, with their .txt captions, into a dataset"
    )
    p.add_argument("directory", type=Path, help="images (JPEG, PNG, WebP) and, beside each, an optional NAME.txt")
    p.add_argument("--dataset", type=int, required=True, help="the dataset's id")
    p.set_defaults(run=push)

    p = commands.add_parser("pull", parents=[server], help="download a dataset into a folder a trainer reads")
    p.add_argument("--dataset", type=int, required=True, help="the dataset's id")
    p.add_argument("--format", choices=("kohya", "hf", "jsonl"), default="kohya", help="layout (default: kohya)")
    p.add_argument("directory", type=Path, help="a new or empty folder")
    p.set_defaults(run=pull)

    caption = commands.add_parser("caption", help="set or regenerate one image's caption")
    actions = caption.add_subparsers(dest="action", required=True)
    p = actions.add_parser("set", parents=[server], help="write an image's caption (caption_source manual)")
    p.add_argument("dataset", type=int, help="the dataset's id")
    p.add_argument("image", help="the image's id, or its name")
    p.add_argument("text", help="the caption; - reads it from standard input (e.g. a FIBO JSON caption)")
    p.set_defaults(run=caption_set)
    p = actions.add_parser("regenerate", parents=[server], help="have the captioner write it anew (automatic)")
    p.add_argument("dataset", type=int, help="the dataset's id")
    p.add_argument("image", help="the image's id, or its name")
    p.set_defaults(run=caption_regenerate)

    p = commands.add_parser(
        "check", parents=[server], help="print a dataset's health report; exit 1 if anything should stop training"
    )
    p.add_argument("dataset", type=int, help="the dataset's id")
    p.add_argument("--strict", action="store_true", help="warnings fail the check too")
    p.add_argument("--wait", type=float, default=300, help="seconds to wait for the report to be complete (300)")
    p.add_argument("--json", action="store_true", help="print the whole report as JSON")
    p.set_defaults(run=check)


def _client_command(command):
    """Open the client from the flags; turn refusals and network errors into one line and status 1."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            with Client(args.url, args.token) as client:
                return command(client, args)
        except ApiError as exc:
            print(f"error: {exc.message} (HTTP {exc.status})", file=sys.stderr)
        except httpx.HTTPError as exc:
            url = args.url or os.environ.get("TAILORSET_URL") or DEFAULT_URL
            print(f"error: could not talk to {url} ({type(exc).__name__}: {exc})", file=sys.stderr)
        except (ValueError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
        return 1

    return run


class Bar:
    """A one-line progress bar on standard error (a line every 10 % when that is not a terminal)."""

    def __init__(self, label: str, total: int, unit: str = ""):
        self.label, self.total, self.unit, self.done = label, total, unit, 0
        self._tty = sys.stderr.isatty()
        self._shown = -1

    def advance(self, amount: int) -> None:
        self.update(self.done + amount)

    def update(self, done: int, total: int | None = None) -> None:
        self.done, self.total = done, total or self.total
        if self.total:
            fraction = min(1.0, self.done / self.total)
            step = int(fraction * (100 if self._tty else 10))
            bar = "#" * int(fraction * 30) + "." * (30 - int(fraction * 30))
            line = f"{self.label} [{bar}] {self._amount(self.done)}/{self._amount(self.total)}"
        else:  # the size is not known ahead (a download): how much so far
            step, line = (
                self.done // (1_000_000 if self._tty else 20_000_000),
                f"{self.label} {self._amount(self.done)}",
            )
        if step != self._shown:
            self._shown = step
            print(("\r" if self._tty else "") + line, end="" if self._tty else "\n", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._tty:
            print(file=sys.stderr)

    def _amount(self, value: int) -> str:
        return f"{value / 1e6:.1f} MB" if self.unit == "bytes" else str(value)


def folder_files(directory: Path) -> tuple[list[Path], list[Path]]:
    """The images under `directory` (hidden files skipped) and the .txt captions beside them."""
    if not directory.is_dir():
        raise ValueError(f"{directory} is not a folder.")
    images, captions = [], {}  # photo.png and photo.jpg share photo.txt, sent once
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(directory).parts):
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES:
            images.append(path)
            caption = path.with_suffix(CAPTION_SUFFIX)
            if caption.is_file():
                captions[caption] = None
    return images, list(captions)


@_client_command
def push(client: Client, args: argparse.Namespace) -> int:
    images, captions = folder_files(args.directory)
    if not images:
        raise ValueError(f"{args.directory} holds no JPEG, PNG or WebP images.")
    with tempfile.TemporaryFile() as zipped:
        # Stored, not deflated: the images are compressed already. The ZIP is the bulk upload's format.
        with zipfile.ZipFile(zipped, "w", zipfile.ZIP_STORED) as archive:
            for path in images + captions:
                archive.write(path, PurePosixPath(*path.relative_to(args.directory).parts).as_posix())
        bar = Bar(f"Uploading {len(images)} images", zipped.tell(), unit="bytes")
        client.bulk_upload(args.dataset, zipped, progress=bar.advance)
        bar.update(bar.total)
        bar.close()
    bar = Bar("Importing", len(images))
    status = client.wait_for_bulk_upload(
        args.dataset, poll_seconds=1.5, on_status=lambda s: bar.update(s.total_processed, s.total)
    )
    bar.close()
    return _report(args.dataset, status, len(captions))


def _report(dataset_id: int, status: BulkUploadStatus, captions: int) -> int:
    if status.status == "failed":
        print(f"error: the upload failed: {status.error}", file=sys.stderr)
        return 1
    print(f"Imported {status.done} images into dataset {dataset_id} ({captions} .txt captions sent).")
    if status.skipped:
        print(f"Skipped {status.skipped} already in the dataset.")
    for failure in status.failed_images:
        print(f"  failed: {failure.filename}: {failure.error_message}", file=sys.stderr)
    if status.failed:
        print(f"{status.failed} files were not imported.", file=sys.stderr)
    return 1 if status.failed else 0


@_client_command
def pull(client: Client, args: argparse.Namespace) -> int:
    target: Path = args.directory
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ValueError(f"{target} is not an empty folder; pull into a new one.")
    started = time.monotonic()
    with tempfile.TemporaryFile() as download:
        bar = Bar(f"Downloading dataset {args.dataset}", 0, unit="bytes")
        size = client.export(args.dataset, args.format, download, progress=bar.advance)
        bar.close()
        download.seek(0)
        target.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(download) as archive:
            names = _safe_members(archive, target)
            archive.extractall(target, members=names)
    images = sum(PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES for name in names)
    print(f"{images} images ({size / 1e6:.1f} MB, {args.format}) in {target} after {time.monotonic() - started:.1f} s.")
    return 0


def _safe_members(archive: zipfile.ZipFile, target: Path) -> list[str]:
    """Every entry must land inside `target` (whatever the server sends)."""
    root = target.resolve()
    names = archive.namelist()
    for name in names:
        if not (root / name).resolve().is_relative_to(root):
            raise ValueError(f"The download holds an entry outside the folder ({name!r}); nothing was written.")
    return names


def _image_id(client: Client, dataset_id: int, image: str) -> int:
    """An image id as given, or the id of the image with that name (or that name's stem)."""
    if image.isdigit():
        return int(image)
    matches = [
        i.id for i in client.images(dataset_id) if image in (i.image_name, PurePosixPath(i.image_name or "").stem)
    ]
    if len(matches) != 1:
        found = "no image" if not matches else f"{len(matches)} images"
        raise ValueError(f"Dataset {dataset_id} has {found} named {image!r}; give the image's id.")
    return matches[0]


@_client_command
def caption_set(client: Client, args: argparse.Namespace) -> int:
    text = sys.stdin.read().strip() if args.text == "-" else args.text
    image = client.set_caption(args.dataset, _image_id(client, args.dataset, args.image), text)
    print(image.caption)
    return 0


@_client_command
def caption_regenerate(client: Client, args: argparse.Namespace) -> int:
    image = client.regenerate_caption(args.dataset, _image_id(client, args.dataset, args.image))
    print(image.caption)
    return 0


@_client_command
def check(client: Client, args: argparse.Namespace) -> int:
    """Exit status 0 when nothing blocks training (and, with --strict, nothing warns), 1 otherwise: a gate for a
    training pipeline. Waits while the server is still measuring or linting (the report says `complete`)."""
    deadline = time.monotonic() + args.wait
    report = client.health(args.dataset)
    while not report["complete"] and time.monotonic() < deadline:
        time.sleep(1)
        report = client.health(args.dataset)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_health(report)
    if not report["complete"]:
        print(f"error: the report is still being computed after {args.wait:g} s; run check again.", file=sys.stderr)
        return 1
    return 1 if report["blocking"] or (args.strict and report["warnings"]) else 0


def _print_health(report: dict) -> None:
    verdict = "ready" if report["ready"] else "NOT READY"
    print(
        f"Dataset {report['dataset_id']} ({report['training_version']}, {report['status']}), "
        f"{report['images_count']} images: {verdict}; {report['blocking']} blocking, {report['warnings']} warnings."
    )
    for found in sorted(report["problems"], key=lambda p: p["severity"] != "blocking"):
        ids = found["image_ids"]
        images = f" Images: {', '.join(map(str, ids[:12]))}{' …' if len(ids) > 12 else ''}." if ids else ""
        print(f"  {'BLOCKING' if found['severity'] == 'blocking' else 'warning '}  {found['message']}{images}")
    review = report["review"]
    total = report["images_count"]
    print(f"Review: {total - review['unreviewed']} of {total} reviewed ({review['flagged']} flagged).")
