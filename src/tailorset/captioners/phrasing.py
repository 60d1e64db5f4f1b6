"""Turning the local captioner's signals into words: the subject decision, legacy text captions, FIBO JSON
captions and the dataset-level suggestions. Pure functions, no models."""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tailorset.captioners.fusion import NAME_MIN, NAMED, Subject, Thing
from tailorset.captioners.pixels import Tones

if TYPE_CHECKING:
    from tailorset.captioners.local import ImageSignals

log = logging.getLogger(__name__)

MEDIUM_WORDS = (
    "photo",
    "painting",
    "illustration",
    "render",
    "drawing",
    "sketch",
    "watercolor",
    "watercolour",
    "cartoon",
    "anime",
    "pixel art",
    "3d",
    "vector",
    "collage",
    "print",
    "engraving",
)


# -- shared wording ------------------------------------------------------------------------------------
def _join(words: Sequence[str]) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def exposure_level(tones: Tones) -> str:
    """The exposure in one word: dark, balanced or bright."""
    return "dark" if tones.luminance < 0.3 else "bright" if tones.luminance > 0.65 else "balanced"


def _exposure(tones: Tones) -> str:
    return {"dark": "dark low-key lighting", "bright": "bright high-key lighting"}.get(
        exposure_level(tones), "balanced exposure"
    )


def _contrast(tones: Tones) -> str:
    return "high contrast" if tones.contrast >= 0.3 else "low contrast" if tones.contrast < 0.1 else "moderate contrast"


def _colour_words(tones: Tones) -> str:
    return f"{_join([name for name, _ in tones.colours])} tones"


def _medium(signals: ImageSignals) -> str:
    return "black and white photo" if signals.tones.monochrome else "photo"


def _where(subject: Subject) -> str:
    return {"center": "in the center of the frame"}.get(subject.placement, f"in the {subject.placement} of the frame")


# -- legacy text captions --------------------------------------------------------------------------------
_MEDIUM_END = re.compile(r"\b(photo|photograph|picture|image|shot|portrait)(\s+of)?\s*$", re.IGNORECASE)
_CONNECTIVE_END = re.compile(r"\b(of|with|showing|depicting|featuring|shows|depicts|features)\s*$", re.IGNORECASE)


def legacy_caption(signals: ImageSignals, prefix: str | None) -> str:
    """One sentence that continues `prefix` (which it starts with exactly once), e.g.
    "sks style, a photo of a tabby cat, brown, beige and orange tones, balanced exposure"."""
    subject = signals.subject
    medium = _medium(signals)
    details = []
    if subject.shot:
        details.append(subject.shot)
    if subject.kind in ("person", "animal", "thing") and subject.placement.endswith(("left", "right")):
        details.append(f"subject on the {subject.placement.split()[-1]}")
    details.append("high contrast" if signals.tones.monochrome and signals.tones.contrast >= 0.3 else "")
    details.append("" if signals.tones.monochrome else _colour_words(signals.tones))
    details.append(_exposure(signals.tones))
    tail = ", ".join(d for d in details if d)
    head = f"a {medium} of {subject.text}" if subject.text else f"a {medium}"

    base = (prefix or "").strip()
    if not base:
        return f"{head[0].upper()}{head[1:]}, {tail}"
    # Without our own "a black and white photo" head, say it in the details (unless the prefix does).
    monochrome = "black and white, " if signals.tones.monochrome and "black and white" not in base.lower() else ""
    if subject.text and subject.kind in NAMED and _mentions(base, subject.phrase):
        # The prefix already names the subject ("A photo of a tabby cat"): carry on with the details.
        return f"{base}, {monochrome}{tail}"
    if _MEDIUM_END.search(base):  # "A photo of" / "a portrait": continue with the subject
        joiner = " " if base.lower().endswith(" of") else " of "
        return f"{base}{joiner}{subject.text or 'the scene'}, {monochrome}{tail}"
    if _CONNECTIVE_END.search(base):  # "sks dog with"
        return f"{base} {subject.text or 'a scene'}, {tail}"
    separator = " " if base.endswith((",", ":", ";", "-")) else ", "
    return f"{base}{separator}{head}, {tail}"


def _mentions(text: str, phrase: str) -> bool:
    noun = re.sub(r"^(a|an|the|some|two|three)\s+", "", phrase.lower())
    return re.search(rf"\b{re.escape(noun)}\b", text.lower()) is not None


# -- FIBO JSON captions ----------------------------------------------------------------------------------
def fibo_caption(signals: ImageSignals, guidance: dict[str, str]) -> dict:
    """A FIBO caption (canonical key order, no empty values) from the signals and visual-schema guidance."""
    subject, tones = signals.subject, signals.tones
    medium = _medium(signals)
    frame = f"{signals.orientation} frame"
    colour_scheme = (
        f"black and white, {_contrast(tones)}" if tones.monochrome else f"{_colour_words(tones)}, {_warmth(tones)}"
    )
    scene = _scene(signals)
    if subject.text:
        short = f"A {medium}graph of {subject.text}"
        if subject.kind in ("person", "animal", "thing"):
            short += f", {subject.shot + ', ' if subject.shot else ''}{_where(subject)}"
    else:
        short = f"A {medium}graph without a clearly recognizable main subject"
    palette = "black and white" if tones.monochrome else _colour_words(tones)
    short += f". {_sentence(palette)}, {_exposure(tones)}, {frame}."
    if scene and subject.kind != "scene":
        short += f" The setting looks like {scene}."

    caption: dict = {
        "short_description": short,
        "objects": _objects(subject, signals.objects),
        "background_setting": _background(signals, scene),
        "lighting": {
            "conditions": _exposure(tones) + ("" if tones.monochrome else f", {_warmth(tones)} color balance"),
            "direction": _light_side(tones),
            "shadows": _shadows(tones),
        },
        "aesthetics": {
            "composition": ", ".join(filter(None, [subject.shot, _composition(subject), frame])),
            "color_scheme": colour_scheme,
            "mood_atmosphere": _mood(tones),
        },
        "photographic_characteristics": _camera(signals),
        "style_medium": "photograph",
        "context": f"A {signals.orientation} {'black and white' if tones.monochrome else 'color'} photograph"
        + (f" of {subject.text}." if subject.text else "."),
        "artistic_style": "monochrome, realistic" if tones.monochrome else "realistic",
    }
    _apply_guidance(caption, guidance)
    return _clean(caption)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _objects(subject: Subject, things: Sequence[Thing]) -> list[dict]:
    """The main subject first, then every other detected object with its count, location and size."""
    items = []
    if subject.text and subject.kind in ("person", "animal", "thing"):
        person = subject.kind == "person"
        main = next((t for t in things if t.noun == subject.noun), None)
        items.append(
            {
                "description": _sentence(subject.named) + ".",
                "location": f"{subject.placement} of the frame",
                "relationship": "The main subject of the image"
                + (f", shown together with {subject.with_object}." if subject.with_object else "."),
                "relative_size": _size(main.w * main.h) if main else _SHOT_SIZE.get(subject.shot or ""),
                "number_of_objects": subject.count if subject.count > 1 else None,
                "clothing": f"wearing {subject.wearing}" if person and subject.wearing else None,
                "gender": subject.gender if person else None,
                "orientation": {"frontal": "face turned toward the camera", "profile": "face seen in profile"}.get(
                    subject.view or ""
                ),
            }
        )
    for thing in things:
        if items and thing.noun == subject.noun:
            continue
        items.append(
            {
                "description": _sentence(thing.phrase) + ".",
                "location": f"{thing.placement} of the frame",
                "relationship": "Shown with the main subject." if items else "One of the things in the image.",
                "relative_size": _size(thing.w * thing.h),
                "number_of_objects": thing.count if thing.count > 1 else None,
            }
        )
    return items


_SHOT_SIZE = {"close-up": "large within frame", "medium shot": "medium-to-large", "wide shot": "small"}


def _size(area: float) -> str:
    if area >= 0.4:
        return "large within frame"
    if area >= 0.1:
        return "medium-sized"
    return "small" if area >= 0.02 else "very small"


def evidence(signals: ImageSignals, wants_json: bool) -> dict:
    """What a caption rests on, stored with it (images.caption_signals): compact and JSON-serialisable."""
    subject = signals.subject
    named = [subject.phrase, subject.wearing, subject.with_object]
    if wants_json:
        named += [t.phrase for t in signals.objects if t.noun != subject.noun or subject.kind not in NAMED]
    return {
        "subject": subject.phrase or None,
        "kind": subject.kind,
        **({"guess": subject.guess} if subject.guess else {}),  # a subject withheld for doubt (fusion.CAPTION_MIN)
        "evidence": list(subject.evidence),
        "named": [n for n in named if n],
        "classifier": [[lb.phrase, round(lb.probability, 3)] for lb in signals.labels[:3]],
        "detector": [[d.label, d.score, [d.x, d.y, d.w, d.h]] for d in signals.detections[:5]],
        **({"scene": [[p.phrase, round(p.probability, 3)] for p in signals.places]} if signals.places else {}),
        "faces": len(signals.faces),
        "monochrome": signals.tones.monochrome,
        "exposure": exposure_level(signals.tones),
    }


def _scene(signals: ImageSignals) -> str | None:
    """The place shown: the subject when it is one, else the classifier's surest place (unnamed below NAME_MIN)."""
    if signals.subject.kind == "scene":
        return signals.subject.phrase
    scene = next((lb for lb in signals.labels if lb.kind == "scene" and lb.probability >= NAME_MIN), None)
    return scene.phrase if scene else None


def _background(signals: ImageSignals, scene: str | None) -> str:
    colours = _join(signals.background_colours)
    text = f"{_sentence(scene)}. " if scene else ""
    return text + f"The edges of the frame are mostly {colours}."


def _warmth(tones: Tones) -> str:
    return "warm" if tones.warmth > 0.08 else "cool" if tones.warmth < -0.05 else "neutral"


def _light_side(tones: Tones) -> str:
    if tones.brightest == "even":
        return "evenly lit across the frame"
    return f"the {tones.brightest} of the frame is brightest"


def _shadows(tones: Tones) -> str:
    if tones.shadows >= 0.25:
        return "large areas of deep shadow"
    if tones.shadows >= 0.08:
        return "some deep shadows"
    return "few deep shadows"


def _composition(subject: Subject) -> str:
    if subject.kind in ("scene", "texture", "starfield"):
        return "scene fills the frame"
    if subject.kind in ("none", "withheld"):
        return "no single dominant subject"
    return "subject centered" if subject.placement == "center" else f"subject in the {subject.placement}"


def _mood(tones: Tones) -> str:
    if tones.luminance < 0.3:
        return "dark and moody"
    if tones.luminance > 0.65:
        return "light and airy"
    return "neutral"


def _camera(signals: ImageSignals) -> dict:
    view = signals.subject.view
    return {
        "depth_of_field": "shallow, the center is sharper than the edges"
        if signals.centre_sharpness >= 1.8
        else "deep, detail across the frame",
        "focus": "soft focus" if signals.sharpness < 0.02 else "sharp focus",
        "camera_angle": {"frontal": "eye-level, facing the subject", "profile": "side-on to the subject"}.get(
            view or "", "not determined"
        ),
        "lens_focal_length": "not determined",
    }


# -- visual_schema guidance ------------------------------------------------------------------------------
_GUIDANCE_KEYS = {
    "medium": "style_medium",
    "style_medium": "style_medium",
    "style": "artistic_style",
    "artistic_style": "artistic_style",
    "aesthetic": "artistic_style",
    "context": "context",
    "purpose": "context",
    "use": "context",
    "use_case": "context",
    "intended_use": "context",
    "domain": "context",
    "mood": "mood",
    "mood_atmosphere": "mood",
    "atmosphere": "mood",
    "colors": "colors",
    "colours": "colors",
    "color_scheme": "colors",
    "colour_scheme": "colors",
    "palette": "colors",
    "lighting": "lighting",
    "composition": "composition",
    "background": "background",
    "background_setting": "background",
    "setting": "background",
    "lens": "lens",
    "lens_focal_length": "lens",
    "camera_angle": "angle",
    "angle": "angle",
    "depth_of_field": "depth_of_field",
}


def parse_visual_schema(text: str | None) -> dict[str, str]:
    """The guidance a visual_schema JSON string gives, under our own field names (see local.py)."""
    if not text or not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        log.warning("visual_schema is not JSON; ignoring it")
        return {}
    found: dict[str, str] = {}

    def walk(node: object) -> None:
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value)
                continue
            text = ", ".join(map(str, value)) if isinstance(value, list) else str(value) if value is not None else ""
            field = _GUIDANCE_KEYS.get(re.sub(r"[\s-]+", "_", str(key).strip().lower()))
            if field and text.strip() and field not in found:
                found[field] = text.strip()

    walk(data)
    return found


def _apply_guidance(caption: dict, guidance: dict[str, str]) -> None:
    g = guidance.get
    if g("style_medium"):
        caption["style_medium"] = g("style_medium")
    if g("artistic_style"):
        caption["artistic_style"] = g("artistic_style")
        if not g("style_medium") and any(word in g("artistic_style").lower() for word in MEDIUM_WORDS):
            caption["style_medium"] = g("artistic_style")
    if g("context"):
        caption["context"] = f"{g('context').rstrip('.')}. {caption['context']}"
    if g("mood"):
        caption["aesthetics"]["mood_atmosphere"] = g("mood")
    if g("colors"):
        caption["aesthetics"]["color_scheme"] += f"; dataset palette: {g('colors')}"
    if g("lighting"):
        caption["lighting"]["conditions"] += f"; {g('lighting')}"
    if g("composition"):
        caption["aesthetics"]["composition"] += f"; {g('composition')}"
    if g("background"):
        caption["background_setting"] = f"{g('background').rstrip('.')}. {caption['background_setting']}"
    camera = caption["photographic_characteristics"]
    for field, key in (("lens", "lens_focal_length"), ("angle", "camera_angle"), ("depth_of_field", "depth_of_field")):
        if g(field):
            camera[key] = g(field)


def _clean(node):
    """Drop None, empty strings, lists and objects at every depth, as Bria's canonical form does."""
    if isinstance(node, dict):
        cleaned = {k: _clean(v) for k, v in node.items()}
        return {k: v for k, v in cleaned.items() if v not in (None, "", [], {})}
    if isinstance(node, list):
        return [c for c in (_clean(v) for v in node) if c not in (None, "", [], {})]
    return node


# -- dataset-level suggestions ---------------------------------------------------------------------------
def _common(values: Sequence[str], share: float = 0.5) -> str | None:
    """The most common non-empty value, if it covers more than `share` of the images (ties: first seen)."""
    counted = Counter(v for v in values if v)
    if not counted:
        return None
    value, count = counted.most_common(1)[0]
    return value if count > share * len(values) or len(values) == 1 else None


def suggest_prefix(signals: Sequence[ImageSignals]) -> str:
    medium = "black and white photo" if all(s.tones.monochrome for s in signals) else "photo"
    subject = _common([s.subject.phrase for s in signals if s.subject.kind in NAMED], 0.5)
    if subject and sum(s.subject.phrase == subject for s in signals) * 2 <= len(signals):
        subject = None
    return f"A {medium} of {subject}" if subject else f"A {medium} of"


def suggest_visual_schema(signals: Sequence[ImageSignals]) -> dict[str, str]:
    n = len(signals)
    mono = sum(s.tones.monochrome for s in signals)
    colours = Counter(name for s in signals for name, _ in s.tones.colours)
    frequent = [name for name, count in colours.most_common() if count * 2 >= n][:4]
    exposure = _common([_exposure(s.tones) for s in signals])
    orientation = _common([s.orientation for s in signals])
    subjects = Counter(s.subject.phrase for s in signals if s.subject.kind in NAMED)
    schema = {
        "style_medium": "photograph",
        "artistic_style": "monochrome, realistic" if mono * 2 > n else "realistic",
        "subject": _join([p for p, _ in subjects.most_common(3)]) if subjects else None,
        "colors": "black and white" if mono * 2 > n else _join(frequent) + " tones" if frequent else "varied colors",
        "lighting": exposure or "varied exposure",
        "composition": f"mostly {orientation} frames" if orientation else "mixed frame orientations",
    }
    return {k: v for k, v in schema.items() if v}
