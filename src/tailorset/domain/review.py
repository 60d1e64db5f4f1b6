"""Review state: whether a person has looked at an image's caption since it was last written by the captioner.

A new or automatically (re)captioned image is unreviewed; a person approves or flags it. A caption a
person wrote or chose (a manual edit, a bulk replace, a restore, an undo) is reviewed by the act of
writing it. A clone keeps each image's state."""

from __future__ import annotations

from tailorset.domain.captions import MANUAL
from tailorset.domain.errors import Invalid

UNREVIEWED, APPROVED, FLAGGED = "unreviewed", "approved", "flagged"
REVIEW_STATES = (UNREVIEWED, APPROVED, FLAGGED)
# The review queue: what needs a look first.
QUEUE_RANK = {UNREVIEWED: 0, FLAGGED: 1, APPROVED: 2}
MAX_NOTE_CHARS = 2000
# An automatic caption whose captioner's confidence is below this is doubtful: the health report lists those not yet
# reviewed, least sure first (the workbench's badge turns from green to amber here too, ui/static/confidence.js).
# On the evaluation set (bench/caption_quality.py) subjects named at 0.8 or more were right 93% of the time,
# those below it 84%, and below it lie every withheld guess and every caption that names no subject.
SURE = 0.8


def state_after_caption_write(caption_source: str | None, chosen_by_person: bool = False) -> str:
    """The review state an image has once a caption from `caption_source` is written to it; a caption a person
    chose (a restore of an automatic caption, say) counts as reviewed too."""
    return APPROVED if caption_source == MANUAL or chosen_by_person else UNREVIEWED


def checked_note(state: str, note: str | None) -> str | None:
    """A note belongs to a flag (why the image needs attention); approving or unapproving clears it."""
    if note is not None and state != FLAGGED:
        raise Invalid("note is only for flagged images; leave it out when approving or unapproving.")
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise Invalid(f"note is {len(note):,} characters long; the limit is {MAX_NOTE_CHARS:,}.")
    return (note or "").strip() or None
