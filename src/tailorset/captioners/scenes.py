"""The Places365 scene categories as caption phrases (places_groups.txt, see its header): the vocabulary of the
scene classifier whose graph places.py builds, as imagenet.py is the ImageNet classifier's. Data file next to
this module."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from tailorset.captioners.places import CLASSES

# What a group of places is, for fusion._scene: see places_groups.txt.
GROUPS = ("landscape", "plants", "building", "place")


@dataclass(frozen=True)
class Place:
    """A caption phrase for a place, with the summed probability of the Places365 categories behind it."""

    phrase: str  # "a canyon", "the sky", "a building"
    group: str  # one of GROUPS
    probability: float
    categories: tuple[str, ...]  # the categories that contributed most, best first


@dataclass(frozen=True)
class _Table:
    categories: tuple[str, ...]
    phrase_of_class: np.ndarray  # class index -> phrase index; -1: never named
    phrases: tuple[str, ...]
    groups: tuple[str, ...]  # phrase index -> group


@cache
def _table() -> _Table:
    text = resources.files(__package__).joinpath("places_groups.txt").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if len(rows) != CLASSES:
        raise ValueError(f"places_groups.txt has {len(rows)} categories, expected {CLASSES}")
    categories, owner, phrases, groups = [], np.full(CLASSES, -1), {}, []
    for index, row in enumerate(rows):
        category, phrase, group = (field.strip() for field in row.split("|"))
        categories.append(category)
        if phrase == "-":
            continue
        if group not in GROUPS:
            raise ValueError(f"places_groups.txt: unknown group {group!r} for {category}")
        if phrase not in phrases:
            phrases[phrase] = len(groups)
            groups.append(group)
        elif groups[phrases[phrase]] != group:
            raise ValueError(f"places_groups.txt: {phrase!r} is in two groups")
        owner[index] = phrases[phrase]
    return _Table(tuple(categories), owner, tuple(phrases), tuple(groups))


def places(probabilities: np.ndarray, top: int = 3) -> tuple[Place, ...]:
    """The `top` most probable nameable places for one softmax vector over the 365 categories."""
    table = _table()
    named = table.phrase_of_class >= 0
    sums = np.bincount(table.phrase_of_class[named], weights=probabilities[named], minlength=len(table.phrases))
    out = []
    for p in np.argsort(-sums, kind="stable")[:top]:
        members = np.flatnonzero(table.phrase_of_class == p)
        ranked = sorted(members, key=lambda i: -probabilities[i])[:3]
        categories = tuple(table.categories[i] for i in ranked)
        out.append(Place(table.phrases[p], table.groups[p], round(float(sums[p]), 4), categories))
    return tuple(out)
