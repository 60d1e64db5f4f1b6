"""Export: a dataset as a ZIP a trainer reads, streamed from storage as it is written.

Memory stays flat whatever the dataset's size: images are read a page at a time and each file is
copied from storage chunk by chunk into the archive, which leaves in pieces as it grows.

* kohya — `1_<concept>/<stem>.<ext>` with `<stem>.txt` beside it: sd-scripts' `--train_data_dir`
  layout (a folder named `<repeats>_<class tokens>`; the tokens are used for images without a
  caption, and the prefix is what a legacy dataset's captions begin with).
* hf — `train/metadata.jsonl` (`file_name`, `text`, `caption_source`) beside the images: the
  `imagefolder` layout of Hugging Face `datasets`, with the metadata in the split's folder where
  it is found.
* jsonl — `images/…` and `dataset.jsonl`, one JSON record per image with every field we keep.
* ai-toolkit — `<stem>.<ext>` with `<stem>.txt` beside it, at the top: ostris' ai-toolkit reads a folder of
  images and same-named captions (`folder_path`), with no `<repeats>_<tokens>` folder.
* fibo — `<stem>.<ext>` and `metadata.csv` (`file_name`, `caption`) at the top: what Bria's FIBO fine-tuning
  (`fine_tune_fibo.py --dataset_name DIR`) loads with Hugging Face `datasets`, then `json.loads` each caption.
  FIBO datasets only; an image without a caption is left out, as that script refuses an empty one.

FIBO captions are their JSON: the caption string as stored, and in jsonl the object itself."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from tailorset import imaging
from tailorset.archive import ZipStream
from tailorset.db import repository as repo
from tailorset.db.models import Dataset, Image, utcnow
from tailorset.domain import lifecycle
from tailorset.domain.errors import Invalid, NotFound
from tailorset.domain.filenames import portable_name
from tailorset.services import Services

FORMATS = ("kohya", "hf", "jsonl", "ai-toolkit", "fibo")
FOLDERS = {"hf": "train", "jsonl": "images", "ai-toolkit": "", "fibo": ""}  # kohya's is named after the dataset
SIDECARS = ("kohya", "ai-toolkit")  # a .txt caption beside each image
DOWNLOAD_SECONDS = 3600  # how long a GET /datasets/{id}/download URL stays valid
CAPTIONS_FILE = "captions.jsonl"  # a download URL names it, or `<format>.zip`
PAGE = 200  # image rows read at a time
FLUSH_BYTES = 1024 * 1024  # send the archive on once this much is ready
EXTENSIONS = dict(imaging.FORMATS.values())  # content type → file extension


@dataclass(frozen=True)
class Export:
    filename: str
    chunks: AsyncIterator[bytes]


async def export(services: Services, org_id: int, dataset_id: int, format: str) -> Export:
    """Checks the dataset now (so errors are answered before the first byte), then streams."""
    async with services.db.read() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id)
    _check_format(dataset, format)
    return Export(f"dataset-{dataset.id}-{format}.zip", _archive(services, dataset, format))


def _check_format(dataset: Dataset, format: str) -> None:
    if format not in FORMATS:  # the API checks its query; a signed download URL's name is checked here
        raise NotFound(f"There is no {format!r} export.")
    if format == "fibo" and dataset.training_version != lifecycle.FIBO:
        raise Invalid(
            f"format fibo is for FIBO datasets, whose captions are JSON; dataset {dataset.id} has text captions "
            "(export it as kohya, ai-toolkit or hf)."
        )


def safe_stem(name: str | None) -> str:
    """A file name stem that is safe on every filesystem, from an image's name."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    if PurePosixPath(base).suffix.lower() in (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"):
        base = PurePosixPath(base).stem
    return portable_name(base)


class FileNames:
    """Unique stems (ignoring case, for Windows and macOS), so no two images share a caption file."""

    def __init__(self):
        self._taken: set[str] = set()

    def take(self, image: Image) -> str:
        base = safe_stem(image.image_name) or f"image_{image.id}"
        stem, extra = base, 1
        while stem.casefold() in self._taken:
            stem = f"{base}_{image.id}" if extra == 1 else f"{base}_{image.id}_{extra}"
            extra += 1
        self._taken.add(stem.casefold())
        return stem


def kohya_folder(dataset: Dataset) -> str:
    concept = safe_stem((dataset.caption_prefix or "").rstrip(" ,;:")) or safe_stem(dataset.name) or "dataset"
    return f"1_{concept}"


async def _images(services: Services, dataset_id: int) -> AsyncIterator[Image]:
    """Live images in upload order, a page per short read transaction."""
    after = None
    while True:
        async with services.db.read() as session:
            page = await repo.list_images(session, dataset_id, limit=PAGE, after_id=after)
        for image in page:
            yield image
        if len(page) < PAGE:
            return
        after = page[-1].id


def _record(dataset: Dataset, image: Image, file_name: str) -> dict:
    caption = image.caption
    if caption is not None and dataset.training_version == lifecycle.FIBO:
        caption = json.loads(caption)
    return {
        "file_name": file_name, "id": image.id, "image_name": image.image_name, "caption": caption,
        "caption_source": image.caption_source, "caption_confidence": image.caption_confidence,
        "caption_signals": json.loads(image.caption_signals) if image.caption_signals else None,
        "width": image.width, "height": image.height,
        "content_type": image.content_type, "sha256": image.sha256, "upload_source_url": image.upload_source_url,
        "created_at": image.created_at.isoformat(), "updated_at": image.updated_at.isoformat(),
    }  # fmt: skip


async def _archive(services: Services, dataset: Dataset, format: str) -> AsyncIterator[bytes]:
    folder = kohya_folder(dataset) if format == "kohya" else FOLDERS[format]
    out, names, records = ZipStream(), FileNames(), []
    async for image in _images(services, dataset.id):
        if format == "fibo" and image.caption is None:
            continue  # fine_tune_fibo.py refuses an empty caption
        file_name = f"{names.take(image)}.{EXTENSIONS.get(image.content_type, 'bin')}"
        path = f"{folder}/{file_name}" if folder else file_name
        with out.open(path, image.created_at, image.byte_size) as entry:
            async for chunk in services.store(image.storage).stream(image.file_key):
                entry.write(chunk)
                if out.pending >= FLUSH_BYTES:
                    yield out.take()
        if format in SIDECARS and image.caption is not None:  # no caption: kohya uses the folder's tokens
            out.add(f"{path.rsplit('.', 1)[0]}.txt", image.updated_at, image.caption.encode())
        elif format == "hf":
            records.append({"file_name": file_name, "text": image.caption, "caption_source": image.caption_source})
        elif format == "jsonl":
            records.append(_record(dataset, image, f"{folder}/{file_name}"))
        elif format == "fibo":
            records.append({"file_name": file_name, "caption": image.caption})
        if out.pending >= FLUSH_BYTES:
            yield out.take()
    if format in ("hf", "jsonl"):
        lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        out.add("train/metadata.jsonl" if format == "hf" else "dataset.jsonl", utcnow(), lines.encode())
    elif format == "fibo":
        table = io.StringIO()
        writer = csv.DictWriter(table, ["file_name", "caption"])
        writer.writeheader()
        writer.writerows(records)
        out.add("metadata.csv", utcnow(), table.getvalue().encode())
    yield out.close()


# --- Download Dataset: the same streams behind signed, expiring URLs --------------------------------------


def _download_key(org_id: int, dataset_id: int, name: str, expires: int) -> str:
    return f"download:{org_id}:{dataset_id}:{name}:{expires}"


async def download_urls(
    services: Services, base_url: str, org_id: int, dataset_id: int, format: str, now: float
) -> dict[str, str]:
    """Signed URLs of the dataset's ZIP (the export in `format`) and of its captions file, valid for an hour."""
    async with services.db.read() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id)  # yours, and not deleted
    _check_format(dataset, format)
    expires = int(now) + DOWNLOAD_SECONDS
    urls = {}
    for name, field in ((f"{format}.zip", "download_url"), (CAPTIONS_FILE, "captions_url")):
        signature = services.signer.signature(_download_key(org_id, dataset.id, name, expires))
        urls[field] = (
            f"{base_url.rstrip('/')}/downloads/datasets/{dataset.id}/{name}?org={org_id}&expires={expires}"
            f"&sig={signature}"
        )
    return urls


async def download(
    services: Services, org_id: int, dataset_id: int, name: str, expires: int, signature: str, now: float
) -> Export:
    """What a download URL names, if its signature holds and it has not expired (else: not found)."""
    key = _download_key(org_id, dataset_id, name, expires)
    if expires < now or not services.signer.verify(key, signature):
        raise NotFound("Download not found, or its link has expired; ask GET /datasets/{id}/download for a new one.")
    if name != CAPTIONS_FILE:
        return await export(services, org_id, dataset_id, name.removesuffix(".zip"))
    async with services.db.read() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id)
    return Export(f"dataset-{dataset.id}-captions.jsonl", _captions(services, dataset))


async def _captions(services: Services, dataset: Dataset) -> AsyncIterator[bytes]:
    """One JSON line per image: its file name in the dataset's ZIP, its caption and where the caption came from."""
    names, lines = FileNames(), []
    async for image in _images(services, dataset.id):
        file_name = f"images/{names.take(image)}.{EXTENSIONS.get(image.content_type, 'bin')}"
        record = {"file_name": file_name, "caption": image.caption, "caption_source": image.caption_source}
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
        if len(lines) >= PAGE:
            yield "".join(lines).encode()
            lines.clear()
    yield "".join(lines).encode()
