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
from typing import get_args

import httpx

from tailorset.archive import CAPTION_SUFFIXES, METADATA_NAMES
from tailorset.client import DEFAULT_URL, ApiError, BulkUploadStatus, Client, ExportFormat

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}


def register(commands: argparse._SubParsersAction) -> None:
    """Add the client commands to the `tailorset` parser."""
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument("--url", help=f"the server (default: $TAILORSET_URL, else {DEFAULT_URL})")
    server.add_argument("--token", help="an API token (default: $TAILORSET_TOKEN)")

    p = commands.add_parser(
        "push", parents=[server], help="upload a folder of images, with their captions, into a dataset"
    )
    p.add_argument(
        "directory", type=Path,
        help="images (JPEG, PNG, WebP) with captions beside them (NAME.txt, NAME.caption) or in metadata.jsonl "
        "(file_name, text) or metadata.csv (file_name, caption)",
    )  # fmt: skip
    p.add_argument("--dataset", type=int, required=True, help="the dataset's id")
    p.set_defaults(run=push)

    p = commands.add_parser("pull", parents=[server], help="download a dataset into a folder a trainer reads")
    p.add_argument("--dataset", type=int, required=True, help="the dataset's id")
    p.add_argument("--format", choices=get_args(ExportFormat), default="kohya", help="layout (default: kohya)")
    p.add_argument("directory", type=Path, help="a new or empty folder")
    p.set_defaults(run=pull)

    for name, direction, other in (("push-remote", "to", "the server to copy it to"),
                                   ("pull-remote", "from", "the server to copy it from")):  # fmt: skip
        p = commands.add_parser(
            name, parents=[server],
            help=f"copy a dataset with its captions {direction} another server that speaks Bria's API (Bria too)",
        )  # fmt: skip
        p.add_argument(
            "dataset", type=int, help=f"the dataset's id on {'this' if direction == 'to' else 'that'} server"
        )
        p.add_argument(f"--{direction}", required=True, dest="remote_url", metavar="URL", help=other)
        p.add_argument(
            f"--{direction}-token", required=True, dest="remote_token", metavar="TOKEN", help="its API token"
        )
        p.add_argument("--project", type=int, help="put the copy in this project (default: a copy of the project)")
        p.set_defaults(run=push_remote if direction == "to" else pull_remote)

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
    """The images under `directory` (hidden files skipped), and the captions that go with them: a .txt or
    .caption beside an image, and caption tables (metadata.jsonl, metadata.csv) — the server reads them."""
    if not directory.is_dir():
        raise ValueError(f"{directory} is not a folder.")
    images, captions = [], {}  # photo.png and photo.jpg share photo.txt, sent once
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(directory).parts):
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES:
            images.append(path)
            for suffix in CAPTION_SUFFIXES:
                if (caption := path.with_suffix(suffix)).is_file():
                    captions[caption] = None
        elif path.name.lower() in METADATA_NAMES:
            captions[path] = None
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
    print(f"Imported {status.done} images into dataset {dataset_id} ({captions} caption files sent).")
    if status.skipped:
        print(f"Skipped {status.skipped} already in the dataset.")
    for note in status.uncaptioned_images:
        print(f"  no caption: {note.filename} (captioned automatically)")
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


# --- server to server -------------------------------------------------------------------------


@_client_command
def push_remote(client: Client, args: argparse.Namespace) -> int:
    with Client(args.remote_url, args.remote_token) as remote:
        return _copy(client, remote, args.dataset, args.project, args.remote_url)


@_client_command
def pull_remote(client: Client, args: argparse.Namespace) -> int:
    with Client(args.remote_url, args.remote_token) as remote:
        return _copy(
            remote, client, args.dataset, args.project, args.url or os.environ.get("TAILORSET_URL") or DEFAULT_URL
        )


PROJECT_FIELDS = ("project_name", "project_description", "ip_name", "ip_description", "ip_medium", "ip_type")


def _copy(source: Client, target: Client, dataset_id: int, project_id: int | None, where: str) -> int:
    """A new dataset on `target` with the images and captions of `dataset_id` on `source`, through Bria's
    documented endpoints only (create project and dataset, PUT the prefix or visual_schema, Upload Image as
    base64 JSON, Update Image Caption), so that either side can be Bria itself."""
    dataset = source.dataset(dataset_id)
    if project_id is None:
        project = source.project(dataset.project_id)
        project_id = target.create_project(**{name: project.get(name) for name in PROJECT_FIELDS})["id"]
    copy = target.create_dataset(project_id, dataset.name, dataset.training_version)
    guidance = {"caption_prefix": dataset.caption_prefix, "visual_schema": dataset.visual_schema}
    guidance = {name: value for name, value in guidance.items() if value is not None}
    if guidance:  # before the uploads, so that the target's own captions follow it too
        target.update_dataset(copy.id, **guidance)
    bar, copied, failures = Bar(f"Copying {dataset.images_count} images", dataset.images_count), 0, []
    for image in source.images(dataset_id):
        try:
            uploaded = target.upload_image_data(copy.id, source.image_bytes(image), image.image_name)
            if image.caption is not None and uploaded.caption != image.caption:
                target.set_caption(copy.id, uploaded.id, image.caption)
            copied += 1
        except ApiError as exc:
            failures.append(f"{image.image_name or image.id}: {exc.message} (HTTP {exc.status})")
        bar.advance(1)
    bar.close()
    print(f"Copied {copied} images of dataset {dataset_id} to {where} as dataset {copy.id} in project {project_id}.")
    for failure in failures:
        print(f"  failed: {failure}", file=sys.stderr)
    return 1 if failures else 0
