"""ImageNet-1k class names and their grouping into caption nouns (data in imagenet_classes.txt and
imagenet_groups.txt, next to this module; see the header of the latter for the format)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

KINDS = ("thing", "person", "worn", "scene", "vague")
LAST_ANIMAL = 397  # ImageNet-1k classes 0-397 are animals
# A line's own phrase ("a tabby cat") is used when it holds this share of its noun's probability.
SPECIFIC_SHARE = 0.6


@dataclass(frozen=True)
class Label:
    """A caption noun with the summed probability of the ImageNet classes behind it."""

    phrase: str  # with its article: "a tabby cat", "a cup of espresso", "jeans"
    noun: str  # the coarse noun the probabilities were summed over: "cat"
    kind: str  # one of KINDS
    probability: float
    classes: tuple[str, ...]  # the ImageNet classes that contributed most, best first
    animal: bool = False  # every class behind the noun is an animal


@dataclass(frozen=True)
class _Group:
    noun: str
    phrase: str
    kind: str
    indices: tuple[int, ...]


def with_article(noun: str) -> str:
    """'a tripod', 'an espresso maker', 'an iPod'; a few 'u'/'o' spellings that sound like a consonant."""
    word = noun.split()[0].lower()
    vowel_sound = word[0] in "aeiou" and not word.startswith(("uni", "use", "usu", "one", "eu"))
    return f"{'an' if vowel_sound or word.startswith(('hour', 'honest')) else 'a'} {noun}"


def _text(name: str) -> list[str]:
    lines = resources.files(__package__).joinpath(name).read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


@cache
def class_names() -> tuple[str, ...]:
    names = tuple(_text("imagenet_classes.txt"))
    if len(names) != 1000:
        raise ValueError(f"imagenet_classes.txt has {len(names)} names, expected 1000")
    return names


def _indices(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.split():
        first, _, last = part.partition("-")
        out.extend(range(int(first), int(last or first) + 1))
    return out


@dataclass(frozen=True)
class _Table:
    groups: tuple[_Group, ...]
    group_of_class: np.ndarray  # class index -> group index
    noun_of_group: np.ndarray  # group index -> noun index
    nouns: tuple[str, ...]
    members: tuple[tuple[int, ...], ...]  # noun index -> its group indices


@cache
def _table() -> _Table:
    names = class_names()
    groups: list[_Group] = []
    owner = np.full(len(names), -1)
    for line in _text("imagenet_groups.txt"):
        noun, phrase, spec, *rest = (field.strip() for field in line.split("|"))
        kind = rest[0] if rest else "thing"
        if kind not in KINDS:
            raise ValueError(f"imagenet_groups.txt: unknown kind {kind!r}")
        # "*": every class keeps its own name but still counts towards the noun.
        members = [[i] for i in _indices(spec)] if phrase == "*" else [_indices(spec)]
        for indices in members:
            if (owner[indices] >= 0).any():
                raise ValueError(f"imagenet_groups.txt: a class in {line!r} is listed twice")
            owner[indices] = len(groups)
            text = with_article(names[indices[0]]) if phrase == "*" else phrase
            groups.append(_Group(noun if noun != "-" else text, text, kind, tuple(indices)))
    for index in np.flatnonzero(owner < 0):
        owner[index] = len(groups)
        groups.append(_Group(names[index], with_article(names[index]), "thing", (int(index),)))
    nouns = tuple(dict.fromkeys(group.noun for group in groups))
    noun_index = {noun: i for i, noun in enumerate(nouns)}
    noun_of_group = np.array([noun_index[group.noun] for group in groups])
    members = tuple(tuple(np.flatnonzero(noun_of_group == n).tolist()) for n in range(len(nouns)))
    return _Table(tuple(groups), owner, noun_of_group, nouns, members)


def labels(probabilities: np.ndarray, top: int = 5) -> tuple[Label, ...]:
    """The `top` most probable caption nouns for one softmax vector over the 1000 classes."""
    table = _table()
    names = class_names()
    group_p = np.bincount(table.group_of_class, weights=probabilities, minlength=len(table.groups))
    noun_p = np.bincount(table.noun_of_group, weights=group_p, minlength=len(table.nouns))
    out = []
    for n in np.argsort(-noun_p, kind="stable")[:top]:
        members = table.members[n]
        best_index = max(members, key=lambda g: group_p[g])
        best = table.groups[best_index]
        total = float(noun_p[n])
        specific = len(members) == 1 or group_p[best_index] >= SPECIFIC_SHARE * total
        phrase = best.phrase if specific else with_article(table.nouns[n])
        indices = [i for g in members for i in table.groups[g].indices]
        ranked = sorted(indices, key=lambda i: -probabilities[i])[:3]
        animal = all(i <= LAST_ANIMAL for i in indices)
        out.append(Label(phrase, table.nouns[n], best.kind, total, tuple(names[i] for i in ranked), animal))
    return tuple(out)
