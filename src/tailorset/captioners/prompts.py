"""What a vision-language captioner is told and how its answer is cleaned: the prompts, the clean-up of a
caption sentence, the prefix rule and the image it is shown. Shared by the `openai` captioner (an HTTP
client, captioners/openai.py) and the `transformers` captioner (a model in this process)."""

from __future__ import annotations

import math
import re

from PIL import Image, ImageOps

from tailorset.domain.captions import apply_prefix

MAX_PIXELS = 262_144  # about 512 x 512, Bria's own captioning input (fibo-schema.md §6.1)
MAX_VISUAL_SCHEMA_CHARS = 8_000


# -- prompts -------------------------------------------------------

LEGACY_SYSTEM_PROMPT = (
    "You write captions for a text-to-image training dataset. Describe only what is plainly visible: "
    "the main subject, what it looks like and what it does, the setting, the colours, the lighting and the "
    "kind of image (photo, illustration, 3D render...). Be literal and specific; no opinions, no guesses "
    "about what cannot be seen, no names of real people. Answer with the caption only: one sentence of "
    "comma-separated phrases on one line, without quotes, labels or explanations."
)

FIBO_KEYS_PROMPT = """\
Keys, in this order (* = required):
- short_description*: one paragraph (at most 200 words) on the main subjects, what they do, the setting and the mood.
- objects: the most prominent foreground and midground things, at most 5, each an object with
  description* (what it is and looks like, at most 100 words), location* (place in the frame, e.g. "center",
  "top-left background"), relationship* (to the other objects or the scene) and, where they apply,
  relative_size ("small", "medium", "large within frame"), shape_and_color, texture, appearance_details,
  number_of_objects (an integer, only for a group of like items), orientation; for people and human-like
  figures also pose, expression, clothing, action, gender, skin_tone_and_texture.
- background_setting*: the environment and every background element not listed in objects.
- lighting*: {conditions* (e.g. bright daylight, dim indoor, studio lighting, golden hour), direction*
  (e.g. front-lit, backlit, side-lit from left), shadows}.
- aesthetics*: {composition* (framing and shot type, e.g. rule of thirds, centered, close-up),
  color_scheme*, mood_atmosphere*}.
- photographic_characteristics: {depth_of_field, focus, camera_angle, lens_focal_length}, all four or none.
- style_medium: the medium in lower case, e.g. "photograph", "digital illustration", "3D render",
  "oil painting", "watercolor".
- text_render: one entry per piece of legible text, {text* (the exact characters), location*, size*, color*,
  font*, appearance_details}; leave it out when there is no legible text and never invent text.
- context*: what kind of image this is and what it could be used for, e.g. "an e-commerce product photo".
- artistic_style: at most 3 style adjectives, e.g. "realistic, candid".
Every value is English text except number_of_objects. Leave out a key you have nothing to say about instead of \
writing null or an empty string. Add no other keys, and no preference_score or aesthetic_score."""

FIBO_SYSTEM_PROMPT = (
    """\
You are a meticulous visual analyst who writes structured captions for a text-to-image training dataset.
Look at the image and answer with one JSON object and nothing else: no code fence, no comments, no text \
before or after it. Describe only what is visible; be accurate, specific and not repetitive. Left and right \
of a person's body parts are from that person's own point of view; positions in the frame are from the viewer's.

"""
    + FIBO_KEYS_PROMPT
)

FIBO_USER_PROMPT = "Write the JSON caption for this image."


def legacy_user_prompt(prefix: str | None) -> str:
    prefix = (prefix or "").strip()
    if not prefix:
        return "Write the caption for this image."
    return (
        f'The caption must begin with exactly these words: "{prefix}". Continue them so that the whole caption '
        f'reads as one sentence about this image, and write the whole caption, starting with "{prefix}".'
    )


def fibo_system_prompt(visual_schema: str | None) -> str:
    guidance = (visual_schema or "").strip()
    if not guidance:
        return FIBO_SYSTEM_PROMPT
    if len(guidance) > MAX_VISUAL_SCHEMA_CHARS:
        guidance = guidance[:MAX_VISUAL_SCHEMA_CHARS] + " …"
    return (
        f"{FIBO_SYSTEM_PROMPT}\n\n"
        "Dataset guidance (the dataset's visual_schema): every caption in this dataset shares the style and "
        "vocabulary below. Reuse its wording for the fields it covers (such as style_medium, artistic_style, "
        "lighting, color_scheme, context) unless this image clearly shows otherwise, and describe this image's "
        f"own content as you see it.\n{guidance}"
    )


REFINE_SYSTEM_PROMPT = """\
You edit structured JSON prompts for a text-to-image training dataset. You are given a JSON object and an \
instruction. Apply the instruction, keep every part of the object it does not concern exactly as it is, keep \
the same keys and structure, and answer with the whole changed JSON object and nothing else: no code fence, \
no comments, no text before or after it. Images, if any, show what the dataset looks like."""


def refine_system_prompt(caption: bool) -> str:
    if caption:  # the caption's keys and their meaning, as when one is written from an image
        return f"{REFINE_SYSTEM_PROMPT}\n\nThe object is a FIBO caption.\n{FIBO_KEYS_PROMPT}"
    return (
        f"{REFINE_SYSTEM_PROMPT}\n\nThe object is a dataset's visual_schema: what all its images share (medium, "
        "style, colors, lighting, composition…), which guides the caption of every image in it."
    )


def refine_user_prompt(structured_prompt: str, instruction: str) -> str:
    return f"JSON object:\n{structured_prompt}\n\nInstruction: {instruction.strip()}"


def corrective_prompt(error_message: str) -> str:
    return f"That answer is not a valid caption: {error_message} Answer again with the corrected JSON object only."


# -- answers ---------------------------------------------------------------------------------------------

_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)
_STOP_TOKENS = re.compile(r"<\|(?:im_end|end_of_text|endoftext|eot_id|end)\|>|</s>|<eos>")
_FENCE = re.compile(r"^```[\w+.-]*[ \t]*$")
_LABEL = re.compile(
    r"^(?:(?:sure|okay|ok|certainly)[,.!]?\s+)?"
    r"(?:here(?:'s| is) (?:the |a |your |an? )?(?:image )?caption(?: for (?:this|the) image)?|"
    r"(?:the |image |final )?caption)\s*(?:[:\-–—]\s*)",
    re.I,
)
_QUOTES = "\"'`“”‘’«»"
_PREAMBLE = re.compile(r"^(?:sure|okay|ok|certainly|here)\b.*:\s*$", re.I)


def clean_caption_text(answer: str) -> str:
    """The caption sentence in a model's answer: no <think> block, fences, labels, quotes or extra lines."""
    text = _STOP_TOKENS.sub("", _THINK.sub("", answer))
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not _FENCE.match(line)]
    while len(lines) > 1 and _PREAMBLE.match(lines[0]):  # "Here is the caption:" on a line of its own
        lines.pop(0)
    text = lines[0] if lines else ""
    for _ in range(3):  # a label inside quotes, quotes inside a label, bullets…
        before = text
        text = _LABEL.sub("", text).strip()
        text = re.sub(r"^[-*•]\s+", "", text)
        if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
            text = text[1:-1].strip()
        if text == before:
            break
    return re.sub(r"\s+", " ", text).strip()


def continue_prefix(prefix: str | None, text: str) -> str:
    """`text` beginning with `prefix` exactly once, however often (0, 1, 2…) the model wrote it."""
    base = (prefix or "").strip()
    if base:
        stem = base.rstrip(",:;-–— ")
        leading = re.compile(r"\s*" + re.escape(stem) + r"(?!\w)[\s,:;\-–—]*", re.I)
        while (match := leading.match(text)) and match.end() > 0 and match.end() < len(text):
            text = text[match.end() :]
        if leading.fullmatch(text):  # the model wrote nothing but the prefix
            text = ""
    text = text.strip()
    if not text:
        return ""
    return apply_prefix(base, text)


# -- images ----------------------------------------------------------------------------------------------


def prepare_image(image: Image.Image, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Upright RGB at most `max_pixels` large, aspect ratio kept; transparency flattened onto white."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        image = background
    elif image.mode != "RGB":
        image = image.convert("RGB")
    width, height = image.size
    if width * height > max_pixels:
        scale = math.sqrt(max_pixels / (width * height))
        size = (max(1, math.floor(width * scale)), max(1, math.floor(height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return image
