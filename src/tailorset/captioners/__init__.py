"""Captioner backends, chosen by configuration (`TAILORSET_CAPTIONER`)."""

from tailorset.captioners.base import Captioner, CaptionContext, CaptionerError

__all__ = ["Captioner", "CaptionContext", "CaptionerError"]
