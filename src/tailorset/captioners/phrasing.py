"""Turning the local captioner's signals into words: the subject decision, legacy text captions, FIBO JSON
captions and the dataset-level suggestions. Pure functions, no models."""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tailorset.captioners.faces import Face
from tailorset.captioners.imagenet import Label
from tailorset.captioners.pixels import Tones

if TYPE_CHECKING:
    from tailorset.captioners.local import ImageSignals

log = logging.getLogger(__name__)

SUBJECT_MIN = 0.2  # below this the classifier's best noun is not used at all
HEDGE_BELOW = 0.4  # below this it is hedged: "what looks like a rocket"
WORN_MIN = 0.3  # a worn item this likely is mentioned on a detected person
WITH_PERSON_MIN = 0.5  # another object this likely is mentioned next to a detected person
NUMBERS = {2: "two", 3: "three"}
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


@dataclass(frozen=True)
class Subject:
    """What the caption is about, decided from faces and classifier labels."""

    phrase: str  # "a person", "two people", "a tabby cat"; "" when nothing is recognisable
    kind: str  # "person", "thing", "scene" or "none"
    confidence: float  # classifier probability behind the phrase (1.0 for detected faces)
    wearing: str | None = None  # "a helmet", for a person
    with_object: str | None = None  # "a tripod", shown together with a person
    placement: str = "center"  # "left", "center" or "right", optionally after "upper " / "lower "
    shot: str | None = None  # "close-up", "medium shot" or "wide shot" (faces only)
    view: str | None = None  # "frontal" or "profile" (faces only)
    gender: str | None = None  # "female" or "male" (NudeNet only)
    count: int = 1

    @property
    def named(self) -> str:
        """The subject with its hedge and what it wears: "a person wearing a helmet", "what looks like a moped"."""
        if not self.phrase:
            return ""
        words = self.phrase if self.confidence >= HEDGE_BELOW else f"what looks like {self.phrase}"
        return f"{words} wearing {self.wearing}" if self.wearing else words

    @property
    def text(self) -> str:
        """`named` plus what is shown with it: "a person with a tripod"."""
        return f"{self.named} with {self.with_object}" if self.named and self.with_object else self.named


def choose_subject(labels: Sequence[Label], faces: Sequence[Face], point: tuple[float, float]) -> Subject:
    if faces:
        return _person(labels, faces)
    best = labels[0] if labels else None
    if best is None or best.probability < SUBJECT_MIN:
        return Subject("", "none", best.probability if best else 0.0, placement=_placement(*point))
    kind = best.kind if best.kind in ("person", "scene") else "thing"
    placement = "center" if kind == "scene" else _placement(*point)
    return Subject(best.phrase, kind, round(best.probability, 3), placement=placement)


def _person(labels: Sequence[Label], faces: Sequence[Face]) -> Subject:
    main = faces[0]
    count = len(faces)
    named = next((lb for lb in labels if lb.kind == "person" and lb.probability >= SUBJECT_MIN), None)
    if count > 1:
        phrase = f"{NUMBERS[count]} people" if count in NUMBERS else "a group of people"
    elif named:
        phrase = named.phrase
    else:
        phrase = {"female": "a woman", "male": "a man"}.get(main.gender or "", "a person")
    worn = next((lb for lb in labels if lb.kind == "worn" and lb.probability >= WORN_MIN), None)
    other = next((lb for lb in labels if lb.kind == "thing" and lb.probability >= WITH_PERSON_MIN), None)
    # Face height as a share of the frame height; Haar boxes run a little larger than NudeNet's.
    shot = "close-up" if main.h >= 0.3 else "medium shot" if main.h >= 0.12 else "wide shot"
    return Subject(
        phrase,
        "person",
        1.0,
        wearing=worn.phrase if worn else None,
        with_object=other.phrase if other else None,
        placement=_placement(main.x + main.w / 2, 0.5),
        shot=shot,
        view=main.view,
        gender=main.gender if count == 1 else None,
        count=count,
    )


def _placement(x: float, y: float) -> str:
    across = "left" if x < 0.4 else "right" if x > 0.6 else "center"
    up = "upper " if y < 0.35 else "lower " if y > 0.65 else ""
    return up + across


# -- shared wording ------------------------------------------------------------------------------------
def _join(words: Sequence[str]) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _exposure(tones: Tones) -> str:
    if tones.luminance < 0.3:
        return "dark low-key lighting"
    if tones.luminance > 0.65:
        return "bright high-key lighting"
    return "balanced exposure"


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
    if subject.kind in ("person", "thing") and subject.placement.endswith(("left", "right")):
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
    if subject.text and _mentions(base, subject.phrase):
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
        if subject.kind != "scene":
            short += f", {subject.shot + ', ' if subject.shot else ''}{_where(subject)}"
    else:
        short = f"A {medium}graph without a clearly recognizable main subject"
    palette = "black and white" if tones.monochrome else _colour_words(tones)
    short += f". {_sentence(palette)}, {_exposure(tones)}, {frame}."
    if scene and subject.kind != "scene":
        short += f" The setting looks like {scene}."

    caption: dict = {
        "short_description": short,
        "objects": _objects(subject),
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


def _objects(subject: Subject) -> list[dict]:
    if not subject.text or subject.kind == "scene":
        return []
    person = subject.kind == "person"
    item: dict = {
        "description": _sentence(subject.named) + ".",
        "location": f"{subject.placement} of the frame",
        "relationship": "The main subject of the image"
        + (f", shown together with {subject.with_object}." if subject.with_object else "."),
        "relative_size": {"close-up": "large within frame", "medium shot": "medium-to-large", "wide shot": "small"}.get(
            subject.shot or ""
        ),
        "number_of_objects": subject.count if subject.count > 1 else None,
        "clothing": f"wearing {subject.wearing}" if person and subject.wearing else None,
        "gender": subject.gender if person else None,
        "orientation": {"frontal": "face turned toward the camera", "profile": "face seen in profile"}.get(
            subject.view or ""
        ),
    }
    return [item]


def _scene(signals: ImageSignals) -> str | None:
    scene = next((lb for lb in signals.labels if lb.kind == "scene" and lb.probability >= SUBJECT_MIN), None)
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
    if subject.kind == "scene":
        return "scene fills the frame"
    if subject.kind == "none":
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
    subject = _common([s.subject.phrase for s in signals if s.subject.confidence >= HEDGE_BELOW], 0.5)
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
    subjects = Counter(s.subject.phrase for s in signals if s.subject.phrase)
    schema = {
        "style_medium": "photograph",
        "artistic_style": "monochrome, realistic" if mono * 2 > n else "realistic",
        "subject": _join([p for p, _ in subjects.most_common(3)]) if subjects else None,
        "colors": "black and white" if mono * 2 > n else _join(frequent) + " tones" if frequent else "varied colors",
        "lighting": exposure or "varied exposure",
        "composition": f"mostly {orientation} frames" if orientation else "mixed frame orientations",
    }
    return {k: v for k, v in schema.items() if v}
