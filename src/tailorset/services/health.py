"""The dataset health report: duplicates, image issues, aspect-ratio buckets, caption lint and readiness.

Nothing here opens an image to answer a GET. Each image's measurements (quality.py) are taken once when it
is stored, and its caption is linted (domain/lint.py) once per caption and prefix; both are kept on the
image row, and a caption write marks the lint stale (db/repository.py). The report aggregates those
columns in SQL (near-duplicates: numpy over the stored perceptual hashes). What is stale or missing —
an edit, a new prefix, images stored before the measurements existed — is brought up to date by a
background job; a GET lints a handful of stale captions itself, so a single edit shows at once."""

from __future__ import annotations

import io
import logging
from collections import Counter
from dataclasses import dataclass

import anyio
import numpy as np
from PIL import Image as PILImage
from sqlalchemy import and_, bindparam, case, exists, func, select, update

from tailorset import imaging, quality, text_encoders
from tailorset.db import repository as repo
from tailorset.db.models import Dataset, Image, Job, utcnow
from tailorset.domain import health, lifecycle, lint, review
from tailorset.domain.errors import Gone, NotFound
from tailorset.services import Services, files
from tailorset.services.images import image_limit

log = logging.getLogger(__name__)

KIND = "dataset_health"
LINT_BATCH = 200  # captions linted per step of the job (a millisecond or so each)
MEASURE_BATCH = 4  # pictures read and measured per step
INLINE_LINT = 50  # a GET lints up to this many stale captions itself, so that an edit shows at once
SHOWN_IDS = 50  # image ids listed per finding (counts are always complete)
SHOWN_GROUPS = 100  # duplicate groups listed
TOP_WORDS = 25
MOST_CROPPED = 10  # picture sizes listed among the most cropped by their bucket

_live = (Image.deleted_at.is_(None),)


def _in(dataset_id: int):
    return (Image.dataset_id == dataset_id, *_live)


# --- keeping the stored facts up to date --------------------------------------------------------


async def _stale_counts(session, dataset_id: int) -> tuple[int, int]:
    row = await session.execute(
        select(
            func.count(case((Image.lint_issues.is_(None), 1))), func.count(case((Image.measured_at.is_(None), 1)))
        ).where(*_in(dataset_id))
    )
    return tuple(row.one())


def _lint_rows(rows, training_version: str, prefix: str | None) -> list[dict]:
    linted = []
    for image_id, caption in rows:
        result = lint.lint_caption(caption, training_version, prefix)
        linted.append({
            "b_id": image_id, "b_caption": caption, "b_tokens": result.tokens, "b_issues": result.issues,
            "b_terms": " ".join(result.terms),
        })  # fmt: skip
    return linted


_SAVE_LINT = (
    update(Image.__table__)
    .where(
        Image.__table__.c.id == bindparam("b_id"),
        Image.__table__.c.lint_issues.is_(None),
        Image.__table__.c.caption.is_not_distinct_from(bindparam("b_caption")),
        # linted against the prefix the dataset still has (a new prefix marks every caption stale again)
        exists(
            select(Dataset.id).where(
                Dataset.id == Image.__table__.c.dataset_id,
                Dataset.caption_prefix.is_not_distinct_from(bindparam("b_prefix")),
            )
        ),
    )
    .values(lint_tokens=bindparam("b_tokens"), lint_issues=bindparam("b_issues"), lint_terms=bindparam("b_terms"))
)


async def lint_stale(services: Services, dataset: Dataset, limit: int) -> int:
    """Lint up to `limit` of the dataset's captions whose lint is stale; how many there were."""
    async with services.db.read() as session:
        query = select(Image.id, Image.caption).where(*_in(dataset.id), Image.lint_issues.is_(None))
        rows = (await session.execute(query.order_by(Image.id).limit(limit))).all()
    if not rows:
        return 0
    linted = await anyio.to_thread.run_sync(_lint_rows, rows, dataset.training_version, dataset.caption_prefix)
    async with services.db.write() as session:
        await session.execute(_SAVE_LINT, [row | {"b_prefix": dataset.caption_prefix} for row in linted])
    return len(rows)


def _measure_file(data: bytes) -> dict:
    original = PILImage.open(io.BytesIO(data), formats=list(imaging.FORMATS))
    original.load()
    return vars(quality.measure(original, imaging.to_rgb(original)))


async def measure_missing(services: Services, dataset: Dataset, limit: int) -> int:
    """Measure up to `limit` of the dataset's images stored before their measurements were taken."""
    async with services.db.read() as session:
        query = select(Image.id, Image.storage, Image.file_key).where(*_in(dataset.id), Image.measured_at.is_(None))
        rows = (await session.execute(query.order_by(Image.id).limit(limit))).all()
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
            for image_id, values in measured.items():
                query = update(Image).where(Image.id == image_id, Image.measured_at.is_(None))
                await session.execute(query.values(measured_at=utcnow(), **values))
    return len(rows)


async def _ensure_job(services: Services, dataset: Dataset, pending: int) -> None:
    async with services.db.write() as session:
        if await repo.active_job(session, dataset.id, KIND) is None:
            session.add(Job(organization_id=dataset.organization_id, dataset_id=dataset.id, kind=KIND, total=pending))
    services.wake_workers()


async def run_batch(services: Services, job: Job, worker: str) -> bool:
    """One step of the background job: lint some stale captions and measure some pictures."""
    try:
        async with services.db.read() as session:
            dataset = await repo.get_dataset(session, job.organization_id, job.dataset_id)
    except (NotFound, Gone):
        return await _finish(services, job, worker, "cancelled", "The dataset was deleted.")
    done = await lint_stale(services, dataset, LINT_BATCH) + await measure_missing(services, dataset, MEASURE_BATCH)
    if not done:
        return await _finish(services, job, worker, "completed")
    async with services.db.write() as session:
        current = await session.get(Job, job.id, with_for_update=True)
        if current is None or current.lease_owner != worker or current.status != "running":
            return False
        current.done += done
        current.lease_expires_at = utcnow() + services.settings.job_lease
        current.updated_at = utcnow()
    return True


async def _finish(services: Services, job: Job, worker: str, status: str, error: str | None = None) -> bool:
    async with services.db.write() as session:
        current = await session.get(Job, job.id, with_for_update=True)
        if current is not None and current.lease_owner == worker:
            current.status, current.error, current.finished_at = status, error, utcnow()
            current.lease_owner = current.lease_expires_at = None
    return False


# --- the report ---------------------------------------------------------------------------------


@dataclass
class Report:
    body: dict
    image_ids: set[int]  # every image the body names, for the thumbnails the API adds


async def report(services: Services, org_id: int, dataset_id: int) -> Report:
    async with services.db.read() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id)
        stale, unmeasured = await _stale_counts(session, dataset.id)
    if 0 < stale <= INLINE_LINT:
        await lint_stale(services, dataset, INLINE_LINT)
        stale = 0
    if stale or unmeasured:
        await _ensure_job(services, dataset, stale + unmeasured)
    async with services.db.read() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id)
        facts = await _gather(session, dataset)
    body = await anyio.to_thread.run_sync(_assemble, dataset, facts, image_limit(services.settings, dataset))
    return Report(body, facts.named_ids(body))


@dataclass
class _Facts:
    totals: dict
    rule_counts: dict[str, int]
    flagged: list[tuple]  # (id, picture fields…, lint_issues, review_state) of images with any finding
    exact_groups: list[list[int]]
    hashes: list[tuple[int, int, str]]  # (id, phash, sha256)
    caption_groups: list[tuple[str, list[int]]]
    sizes: list[tuple[int, int, bool | None, int]]
    most_cropped: list[dict]
    tokens: list[tuple[int, int]]
    terms: list[str]

    @staticmethod
    def named_ids(body: dict) -> set[int]:
        found: set[int] = set()

        def walk(value, key=None):
            if key in ("image_ids", "image_id") and value is not None:
                found.update(value if isinstance(value, list) else [value])
            elif isinstance(value, dict):
                for k, v in value.items():
                    walk(v, k)
            elif isinstance(value, list):
                for v in value:
                    walk(v)

        walk(body)
        return found


PICTURE = (Image.width, Image.height, Image.turned, Image.sharpness, Image.brightness, Image.dark_fraction,
           Image.bright_fraction, Image.transparent)  # fmt: skip


def _finding_condition():
    """Images with anything to report: a stored lint finding, a flag, or a picture issue."""
    p = health
    return (
        (Image.lint_issues != 0)
        | (Image.review_state == review.FLAGGED)
        | (Image.sharpness < p.BLURRY_BELOW)
        | (Image.brightness < p.DARK_BELOW) | (Image.dark_fraction > p.DARK_SHARE)
        | (Image.brightness > p.BRIGHT_ABOVE) | (Image.bright_fraction > p.BRIGHT_SHARE)
        | (Image.width < p.RECOMMENDED_SIDE) | (Image.height < p.RECOMMENDED_SIDE)
        | (Image.width > Image.height * p.EXTREME_ASPECT) | (Image.height > Image.width * p.EXTREME_ASPECT)
        | (Image.transparent.is_(True))
    )  # fmt: skip


async def _gather(session, dataset: Dataset) -> _Facts:
    live = _in(dataset.id)
    columns = [
        func.count().label("images"),
        func.count(Image.measured_at).label("measured"),
        func.count(Image.lint_issues).label("linted"),
        func.count(Image.caption).label("captioned"),
        *[func.count(case((Image.review_state == state, 1))).label(state) for state in review.REVIEW_STATES],
        func.count(case((and_(Image.review_state == review.UNREVIEWED, Image.caption_source == "automatic"), 1))).label(
            "unreviewed_automatic"
        ),
        *[func.count(case((Image.lint_issues.op("&")(rule.bit) != 0, 1))).label(rule.name) for rule in lint.RULES],
    ]
    row = (await session.execute(select(*columns).where(*live))).one()._asdict()
    rule_counts = {rule.name: row.pop(rule.name) for rule in lint.RULES}

    query = select(Image.id, *PICTURE, Image.lint_issues, Image.review_state).where(*live, _finding_condition())
    flagged = (await session.execute(query.order_by(Image.id))).all()

    copies = select(Image.sha256).where(*live).group_by(Image.sha256).having(func.count() > 1)
    exact: dict[str, list[int]] = {}
    for image_id, sha in await session.execute(
        select(Image.id, Image.sha256).where(*live, Image.sha256.in_(copies)).order_by(Image.id)
    ):
        exact.setdefault(sha, []).append(image_id)

    hashes = (
        await session.execute(select(Image.id, Image.phash, Image.sha256).where(*live, Image.phash.is_not(None)))
    ).all()

    same = (
        select(Image.caption).where(*live, Image.caption.is_not(None)).group_by(Image.caption).having(func.count() > 1)
    )
    captions: dict[str, list[int]] = {}
    for image_id, caption in await session.execute(
        select(Image.id, Image.caption).where(*live, Image.caption.in_(same)).order_by(Image.id)
    ):
        captions.setdefault(caption, []).append(image_id)

    size_query = select(Image.width, Image.height, Image.turned, func.count()).where(*live)
    sizes = (await session.execute(size_query.group_by(Image.width, Image.height, Image.turned))).all()
    most_cropped = []
    for width, height, turned, _ in sizes:
        bucket, share = health.bucket_of(*((height, width) if turned else (width, height)))
        if share > 0:
            most_cropped.append({"width": width, "height": height, "turned": bool(turned), "bucket": list(bucket),
                                 "cropped": round(share, 4)})  # fmt: skip
    most_cropped = sorted(most_cropped, key=lambda c: -c["cropped"])[:MOST_CROPPED]
    for entry in most_cropped:
        same_size = (Image.width == entry["width"], Image.height == entry["height"])
        turned = Image.turned.is_(True) if entry["turned"] else Image.turned.is_not(True)
        query = select(Image.id).where(*live, *same_size, turned)
        entry["image_ids"] = list((await session.execute(query.order_by(Image.id).limit(SHOWN_IDS))).scalars())
    token_query = select(Image.lint_tokens, func.count()).where(*live, Image.lint_tokens.is_not(None))
    tokens = (await session.execute(token_query.group_by(Image.lint_tokens))).all()
    terms_query = select(Image.lint_terms).where(*live, Image.lint_terms.is_not(None), Image.lint_terms != "")
    terms = list((await session.execute(terms_query)).scalars())
    exact_groups, caption_groups = list(exact.values()), list(captions.items())
    return _Facts(row, rule_counts, flagged, exact_groups, hashes, caption_groups, sizes, most_cropped, tokens, terms)


def near_duplicate_groups(hashes: list[tuple[int, int, str]], max_bits: int = health.NEAR_DUPLICATE_BITS):
    """Groups of images whose perceptual hashes are within `max_bits` of one another (linked pairwise), holding
    at least two different files. numpy: 5,000 images are 12.5 million comparisons, a few tens of ms."""
    if len(hashes) < 2:
        return []
    ids = np.array([h[0] for h in hashes])
    values = np.array([h[1] for h in hashes], dtype=np.int64).view(np.uint64)
    parent = list(range(len(ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    block = 256
    for start in range(0, len(values), block):
        rows = values[start : start + block]
        near = np.bitwise_count(rows[:, None] ^ values[None, start:]) <= max_bits
        for i, j in zip(*np.nonzero(near), strict=True):
            a, b = root(start + int(i)), root(start + int(j))
            if a != b:
                parent[b] = a
    groups: dict[int, list[int]] = {}
    for index in range(len(ids)):
        groups.setdefault(root(index), []).append(index)
    return [
        sorted(int(ids[i]) for i in members)
        for members in groups.values()
        if len(members) > 1 and len({hashes[i][2] for i in members}) > 1
    ]


def _problem(rule: str, blocking: bool, count: int, message: str, image_ids=None) -> dict:
    return {
        "rule": rule, "severity": "blocking" if blocking else "warning", "count": count, "message": message,
        "image_ids": (image_ids or [])[:SHOWN_IDS],
    }  # fmt: skip


def _assemble(dataset: Dataset, facts: _Facts, max_images: int) -> dict:
    totals = facts.totals
    images = totals["images"]
    encoder = text_encoders.for_version(dataset.training_version)
    problems: list[dict] = []

    ready = health.readiness(dataset.training_version, images, max_images, dataset.visual_schema)
    problems += [_problem("readiness", True, 1, message) for message in ready.blocking]
    problems += [_problem("recommended_images", False, 1, message) for message in ready.warnings]

    by_issue: dict[str, list[int]] = {name: [] for name in health.IMAGE_ISSUES}
    by_rule: dict[str, list[int]] = {rule.name: [] for rule in lint.RULES}
    flagged_ids = []
    for image_id, *rest in facts.flagged:
        picture, issues, state = health.Picture(*rest[:8]), rest[8], rest[9]
        for name in health.image_issues(picture):
            by_issue[name].append(image_id)
        for rule in lint.rules_in(issues or 0):
            by_rule[rule.name].append(image_id)
        if state == review.FLAGGED:
            flagged_ids.append(image_id)
    if flagged_ids:
        problems.append(_problem(
            "flagged", True, len(flagged_ids), f"{len(flagged_ids)} images are flagged for attention.", flagged_ids
        ))  # fmt: skip

    exact = facts.exact_groups
    near = near_duplicate_groups(facts.hashes)
    if exact:
        extra = sum(len(g) - 1 for g in exact)
        problems.append(_problem(
            "exact_duplicates", True, extra,
            f"{extra} images are exact copies of another image in the dataset ({len(exact)} groups).",
            [i for g in exact for i in g[1:]],
        ))  # fmt: skip
    if near:
        extra = sum(len(g) - 1 for g in near)
        problems.append(_problem(
            "near_duplicates", False, extra,
            f"{len(near)} groups of near-duplicate pictures ({sum(map(len, near))} images).",
            [i for g in near for i in g],
        ))  # fmt: skip

    for rule in lint.RULES:
        count = facts.rule_counts[rule.name]
        if count:
            message = f"{count} captions: {rule.summary}."
            problems.append(_problem(rule.name, rule.blocking, count, message, by_rule[rule.name]))
    same_captions = [ids for _, ids in facts.caption_groups]
    if same_captions:
        problems.append(_problem(
            "duplicate_captions", False, sum(map(len, same_captions)),
            f"{len(same_captions)} captions are each shared by several images.", [i for g in same_captions for i in g],
        ))  # fmt: skip
    for name, description in health.IMAGE_ISSUES.items():
        if by_issue[name]:
            count = len(by_issue[name])
            problems.append(_problem(name, False, count, f"{count} images are {description}.", by_issue[name]))
    if totals["unreviewed_automatic"]:
        count = totals["unreviewed_automatic"]
        problems.append(_problem("unreviewed", False, count, f"{count} automatic captions have not been reviewed."))
    pending = {"measurements": images - totals["measured"], "lint": images - totals["linted"]}
    if any(pending.values()):
        problems.append(_problem(
            "pending", False, max(pending.values()),
            f"The report is still being computed: {pending['measurements']} images to measure, "
            f"{pending['lint']} captions to lint.",
        ))  # fmt: skip

    bucket_counts: Counter = Counter()
    for width, height, turned, count in facts.sizes:
        bucket_counts[health.bucket_of(*((height, width) if turned else (width, height)))[0]] += count

    step = max(1, round(encoder.limit / 10))
    histogram: Counter = Counter()
    for tokens, count in facts.tokens:
        histogram[tokens // step] += count
    words: Counter = Counter()
    for terms in facts.terms:
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
        "review": {state: totals[state] for state in review.REVIEW_STATES}
        | {"unreviewed_automatic": totals["unreviewed_automatic"]},
        "duplicates": {
            "exact": [{"image_ids": g} for g in exact[:SHOWN_GROUPS]],
            "near": [{"image_ids": g} for g in near[:SHOWN_GROUPS]],
        },
        "image_issues": [
            {"issue": name, "description": text, "count": len(by_issue[name]), "image_ids": by_issue[name][:SHOWN_IDS]}
            for name, text in health.IMAGE_ISSUES.items()
        ],
        "buckets": {
            "area": health.BUCKET_AREA, "step": health.BUCKET_STEP,
            "counts": [{"width": w, "height": h, "count": c} for (w, h), c in sorted(bucket_counts.items())],
            "most_cropped": facts.most_cropped,
        },
        "captions": {
            "encoder": encoder.as_dict(),
            "token_histogram": [
                {"from": k * step, "to": (k + 1) * step - 1, "count": c} for k, c in sorted(histogram.items())
            ],
            "top_words": [{"word": w, "count": c} for w, c in words.most_common(TOP_WORDS)],
            "lint": [
                {"rule": r.name, "severity": "blocking" if r.blocking else "warning", "summary": r.summary,
                 "count": facts.rule_counts[r.name], "image_ids": by_rule[r.name][:SHOWN_IDS]}
                for r in lint.RULES
            ],
            "duplicate_captions": [
                {"caption": caption if len(caption) <= 300 else caption[:300] + "…", "image_ids": ids[:SHOWN_IDS]}
                for caption, ids in facts.caption_groups[:SHOWN_GROUPS]
            ],
        },
    }  # fmt: skip


async def duplicate_ids(services: Services, org_id: int, dataset_id: int) -> frozenset[int]:
    """Every image in a group of exact or near duplicates (for the image list's `only=duplicates`)."""
    async with services.db.read() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id)
        live = _in(dataset.id)
        copies = select(Image.sha256).where(*live).group_by(Image.sha256).having(func.count() > 1)
        exact = set((await session.execute(select(Image.id).where(*live, Image.sha256.in_(copies)))).scalars())
        hashes = (
            await session.execute(select(Image.id, Image.phash, Image.sha256).where(*live, Image.phash.is_not(None)))
        ).all()
    near = await anyio.to_thread.run_sync(near_duplicate_groups, hashes)
    return frozenset(exact | {image_id for group in near for image_id in group})


async def lint_one(
    services: Services, org_id: int, dataset_id: int, caption: str | None = None, image_id: int | None = None
) -> dict:
    """A draft caption, or the image's stored one, linted for this dataset; and the other images captioned the same."""
    async with services.db.read() as session:
        dataset = await repo.get_dataset(session, org_id, dataset_id)
        if image_id is not None:
            caption = (await repo.get_image(session, dataset, image_id)).caption
        same = []
        if caption:
            others = (*_in(dataset.id), Image.caption == caption, Image.id != (image_id or 0))
            query = select(Image.id).where(*others).order_by(Image.id)
            same = list((await session.execute(query.limit(SHOWN_IDS))).scalars())
    version, prefix = dataset.training_version, dataset.caption_prefix
    result = await anyio.to_thread.run_sync(lint.lint_caption, caption, version, prefix)
    return {
        "encoder": result.encoder.as_dict(),
        "tokens": result.tokens,
        "findings": [vars(finding) for finding in result.findings],
        "same_caption_image_ids": same,
    }
