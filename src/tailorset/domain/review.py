"""Review state: whether a person has looked at an image's caption since it was last written by the captioner.

A new or automatically (re)captioned image is unreviewed; a person approves or flags it. A caption a
person wrote (a manual edit, a restore, a bulk replace) is reviewed by the act of writing it."""

from __future__ import annotations

from tailorset.domain.captions import MANUAL

UNREVIEWED, APPROVED, FLAGGED = "unreviewed", "approved", "flagged"
REVIEW_STATES = (UNREVIEWED, APPROVED, FLAGGED)


def state_after_caption_write(caption_source: str | None) -> str:
    """The review state an image has once a caption from `caption_source` is written to it."""
    return APPROVED if caption_source == MANUAL else UNREVIEWED
