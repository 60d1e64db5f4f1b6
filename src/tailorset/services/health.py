"""The dataset health report: duplicates, image issues, aspect-ratio buckets, caption lint and readiness.

Nothing here opens an image to answer a GET. Each image's measurements (quality.py) are taken once when it
is stored, and its caption is linted (domain/lint.py) once per caption and prefix; both are kept on the
image row, and a caption write marks the lint stale (db/repository.py). The report aggregates those
columns in SQL (near-duplicates: numpy over the stored perceptual hashes). What is stale or missing —
an edit, a new prefix, images stored before the measurements existed — is brought up to date by a
background job; a GET lints a handful of stale captions itself, so a single edit shows at once."""

from __future__ import annotations

import hashlib
import io
import logging
from collections import Counter, OrderedDict
from dataclasses import dataclass

import anyio
import numpy as np
from PIL import Image as PILImage

from tailorset import imaging, quality, text_encoders
from tailorset.db import health as queries
from tailorset.db import repository as repo
from tailorset.db.health import REPORT_COLUMNS
from tailorset.db.models import Dataset, Job
from tailorset.domain import captions, health, lifecycle, lint, review
from tailorset.domain.errors import Gone, Invalid, NotFound
from tailorset.domain.jobs import JobStatus
from tailorset.services import Services, files
from tailorset.services.images import image_limit
from tailorset.services.jobs import Lease, LeaseLost

log = logging.getLogger(__name__)

KIND = "dataset_health"
LINT_BATCH = 200  # captions linted per step of the job (a millisecond or so each)
MEASURE_BATCH = 4  # pictures read and measured per step
INLINE_LINT = 50  # a GET lints up to this many stale captions itself, so that an edit shows at once
SHOWN_IDS = 50  # image ids listed per finding (counts are always complete)
SHOWN_GROUPS = 100  # duplicate groups listed
TOP_WORDS = 25
MOST_CROPPED = 10  # picture sizes listed among the most cropped by their bucket

# --- keeping the stored facts up to date --------------------------------------------------------


def _lint_rows(rows, training_version: str, prefix: str | None) -> list[dict]:
    linted = []
    for image_id, caption in rows:
        try:
            result = lint.lint_caption(caption, training_version, prefix)
        except Exception:  # a bug in a rule must not stall the job on one caption for ever: log it, find nothing
            log.exception("Lint failed on the caption of image %s", image_id)
            result = lint.CaptionLint(text_encoders.for_version(training_version), None)
        linted.append({
            "b_id": image_id, "b_caption": caption, "b_tokens": result.tokens, "b_issues": result.issues,
            "b_terms": " ".join(result.terms),
        })  # fmt: skip
    return linted


async def lint_stale(services: Services, dataset: Dataset, limit: int) -> int:
    """Lint up to `limit` of the dataset's captions whose lint is stale; how many there were."""
    async with services.db.read() as session:
        rows = await queries.unlinted_captions(session, dataset.id, limit)
    if not rows:
        return 0
    linted = await anyio.to_thread.run_sync(_lint_rows, rows, dataset.training_version, dataset.caption_prefix)
    async with services.db.write() as session:
        await queries.save_lint(session, linted, dataset.caption_prefix)
    return len(rows)


def _measure_file(data: bytes) -> dict:
    original = PILImage.open(io.BytesIO(data), formats=list(imaging.FORMATS))
    original.load()
    return vars(quality.measure(original, imaging.to_rgb(original)))


async def measure_missing(services: Services, dataset: Dataset, limit: int) -> int:
    """Measure up to `limit` of the dataset's images stored before their measurements were taken."""
    async with services.db.read() as session:
        rows = await queries.unmeasured_files(session, dataset.id, limit)
    measured = {}
    for image_id, storage, key in rows:
        try:
            data = await files.read(services, storage, key)
            measured[image_id] = await anyio.to_thread.run_sync(_measure_file, data)
        except Exception as exc:  # an unreadable file is fsck's business; leave it unmeasured, once
            log.warning("Image %s could not be measured: %s", image_id, exc)
            measured[image_id] = {}
    if measured:
        async with services.db.write() as session:
            await queries.save_measurements(session, measured)
    return len(rows)


async def _ensure_job(services: Services, dataset: Dataset, pending: int) -> None:
    async with services.db.write() as session:
        if await repo.active_job(session, dataset.id, KIND) is None:
            session.add(Job(organization_id=dataset.organization_id, dataset_id=dataset.id, kind=KIND, total=pending))
    services.wakeup.notify()


async def run_batch(services: Services, lease: Lease) -> bool:
    """One step of the background job: lint some stale captions and measure some pictures."""
    job = lease.job
    try:
        async with services.db.read() as session:
            dataset = await repo.get_dataset(session, job.organization_id, job.dataset_id)
    except (NotFound, Gone):
        return await finish(services, lease, JobStatus.CANCELLED, "The dataset was deleted.")
    done = await lint_stale(services, dataset, LINT_BATCH) + await measure_missing(services, dataset, MEASURE_BATCH)
    if not done:
        return await finish(services, lease, JobStatus.COMPLETED)
    try:
        await lease.update(done=job.done + done)
    except LeaseLost:
        return False
    return True


async def finish(services: Services, lease: Lease, status: JobStatus, error: str | None = None) -> bool:
    await lease.finish(status, error)
    return False


# --- the report ---------------------------------------------------------------------------------


@dataclass
class Report:
    body: dict
    image_ids: set[int]  # the images shown as pictures (duplicates, image issues), for the thumbnails the API adds


async def report(services: Services, org_id: int, dataset_id: int) -> Report:
    async with services.db.read() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id)
        stale, unmeasured = await queries.stale_counts(session, dataset.id)
    if 0 < stale <= INLINE_LINT:
        await lint_stale(services, dataset, INLINE_LINT)
        stale = 0
    if stale or unmeasured:
        await _ensure_job(services, dataset, stale + unmeasured)
    async with services.db.read() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id)
        rows = await queries.report_rows(session, dataset.id)
        caption_groups = list((await queries.shared_captions(session, dataset.id)).items())
    body = await anyio.to_thread.run_sync(
        _assemble, dataset, rows, caption_groups, image_limit(services.settings, dataset)
    )
    return Report(body, _named_ids([body["duplicates"], body["image_issues"]]))


def _named_ids(body) -> set[int]:
    found: set[int] = set()

    def walk(value, key=None):
        if key == "image_ids":
            found.update(value)
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(body)
    return found


_near_groups: OrderedDict[bytes, list[list[int]]] = OrderedDict()  # by a digest of their input; a few datasets'


def near_duplicate_groups(hashes: list[tuple[int, int, str]], max_bits: int = health.NEAR_DUPLICATE_BITS):
    """Groups of images whose perceptual hashes are within `max_bits` of one another (linked pairwise), holding
    at least two different files. numpy: 5,000 images are 12.5 million comparisons, a few tens of ms, so the
    answer is remembered for the same input (a dataset nobody changed) in this process."""
    if len(hashes) < 2:
        return []
    key = hashlib.sha256(repr((max_bits, hashes)).encode()).digest()
    if key in _near_groups:
        _near_groups.move_to_end(key)
        return _near_groups[key]
    groups = _near_duplicate_groups(hashes, max_bits)
    _near_groups[key] = groups
    while len(_near_groups) > 16:
        _near_groups.popitem(last=False)
    return groups


def _near_duplicate_groups(hashes: list[tuple[int, int, str]], max_bits: int) -> list[list[int]]:
    ids = [h[0] for h in hashes]
    values = np.array([h[1] for h in hashes], dtype=np.int64).view(np.uint64)
    parent = list(range(len(ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    block = 512
    for start in range(0, len(values) - 1, block):
        rows = values[start : start + block]
        near = np.bitwise_count(rows[:, None] ^ values[None, start + 1 :]) <= max_bits
        for i, j in zip(*np.nonzero(near), strict=True):
            if j >= i:  # column j is image start+1+j: a pair (row, later image)
                a, b = root(start + int(i)), root(start + 1 + int(j))
                if a != b:
                    parent[b] = a
    groups: dict[int, list[int]] = {}
    for index in range(len(ids)):
        groups.setdefault(root(index), []).append(index)
    return [
        sorted(ids[i] for i in members)
        for members in groups.values()
        if len(members) > 1 and len({hashes[i][2] for i in members}) > 1
    ]


def _problem(rule: str, blocking: bool, count: int, message: str, image_ids=()) -> dict:
    return {
        "rule": rule, "severity": "blocking" if blocking else "warning", "count": count, "message": message,
        "image_ids": [int(i) for i in list(image_ids)[:SHOWN_IDS]],
    }  # fmt: skip


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


def _assemble(dataset: Dataset, rows: list, caption_groups: list, max_images: int) -> dict:
    """The report, from one row of stored numbers per image (numpy over the columns)."""
    images = len(rows)
    column = list(zip(*rows, strict=True)) if rows else [()] * len(REPORT_COLUMNS)
    ids = np.array(column[0], dtype=np.int64)

    def numbers(index: int) -> np.ndarray:
        return np.array([np.nan if v is None else float(v) for v in column[index]], dtype=np.float64)

    width, height, turned = numbers(1), numbers(2), numbers(3)
    measured, issues, tokens = np.array(column[9], dtype=bool), numbers(10), numbers(11)
    states, sources = np.array(column[13], dtype=object), np.array(column[14], dtype=object)
    encoder = text_encoders.for_version(dataset.training_version)
    problems: list[dict] = []

    ready = health.readiness(dataset.training_version, images, max_images, dataset.visual_schema)
    problems += [_problem("readiness", True, 1, message) for message in ready.blocking]
    problems += [_problem("recommended_images", False, 1, message) for message in ready.warnings]

    flagged = ids[states == review.FLAGGED]
    if flagged.size:
        problems.append(
            _problem("flagged", True, flagged.size, f"{_plural(flagged.size, 'image')} flagged for attention.", flagged)
        )

    by_sha: dict[str, list[int]] = {}
    for image_id, sha in zip(column[0], column[16], strict=True):
        by_sha.setdefault(sha, []).append(image_id)
    exact = [group for group in by_sha.values() if len(group) > 1]
    hashes = [(i, h, sha) for i, h, sha in zip(column[0], column[15], column[16], strict=True) if h is not None]
    near = near_duplicate_groups(hashes)
    if exact:
        extra = sum(len(g) - 1 for g in exact)
        message = f"{_plural(extra, 'image')} exact copies of another in the dataset ({_plural(len(exact), 'group')})."
        problems.append(_problem("exact_duplicates", True, extra, message, [i for g in exact for i in g[1:]]))
    if near:
        message = f"{_plural(len(near), 'group')} of near-duplicate pictures ({_plural(sum(map(len, near)), 'image')})."
        problems.append(
            _problem("near_duplicates", False, sum(len(g) - 1 for g in near), message, [i for g in near for i in g])
        )

    linted = np.nan_to_num(issues, nan=0).astype(np.int64)
    rule_ids = {rule.name: ids[(linted & rule.bit) != 0] for rule in lint.RULES}
    for rule in lint.RULES:
        found = rule_ids[rule.name]
        if found.size:
            message = f"{_plural(found.size, 'caption')}: {rule.summary}."
            problems.append(_problem(rule.name, rule.blocking, found.size, message, found))
    if caption_groups:
        shared = [i for _, group in caption_groups for i in group]
        message = f"{_plural(len(caption_groups), 'caption is', 'captions are')} each shared by several images."
        problems.append(_problem("duplicate_captions", False, len(shared), message, shared))

    masks = health.issue_masks(width, height, numbers(4), numbers(5), numbers(6), numbers(7), numbers(8))
    issue_ids = {name: ids[mask] for name, mask in masks.items()}
    for name, description in health.IMAGE_ISSUES.items():
        found = issue_ids[name]
        if found.size:
            message = f"{_plural(found.size, 'image is', 'images are')} {description}."
            problems.append(_problem(name, False, found.size, message, found))

    counts = {state: int((states == state).sum()) for state in review.REVIEW_STATES}
    unreviewed_automatic = (states == review.UNREVIEWED) & (sources == captions.AUTOMATIC)
    counts["unreviewed_automatic"] = int(unreviewed_automatic.sum())
    if counts["unreviewed_automatic"]:
        message = f"{_plural(counts['unreviewed_automatic'], 'automatic caption has', 'automatic captions have')} "
        problems.append(_problem("unreviewed", False, counts["unreviewed_automatic"], message + "not been reviewed."))
    # Of those, the ones the captioner itself doubts (a captioner that gives no confidence says nothing here).
    confidence = numbers(17)
    unsure = unreviewed_automatic & (confidence < review.SURE)
    if unsure.any():
        doubtful = ids[unsure][np.argsort(confidence[unsure], kind="stable")]  # least sure first
        message = (
            f"{_plural(doubtful.size, 'automatic caption')} not reviewed yet the captioner is unsure of "
            f"(confidence below {review.SURE:.0%}): review {'it' if doubtful.size == 1 else 'them'} first."
        )
        problems.append(_problem("doubtful_captions", False, doubtful.size, message, doubtful))
    pending = {"measurements": int((~measured).sum()), "lint": int(np.isnan(issues).sum())}
    if any(pending.values()):
        message = (
            f"The report is still being computed: {_plural(pending['measurements'], 'image')} to measure, "
            f"{_plural(pending['lint'], 'caption')} to lint."
        )
        problems.append(_problem("pending", False, max(pending.values()), message))

    sizes = Counter(zip(column[1], column[2], (bool(t) for t in column[3]), strict=True))
    buckets: Counter = Counter()
    cropped = []
    for (w, h, t), count in sizes.items():
        bucket, share = health.bucket_of(*((h, w) if t else (w, h)))
        buckets[bucket] += count
        if share > 0:
            cropped.append((share, w, h, t, bucket))
    most_cropped = []
    for share, w, h, t, bucket in sorted(cropped, reverse=True)[:MOST_CROPPED]:
        same = ids[(width == w) & (height == h) & ((turned == 1) == t)]
        most_cropped.append({"width": w, "height": h, "turned": t, "bucket": list(bucket), "cropped": round(share, 4),
                             "image_ids": [int(i) for i in same[:SHOWN_IDS]]})  # fmt: skip

    step = max(1, round(encoder.limit / 10))
    histogram = Counter((tokens[~np.isnan(tokens)] // step).astype(int).tolist())
    words: Counter = Counter()
    for terms in column[12]:
        if terms:
            words.update(terms.split())

    blocking = sum(1 for p in problems if p["severity"] == "blocking")
    return {
        "dataset_id": dataset.id,
        "training_version": dataset.training_version,
        "status": dataset.status,
        "images_count": images,
        "complete": not any(pending.values()),
        "pending": pending,
        "ready": ready.ready and blocking == 0,
        "blocking": blocking,
        "warnings": len(problems) - blocking,
        "problems": problems,
        "readiness": {
            "ready": ready.ready, "min_images": ready.min_images, "max_images": ready.max_images,
            "recommended_images": list(ready.recommended) if ready.recommended else None,
            "visual_schema_required": dataset.training_version == lifecycle.FIBO,
        },
        "review": counts,
        "duplicates": {
            "exact": [{"image_ids": g} for g in exact[:SHOWN_GROUPS]],
            "near": [{"image_ids": g} for g in near[:SHOWN_GROUPS]],
        },
        "image_issues": [
            {"issue": name, "description": text, "count": int(issue_ids[name].size),
             "image_ids": [int(i) for i in issue_ids[name][:SHOWN_IDS]]}
            for name, text in health.IMAGE_ISSUES.items()
        ],
        "buckets": {
            "area": health.BUCKET_AREA, "step": health.BUCKET_STEP,
            "counts": [{"width": w, "height": h, "count": c} for (w, h), c in sorted(buckets.items())],
            "most_cropped": most_cropped,
        },
        "captions": {
            "encoder": encoder.as_dict(),
            "token_histogram": [
                {"from": k * step, "to": (k + 1) * step - 1, "count": c} for k, c in sorted(histogram.items())
            ],
            "top_words": [{"word": w, "count": c} for w, c in words.most_common(TOP_WORDS)],
            "lint": [
                {"rule": r.name, "severity": "blocking" if r.blocking else "warning", "summary": r.summary,
                 "count": int(rule_ids[r.name].size), "image_ids": [int(i) for i in rule_ids[r.name][:SHOWN_IDS]]}
                for r in lint.RULES
            ],
            "duplicate_captions": [
                {"caption": caption if len(caption) <= 300 else caption[:300] + "…", "image_ids": group[:SHOWN_IDS]}
                for caption, group in caption_groups[:SHOWN_GROUPS]
            ],
        },
    }  # fmt: skip


async def duplicate_ids(services: Services, org_id: int, dataset_id: int) -> frozenset[int]:
    """Every image in a group of exact or near duplicates (for the image list's `only=duplicates`)."""
    async with services.db.read() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id)
        exact = await queries.exact_duplicate_ids(session, dataset.id)
        hashes = await queries.perceptual_hashes(session, dataset.id)
    near = await anyio.to_thread.run_sync(near_duplicate_groups, hashes)
    return frozenset(exact | {image_id for group in near for image_id in group})


async def lint_one(
    services: Services,
    org_id: int,
    dataset_id: int,
    caption: str | None = None,
    image_id: int | None = None,
    draft_for: int | None = None,
) -> dict:
    """A draft caption (for image `draft_for`, if given), or image `image_id`'s stored one, linted for this
    dataset; and the other images captioned the same."""
    limit = services.settings.max_caption_chars
    if caption is not None and len(caption) > limit:  # it could not be saved: say so, without tokenizing it all
        raise Invalid(f"caption is {len(caption):,} characters long; the limit is {limit:,}.")
    async with services.db.read() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id)
        if image_id is not None:
            caption = (await repo.get_image(session, dataset, image_id)).caption
        same = []
        if caption:
            same = await queries.same_caption_ids(session, dataset.id, caption, image_id or draft_for or 0, SHOWN_IDS)
    version, prefix = dataset.training_version, dataset.caption_prefix
    result = await anyio.to_thread.run_sync(lint.lint_caption, caption, version, prefix)
    return {
        "encoder": result.encoder.as_dict(),
        "tokens": result.tokens,
        "findings": [vars(finding) for finding in result.findings],
        "same_caption_image_ids": same,
    }


async def thumbnails(services: Services, dataset_id: int, image_ids: set[int]) -> list[tuple]:
    """(id, image_name, storage, thumbnail_key) of those live images of the dataset (already checked as the
    caller's)."""
    if not image_ids:
        return []
    async with services.db.read() as session:
        return await queries.thumbnail_rows(session, dataset_id, image_ids)
