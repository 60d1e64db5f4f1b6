"""The captioner seam: everything that turns an image into a caption implements `Captioner`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from tailorset.domain.lifecycle import FIBO  # one definition; captioners import it from here too


@dataclass(frozen=True)
class CaptionContext:
    """What a captioner may know about the dataset an image belongs to.

    training_version: the dataset's training version; "fibo" asks for a FIBO JSON caption,
        anything else for a text caption.
    caption_prefix: legacy datasets only; the caption must read as a continuation of it.
        The service re-applies it afterwards, so a captioner that ignores it is still correct.
    visual_schema: FIBO datasets only; a JSON string the dataset's captions should follow.
    """

    training_version: str = "max"
    caption_prefix: str | None = None
    visual_schema: str | None = None

    @property
    def wants_json(self) -> bool:
        return self.training_version == FIBO


@dataclass(frozen=True)
class Caption:
    """A captioner's answer: the caption, and what the captioner says of it.

    confidence: 0-1, how likely the caption is right about what it names (higher = more likely right);
        a caption that names no subject scores low, since it still needs a person to finish it. None when
        the captioner gives no confidence (the VLM backends, unless their model reports one).
    signals: what the caption rests on, as a small JSON-serialisable object (the detections, the
        classifier's labels, …), for a reviewer to see why.
    """

    text: str
    confidence: float | None = None
    signals: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.confidence is not None and not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"a caption's confidence must lie in 0..1, not {self.confidence}")


def as_caption(answer: Caption | str) -> Caption:
    """A captioner's answer as a Caption: third-party captioners may still return a plain string."""
    if isinstance(answer, Caption):
        return answer
    if isinstance(answer, str):
        return Caption(answer)
    raise CaptionerError(f"a captioner must return a Caption or a string, not {type(answer).__name__}")


class CaptionerError(Exception):
    """The captioner could not caption this image (a bad model path, an unreachable endpoint…)."""


@runtime_checkable
class Captioner(Protocol):
    """Turns one image into one caption.

    For a legacy context the caption is plain text; for a FIBO context (`context.wants_json`) it is a
    JSON object serialised as a string. It returns a `Caption` (the text with its confidence and
    signals) or just the text, as captioners written before confidence existed do (`as_caption`).
    Implementations must be safe to call from several threads and should be deterministic for the same
    image and context.
    """

    name: str

    def caption(self, image: Image.Image, context: CaptionContext) -> Caption | str: ...
