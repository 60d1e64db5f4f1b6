"""Caption lint: what in a caption will hurt training, found before the GPU hours are spent.

Each rule has a bit (so a caption's findings are stored as one integer the database can count), a
severity (blocking: training on it would go wrong; otherwise a warning) and a sentence. Duplicate
captions are a dataset-level finding (services/health.py counts them in SQL)."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field

from tailorset import text_encoders
from tailorset.domain.lifecycle import FIBO

NOT_DETERMINED = "not determined"
MAX_TERMS = 40  # distinct words kept per caption for the dataset's word counts
# Words that say nothing of the subject: a caption made only of these (after its prefix) has none.
STOPWORDS = frozenset(
    ("a", "an", "the", "of", "and", "or", "with", "in", "on", "at", "to", "for", "by", "from", "as", "is", "are",
     "was", "were", "be", "this", "that", "these", "those", "it", "its", "photo", "photograph", "picture", "image",
     "shot", "illustration", "render", "style")
)  # fmt: skip
_WORD = re.compile(r"[^\W\d_]{2,}")


@dataclass(frozen=True)
class Rule:
    bit: int
    name: str
    blocking: bool
    summary: str


RULES = (
    Rule(1, "empty", True, "no caption"),
    Rule(2, "no_subject", True, "nothing but the prefix: no subject"),
    Rule(4, "token_limit", True, "longer than its text encoder reads; the rest is cut off in training"),
    Rule(8, "prefix_missing", True, "the dataset's caption prefix (trigger) is missing"),
    Rule(16, "prefix_repeated", False, "the caption prefix appears more than once"),
    Rule(32, "control_characters", True, "control or invisible characters"),
    Rule(64, "not_determined", False, 'FIBO fields left "not determined"'),
    Rule(128, "fibo_warnings", False, "the FIBO checker's warnings"),
)
BY_NAME = {rule.name: rule for rule in RULES}
BLOCKING = sum(rule.bit for rule in RULES if rule.blocking)
ALL = sum(rule.bit for rule in RULES)


def rules_in(issues: int) -> list[Rule]:
    return [rule for rule in RULES if issues & rule.bit]


@dataclass(frozen=True)
class Finding:
    rule: str
    blocking: bool
    message: str
    path: str | None = None  # FIBO: the JSON path it is about


@dataclass(frozen=True)
class CaptionLint:
    encoder: text_encoders.TextEncoder
    tokens: int | None  # None: no caption
    findings: list[Finding] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)  # its distinct words, prefix and stopwords left out

    @property
    def issues(self) -> int:
        return sum({BY_NAME[f.rule].bit for f in self.findings})


def lint_caption(caption: str | None, training_version: str, prefix: str | None) -> CaptionLint:
    """Every finding about one caption of a dataset with this training version and caption prefix."""
    encoder = text_encoders.for_version(training_version)
    if caption is None or not caption.strip():
        return CaptionLint(encoder, None, [_finding("empty", "The image has no caption.")])
    findings: list[Finding] = []
    tokens = encoder.count(caption)
    if tokens > encoder.limit:
        about = "" if encoder.exact else "about "
        estimated = "" if encoder.exact else " (estimated)"
        findings.append(_finding(
            "token_limit",
            f"The caption is {about}{tokens:,} {encoder.name} tokens{estimated}; {encoder.name} reads "
            f"{encoder.limit:,}, so the rest is cut off in training.",
        ))  # fmt: skip
    hidden = sorted({f"U+{ord(c):04X}" for c in caption if unicodedata.category(c) in ("Cc", "Cf")})
    if hidden:
        findings.append(_finding(
            "control_characters", f"The caption holds control or invisible characters ({', '.join(hidden[:5])})."
        ))  # fmt: skip
    if training_version == FIBO:
        subject = _fibo_findings(caption, findings)
    else:
        subject = _prefix_findings(caption, prefix, findings)
    terms = list(dict.fromkeys(w for w in _WORD.findall(subject.lower()) if w not in STOPWORDS))
    if training_version != FIBO and not terms:
        findings.append(_finding("no_subject", "The caption names no subject: it is the prefix and nothing more."))
    return CaptionLint(encoder, tokens, findings, terms[:MAX_TERMS])


def _finding(rule: str, message: str, path: str | None = None) -> Finding:
    return Finding(rule, BY_NAME[rule].blocking, message, path)


def _prefix_findings(caption: str, prefix: str | None, findings: list[Finding]) -> str:
    """Prefix missing or repeated; returns the caption without it (what describes the subject)."""
    trigger = " ".join((prefix or "").strip().rstrip(",;:").split()).lower()
    if not trigger:
        return caption
    text = " ".join(caption.split())
    occurrences = text.lower().count(trigger)
    if occurrences == 0:
        findings.append(_finding("prefix_missing", f"The caption does not contain the dataset's prefix “{trigger}”."))
    elif occurrences > 1:
        findings.append(_finding("prefix_repeated", f"The prefix “{trigger}” appears {occurrences} times."))
    return re.sub(re.escape(trigger), " ", text, flags=re.IGNORECASE)


def _fibo_findings(caption: str, findings: list[Finding]) -> str:
    """ "not determined" fields and the FIBO checker's warnings; returns the short description."""
    from tailorset.fibo import check_caption

    try:
        value = json.loads(caption)
    except ValueError:
        value = None
    undetermined = list(_undetermined(value, "caption"))
    if undetermined:
        shown = ", ".join(undetermined[:5]) + (" …" if len(undetermined) > 5 else "")
        findings.append(_finding(
            "not_determined", f"{len(undetermined)} fields say “{NOT_DETERMINED}”: {shown}.", undetermined[0]
        ))  # fmt: skip
    for warning in check_caption(caption).warnings:
        if warning.rule != "token_limit":  # counted above, against the encoder
            findings.append(_finding("fibo_warnings", f"{warning.message}.", warning.path))
    return value.get("short_description", "") if isinstance(value, dict) else ""


def _undetermined(value, path: str):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _undetermined(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _undetermined(item, f"{path}[{index}]")
    elif isinstance(value, str) and value.strip().lower() == NOT_DETERMINED:
        yield path
