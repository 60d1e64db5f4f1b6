"""Captioner backends, chosen by configuration (`TAILORSET_CAPTIONER`)."""

from tailorset.captioners.base import Caption, CaptionContext, Captioner, CaptionerError, as_caption

__all__ = ["Caption", "Captioner", "CaptionContext", "CaptionerError", "as_caption"]
