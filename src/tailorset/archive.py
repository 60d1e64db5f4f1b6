"""ZIP archives: reading a bulk upload's without trusting it, and writing an export's as a stream.

Reading (pure zipfile, no other I/O): the entry count is read from the end record before zipfile
builds its list, the total the entries declare is capped (zip bombs), and an entry is never read
past the size it declares — zipfile stops there and checks the CRC, so a lying header is a damaged
entry, not a bomb (only stored and deflated entries are read: zipfile bounds those). Names are never
used as paths: an unsafe name is refused, not sanitised."""

from __future__ import annotations

import csv
import io
import json
import re
import struct
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath
from typing import BinaryIO

from tailorset.domain.errors import DomainError, Invalid, TooLarge

MAX_NAME = 255  # an image's name, as for a single upload
# Caption sidecars, same directory and stem as the image: .txt (kohya, ai-toolkit, most tools) and .caption.
CAPTION_SUFFIXES = (".txt", ".caption")
# Caption tables, rows naming images relative to the table's folder: Hugging Face imagefolder's metadata.jsonl
# (file_name + text) and Bria's FIBO fine-tuning metadata.csv (file_name + caption).
METADATA_NAMES = ("metadata.jsonl", "metadata.csv")
CAPTION_COLUMNS = ("caption", "text")
MAX_METADATA_BYTES = 32 * 1024 * 1024  # every caption of a table is held while the ZIP imports
_JUNK_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}  # written by file managers, never meant to be uploaded
_END_RECORD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"


@dataclass(frozen=True)
class Limits:
    max_entries: int
    max_uncompressed_bytes: int


DIRECTORY_BYTES_PER_ENTRY = 1024  # a central directory record: 46 bytes, a name of up to 255, extra fields


def _directory(file: BinaryIO) -> tuple[int, int]:
    """The number of entries and the size of the central directory, as the end record declares them
    (zip64 included): zipfile reads the whole directory into memory before anything can be checked."""
    size = file.seek(0, 2)
    tail_size = min(size, 22 + 0xFFFF)  # the record, and a comment of at most 64 KB
    file.seek(size - tail_size)
    tail = file.read(tail_size)
    at = tail.rfind(_END_RECORD)
    if at < 0 or len(tail) - at < 22:
        raise zipfile.BadZipFile("no end of central directory record")
    count, directory_size = struct.unpack("<HI", tail[at + 10 : at + 16])
    locator_at = size - tail_size + at - 20
    if (count == 0xFFFF or directory_size == 0xFFFFFFFF) and locator_at >= 0:
        file.seek(locator_at)
        locator = file.read(20)
        if locator[:4] == _ZIP64_LOCATOR:
            (record_at,) = struct.unpack("<Q", locator[8:16])
            file.seek(record_at)
            record = file.read(56)
            if len(record) == 56:
                count, directory_size = struct.unpack("<QQ", record[32:48])
    return count, directory_size


def open_zip(file: BinaryIO, limits: Limits, what: str = "The ZIP") -> zipfile.ZipFile:
    """Open an archive from a seekable file, refusing what is not a ZIP or exceeds the limits."""
    try:
        count, directory_size = _directory(file)
        if count > limits.max_entries:
            raise TooLarge(f"{what} holds {count:,} files; the limit is {limits.max_entries:,}.")
        if directory_size > limits.max_entries * DIRECTORY_BYTES_PER_ENTRY:
            raise TooLarge(f"{what}'s list of files is {directory_size:,} bytes, too long for a ZIP of images.")
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, struct.error):
        raise Invalid(f"{what} is not a valid ZIP archive.") from None
    infos = archive.infolist()
    if len(infos) > limits.max_entries:  # the end record can understate what the directory holds
        raise TooLarge(f"{what} holds {len(infos):,} files; the limit is {limits.max_entries:,}.")
    declared = sum(info.file_size for info in infos)
    if declared > limits.max_uncompressed_bytes:
        raise TooLarge(f"{what} unpacks to {declared:,} bytes; the limit is {limits.max_uncompressed_bytes:,} bytes.")
    return archive


def clean_name(raw: str) -> str | None:
    """The entry's path with `/` separators, or None if it is absolute, climbs out (`..`) or holds
    control characters. Windows tools write backslashes; they are separators here too."""
    name = raw.replace("\\", "/")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name) or any(ord(c) < 32 or c == "\x7f" for c in name):
        return None
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def _is_junk(name: str) -> bool:
    parts = name.split("/")
    return parts[0] == "__MACOSX" or parts[-1] in _JUNK_NAMES or parts[-1].startswith("._")


@dataclass(frozen=True)
class Entry:
    """An image candidate and its caption: a file beside it, or a row of a caption table."""

    index: int  # position in the archive's directory: the order of import
    name: str
    info: zipfile.ZipInfo
    caption: zipfile.ZipInfo | None = None
    caption_text: str | None = None  # from a table's row…
    caption_from: str | None = None  # …that table's name


@dataclass(frozen=True)
class Refusal:
    filename: str
    error: DomainError


@dataclass
class Plan:
    entries: list[Entry] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    has_captions: bool = False  # the ZIP brings captions: an image without one is worth a word in the report


def plan(archive: zipfile.ZipFile) -> Plan:
    """Which entries to import, in directory order, each with its caption (a sidecar file, else a caption
    table's row); and which to refuse outright (unsafe or duplicate names, captions without an image).
    Directories and the junk file managers leave (`__MACOSX/`, `.DS_Store`) are skipped without a word."""
    result = Plan()
    files = []
    for index, info in enumerate(archive.infolist()):
        if info.is_dir():
            continue
        name = clean_name(info.filename)
        if name is None:
            result.refused.append(Refusal(info.filename, Invalid(f"{info.filename!r} is not a safe path in a ZIP.")))
        elif not _is_junk(name):
            files.append((index, name, info))
    counts = Counter(name for _, name, _ in files)
    captions: dict[str, tuple[str, zipfile.ZipInfo]] = {}  # "dir/stem" → the caption file
    tables: list[tuple[str, zipfile.ZipInfo]] = []
    images = []
    for index, name, info in files:
        suffix = PurePosixPath(name).suffix.lower()
        if counts[name] > 1:
            result.refused.append(Refusal(name, Invalid(f"{name} appears {counts[name]} times in the ZIP.")))
        elif len(name) > MAX_NAME:
            result.refused.append(
                Refusal(name[:MAX_NAME], Invalid(f"{name[:60]}… is longer than {MAX_NAME} characters."))
            )
        elif PurePosixPath(name).name.lower() in METADATA_NAMES:
            tables.append((name, info))
        elif suffix in CAPTION_SUFFIXES:
            stem = name[: -len(suffix)]
            if stem in captions:
                result.refused.append(Refusal(name, Invalid(f"{name} is a second caption file for {stem}.*.")))
            else:
                captions[stem] = (name, info)
        else:
            images.append((index, name, info))
    rows = _table_captions(archive, tables, {name for _, name, _ in images}, result)
    matched = set()
    for index, name, info in images:
        stem = name[: -len(PurePosixPath(name).suffix) or None]
        if stem in captions:
            matched.add(stem)
            result.entries.append(Entry(index, name, info, captions[stem][1]))
        else:
            result.entries.append(Entry(index, name, info, None, *rows.get(name, (None, None))))
    for stem, (name, _) in captions.items():
        if stem not in matched:
            message = f"{name} is a caption file without an image of the same name beside it."
            result.refused.append(Refusal(name, Invalid(message)))
    result.has_captions = bool(captions or rows)
    return result


def _table_captions(
    archive: zipfile.ZipFile, tables: list[tuple[str, zipfile.ZipInfo]], images: set[str], result: Plan
) -> dict[str, tuple[str, str]]:
    """image name → (caption, table name), from every caption table; a table that cannot be read is refused."""
    found: dict[str, tuple[str, str]] = {}
    for name, info in tables:
        folder = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
        try:
            rows = _rows(read(archive, info, MAX_METADATA_BYTES, name), name)
            strays = []
            for number, (file_name, caption) in enumerate(rows, start=2 if name.endswith(".csv") else 1):
                image = clean_name(folder + file_name) if isinstance(file_name, str) else None
                if image not in images:
                    strays.append(f"row {number} ({file_name!r})")
                elif caption is not None and image not in found:
                    found[image] = (caption, name)
            if strays:
                more = f" and {len(strays) - 3} more" if len(strays) > 3 else ""
                raise Invalid(f"{name} names files that are not images in the ZIP: {', '.join(strays[:3])}{more}.")
        except DomainError as exc:
            result.refused.append(Refusal(name, exc))
    return found


def _rows(data: bytes, name: str) -> list[tuple[object, str | None]]:
    """(file_name, caption) of each row; a FIBO caption given as a JSON object is that object's JSON text."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Invalid(f"{name} is not UTF-8 text.") from None
    try:
        if name.lower().endswith(".csv"):
            records = list(csv.DictReader(io.StringIO(text, newline="")))
        else:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
    except (csv.Error, ValueError, RecursionError) as exc:
        raise Invalid(f"{name} cannot be read ({str(exc)[:100]}).") from None
    rows = []
    for record in records:
        if not isinstance(record, dict) or "file_name" not in record:
            raise Invalid(f"{name} must have a file_name column, and {'/'.join(CAPTION_COLUMNS)} for the captions.")
        column = next((c for c in CAPTION_COLUMNS if c in record), None)
        caption = record[column] if column else None
        if isinstance(caption, dict):
            caption = json.dumps(caption, ensure_ascii=False)
        elif caption is not None and not isinstance(caption, str):
            raise Invalid(f"{name}: the caption of {record['file_name']!r} must be text.")
        rows.append((record["file_name"], caption))
    return rows


def read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int, name: str) -> bytes:
    """An entry's bytes, refusing before reading if it declares more than `max_bytes`."""
    if info.flag_bits & 0x1:
        raise Invalid(f"{name} is encrypted; upload a ZIP without a password.")
    # zipfile bounds what deflate may unpack per read; bzip2 and LZMA it unpacks whole (bombs).
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise Invalid(f"{name} is compressed with method {info.compress_type}; only stored and deflated are accepted.")
    if info.file_size > max_bytes:
        raise TooLarge(f"{name} is {info.file_size:,} bytes; the limit is {max_bytes:,} bytes.")
    try:
        with archive.open(info) as entry:
            return entry.read(max_bytes + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
        raise Invalid(f"{name} could not be unpacked from the ZIP ({exc}).") from None


def read_caption(archive: zipfile.ZipFile, info: zipfile.ZipInfo, max_chars: int, name: str) -> str:
    """A caption file's text: UTF-8 (a byte-order mark is dropped, Windows line ends become newlines), stripped
    of surrounding blank space."""
    data = read(archive, info, max_chars * 4, name)
    try:
        return data.decode("utf-8-sig").replace("\r\n", "\n").strip()
    except UnicodeDecodeError:
        raise Invalid(f"{name} is not UTF-8 text.") from None


# --- writing ---------------------------------------------------------------------------------


class _Sink:
    """A write-only file for zipfile (which then writes sizes after each entry, as it cannot seek)."""

    def __init__(self):
        self._chunks: list[bytes] = []
        self.pending = 0

    def write(self, data) -> int:
        self._chunks.append(bytes(data))
        self.pending += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        self.pending = 0
        return data


class ZipStream:
    """Builds a ZIP as bytes to send as they are made: add entries, `take()` what is ready, `close()`.

    Images go in stored (they are compressed already); text is deflated."""

    def __init__(self):
        self._sink = _Sink()
        self._zip = zipfile.ZipFile(self._sink, "w", allowZip64=True)

    @property
    def pending(self) -> int:
        return self._sink.pending

    def open(self, name: str, when: datetime, size: int, compress: bool = False):
        info = zipfile.ZipInfo(name, date_time=when.timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info.file_size = size  # lets zipfile choose zip64 for the entry ahead
        info.external_attr = 0o644 << 16
        return self._zip.open(info, "w")

    def add(self, name: str, when: datetime, data: bytes) -> None:
        with self.open(name, when, len(data), compress=True) as entry:
            entry.write(data)

    def take(self) -> bytes:
        return self._sink.take()

    def close(self) -> bytes:
        self._zip.close()
        return self._sink.take()
