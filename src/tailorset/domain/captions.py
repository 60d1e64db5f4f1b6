"""Caption rules: manual versus automatic, the prefix applied exactly once, FIBO captions canonical."""

from __future__ import annotations

from dataclasses import dataclass, field

from tailorset.domain.errors import Invalid
from tailorset.domain.lifecycle import FIBO
from tailorset.domain.text import caption_problem

MANUAL, AUTOMATIC = "manual", "automatic"
SOURCES = (AUTOMATIC, MANUAL)
NONE = "none"  # what a filter on caption_source names images without a caption by

# A dataset's captions_update_status: no Regenerate All yet, one queued or running, the last one ended.
UPDATE_EMPTY, UPDATE_IN_PROGRESS, UPDATE_COMPLETED = "empty", "in_progress", "completed"
UPDATE_STATES = (UPDATE_EMPTY, UPDATE_IN_PROGRESS, UPDATE_COMPLETED)

# A prefix ending in one of these reads as the start of a noun phrase ("A photo of" + "a cat").
_OPEN_ENDINGS = ("of", "a", "an", "the", "with", "featuring", "showing", "depicting", "and")


@dataclass(frozen=True)
class ManualCaption:
    text: str


@dataclass(frozen=True)
class Regenerate:
    pass


def decide(caption: str | None, regenerate_caption: bool | None) -> ManualCaption | Regenerate:
    """Exactly one of the two ways to update a caption."""
    if caption is not None and regenerate_caption:
        raise Invalid("Provide either caption or regenerate_caption, not both.")
    if caption is not None:
        return ManualCaption(caption)
    if regenerate_caption:
        return Regenerate()
    raise Invalid("Provide a caption, or set regenerate_caption to true.")


@dataclass(frozen=True)
class CheckedCaption:
    text: str
    corrections: list[str] = field(default_factory=list)  # names of the FIBO repair rules applied


def is_plain_caption(text: str, max_chars: int) -> bool:
    """Whether `text` is acceptable as a legacy dataset's caption as it is."""
    return len(text) <= max_chars and bool(text.strip()) and caption_problem(text) is None


# A FIBO caption's limit counts its stored, compact form; what is sent (pretty-printed, fenced…) may be this
# many times longer before it is refused unread.
FIBO_INPUT_FACTOR = 4


def max_input_chars(training_version: str, max_chars: int) -> int:
    """The longest text read as a caption: the limit itself, or for FIBO room for its pretty-printed form."""
    return max_chars * FIBO_INPUT_FACTOR if training_version == FIBO else max_chars


def _too_long(text: str, training_version: str, max_chars: int) -> Invalid | None:
    if len(text) <= max_input_chars(training_version, max_chars):
        return None
    if training_version == FIBO:
        return Invalid(
            f"caption is {len(text):,} characters long; a FIBO caption may be at most {max_chars:,} characters "
            f"in compact form, and is not read past {max_input_chars(FIBO, max_chars):,} as sent."
        )
    return Invalid(f"caption is {len(text):,} characters long; the limit is {max_chars:,}.")


def check_caption(text: str, training_version: str, max_chars: int) -> CheckedCaption:
    """Validate a caption for its dataset; FIBO captions come back repaired and canonical."""
    if too_long := _too_long(text, training_version, max_chars):
        raise too_long
    if problem := caption_problem(text):  # every path that writes a caption comes through here
        raise Invalid(f"caption {problem}.")
    if training_version != FIBO:
        if not is_plain_caption(text, max_chars):
            raise Invalid("caption must not be empty.")
        return CheckedCaption(text)
    from tailorset.fibo import check_caption as check_fibo

    result = check_fibo(text)
    if not result.valid:
        raise Invalid(result.error_message())
    if len(result.caption) > max_chars:
        raise Invalid(
            f"caption is {len(result.caption):,} characters long in compact form; the limit is {max_chars:,}."
        )
    rules = list(dict.fromkeys(c.rule for c in result.corrections))
    return CheckedCaption(result.caption, rules)


LINT_LIST_LIMIT = 100  # a caption with thousands of unknown keys still gets a readable answer


def lint(text: str, training_version: str, max_chars: int) -> dict:
    """What saving this caption would do, without saving it: the stored form, the repairs, the
    errors that would make it a 400, and the soft-limit warnings."""
    if problem := caption_problem(text):
        error = {"rule": "control_characters", "path": "caption", "message": f"caption {problem}."}
        return {"valid": False, "caption": None, "corrections": [], "errors": [error], "warnings": []}
    if training_version == FIBO:
        from tailorset.fibo import check_caption as check_fibo

        result = check_fibo(text) if len(text) <= max_input_chars(FIBO, max_chars) else None
        if result is not None and (result.caption is None or len(result.caption) <= max_chars):
            return {
                "valid": result.valid,
                "caption": result.caption,
                "corrections": [vars(c) for c in result.corrections[:LINT_LIST_LIMIT]],
                "errors": [vars(p) for p in result.errors[:LINT_LIST_LIMIT]],
                "warnings": [vars(p) for p in result.warnings[:LINT_LIST_LIMIT]],
            }
    try:
        checked = check_caption(text, training_version, max_chars)
    except Invalid as exc:
        rule = "too_large" if "characters long" in exc.message else "empty_text"
        error = {"rule": rule, "path": "caption", "message": exc.message}
        return {"valid": False, "caption": None, "corrections": [], "errors": [error], "warnings": []}
    return {"valid": True, "caption": checked.text, "corrections": [], "errors": [], "warnings": []}


def apply_prefix(prefix: str | None, text: str) -> str:
    """Begin `text` with `prefix` exactly once, joined so that it reads as one caption."""
    text = text.strip()
    prefix = (prefix or "").strip()
    if not prefix:
        return text
    if text.lower().startswith(prefix.lower()):
        return prefix + text[len(prefix) :]
    if text[:1].isupper() and not text[1:2].isupper():
        text = text[0].lower() + text[1:]  # "A tabby cat" continues a prefix as "a tabby cat"
    last_word = prefix.rstrip(",").rsplit(maxsplit=1)[-1].lower()
    if prefix.endswith(",") or last_word in _OPEN_ENDINGS:
        return f"{prefix} {text}"
    return f"{prefix}, {text}"


def default_prefix(ip_medium: str, ip_type: str, ip_name: str | None) -> str:
    """The prefix a new legacy dataset starts with, from its project's medium and subject."""
    medium = "A photo" if ip_medium == "photography" else "An illustration"
    if ip_type == "defined_character" and ip_name:
        return f"{medium} of {ip_name},"
    return f"{medium} of"
