"""The captioner seam: everything that turns an image into a caption implements `Captioner`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from PIL import Image

FIBO = "fibo"


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


class CaptionerError(Exception):
    """The captioner could not caption this image (a bad model path, an unreachable endpoint…)."""


@runtime_checkable
class Captioner(Protocol):
    """Turns one image into one caption.

    For a legacy context it returns plain text; for a FIBO context (`context.wants_json`) it returns
    a JSON object serialised as a string. Implementations must be safe to call from several threads
    and should be deterministic for the same image and context.
    """

    name: str

    def caption(self, image: Image.Image, context: CaptionContext) -> str: ...
