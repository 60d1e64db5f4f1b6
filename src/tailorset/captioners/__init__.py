"""Captioner backends, chosen by configuration (`TAILORSET_CAPTIONER`)."""

from tailorset.captioners.base import CaptionContext, Captioner, CaptionerError

__all__ = ["Captioner", "CaptionContext", "CaptionerError"]
