"""The evaluation set of bench/caption_quality.py (bench/caption_eval.toml) is well formed: a broken label would
silently change the precision and recall it measures. Fast: the file only, no photo is fetched."""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from tailorset.captioners.detector import LABELS
from tailorset.captioners.fusion import COCO_PHRASES

EVAL_SET = Path(__file__).parents[1] / "bench" / "caption_eval.toml"
# as the header of caption_eval.toml describes them
SPLITS = ("tune", "holdout", "fresh", "blind", *(f"blind{n}" for n in range(2, 12)))  # blind2 … blind11
FIELDS = {"id", "source", "path", "sha256", "split", "note", "greyscale", "subject"}
OPTIONAL = {"also", "exposure", "objects"}
COCO_WORDS = set(LABELS) | set(COCO_PHRASES.values())  # as a FIBO caption describes them: "sports ball" is "ball"


@pytest.fixture(scope="module")
def evaluation_set() -> dict:
    return tomllib.loads(EVAL_SET.read_text(encoding="utf-8"))


def test_every_photo_is_labelled_in_full(evaluation_set):
    for photo in evaluation_set["photos"]:
        where = photo.get("id", photo)
        assert FIELDS <= photo.keys() <= FIELDS | OPTIONAL, where
        assert re.fullmatch(r"[a-z0-9_]+", photo["id"]), where
        assert re.fullmatch(r"[0-9a-f]{64}", photo["sha256"]), where
        assert photo["split"] in SPLITS, where
        assert isinstance(photo["greyscale"], bool), where
        assert photo["subject"] and all(word == word.strip() and word for word in photo["subject"]), where
        assert not set(photo["subject"]) & set(photo.get("also", ())), where  # a word is right, or neither
        assert photo.get("exposure", "dark") in ("dark", "bright"), where
        assert set(photo.get("objects", ())) <= COCO_WORDS, where


def test_photos_are_told_apart_and_come_from_declared_packages(evaluation_set):
    photos, sources = evaluation_set["photos"], evaluation_set["sources"]
    for key in ("id", "sha256"):
        repeated = [value for value, n in Counter(photo[key] for photo in photos).items() if n > 1]
        assert not repeated, f"{key} repeated: {repeated}"
    used = {photo["source"] for photo in photos}
    assert used == sources.keys()  # no photo from an undeclared package, no package without a photo
    for name, source in sources.items():
        assert source.keys() == {"registry", "package", "version", "licence"}, name
        assert source["registry"] in ("pypi", "debian", "npm"), name
