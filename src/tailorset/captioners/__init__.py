"""Captioner backends, chosen by configuration (`TAILORSET_CAPTIONER`).

Public: the interface below (a third-party captioner implements `Captioner`) and the entry-point group in
`registry.ENTRY_POINT_GROUP`; the built-in backends' modules are tailorset's own."""

from tailorset.captioners.base import Caption, CaptionContext, Captioner, CaptionerError, as_caption

__all__ = ["Caption", "Captioner", "CaptionContext", "CaptionerError", "as_caption"]
