"""The `openai` captioner: any OpenAI-compatible vision endpoint (vLLM, Ollama, LM Studio, OpenAI).

One `POST {base_url}/chat/completions` per image (plus at most one corrective round for FIBO), with the
image as a base64 JPEG data URL downsized to about 0.26 MP, as Bria does for its own captioning
(shared/reference/fibo-schema.md §6.1). Decoding is deterministic: temperature 0 and a fixed seed.

- Legacy datasets: the model is asked for one literal, comma-separated caption that continues the
  dataset's prefix; the answer is cleaned of quotes and chatter, and the prefix is put in front exactly
  once in code, whatever the model did with it.
- FIBO datasets: the model is asked for JSON, constrained by the caption schema through
  `response_format={"type": "json_schema", ...}`. A server that rejects that gets `{"type": "json_object"}`
  (and, if it rejects that too, no response_format); the downgrade is remembered for the instance. The
  answer goes through `tailorset.fibo.check_caption`; an invalid one gets a single corrective round with
  the validator's message, then a CaptionerError. The canonical caption is returned.
- Robustness: per-request timeout, retries with exponential backoff and jitter on timeouts, connection
  errors, 429 (Retry-After honoured, capped) and 5xx; other 4xx fail at once. Every failure is a
  CaptionerError with one sentence saying what happened and what to check.

The instance owns one `httpx.Client`, which is safe to share between the service's worker threads.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import random
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import httpx
from PIL import Image, ImageOps

from tailorset.captioners.base import CaptionContext, CaptionerError
from tailorset.domain.captions import apply_prefix
from tailorset.fibo import SCHEMA, check_caption, check_visual_schema

if TYPE_CHECKING:
    from tailorset.config import Settings

logger = logging.getLogger(__name__)

MAX_PIXELS = 262_144  # about 512 x 512, Bria's own captioning input (fibo-schema.md §6.1)
JPEG_QUALITY = 90
SEED = 42
LEGACY_MAX_TOKENS = 300
FIBO_MAX_TOKENS = 4096
MAX_VISUAL_SCHEMA_CHARS = 8_000
# Response formats for FIBO, strongest first; the instance steps down when a server rejects one.
JSON_SCHEMA, JSON_OBJECT, NO_FORMAT = "json_schema", "json_object", None
_FORMATS = (JSON_SCHEMA, JSON_OBJECT, NO_FORMAT)
# Words in a 400 body that say the server did not like the response_format we sent.
_FORMAT_COMPLAINT = re.compile(r"response[_ ]?format|json[_ ]?schema|json[_ ]?object|guided|structured output", re.I)


# -- prompts (also used by the transformers captioner) -------------------------------------------------------

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

FIBO_SYSTEM_PROMPT = """\
You are a meticulous visual analyst who writes structured captions for a text-to-image training dataset.
Look at the image and answer with one JSON object and nothing else: no code fence, no comments, no text \
before or after it. Describe only what is visible; be accurate, specific and not repetitive. Left and right \
of a person's body parts are from that person's own point of view; positions in the frame are from the viewer's.

""" + FIBO_KEYS_PROMPT

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


def image_data_url(image: Image.Image, max_pixels: int = MAX_PIXELS) -> str:
    buffer = io.BytesIO()
    prepare_image(image, max_pixels).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# -- the schema sent as response_format ---------------------------------------------------------------------


@cache
def response_schema() -> dict[str, Any]:
    """The caption schema as one self-contained JSON Schema that OpenAI-compatible servers accept.

    $ref/$defs are inlined (several constrained-decoding backends do not resolve them), `$schema`/`$id`/
    `$comment` and our `x-fibo-*` annotations are dropped, `unevaluatedProperties` becomes
    `additionalProperties`, and the non-blank `pattern` becomes `minLength: 1`; `tailorset.fibo` still
    validates the answer against the real schema.
    """
    defs = SCHEMA["$defs"]

    def inline(node: Any) -> Any:
        if isinstance(node, list):
            return [inline(item) for item in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            out.update(inline(defs[ref.rsplit("/", 1)[-1]]))
        for key, value in node.items():
            if key.startswith(("$", "x-")) or key in ("examples", "title"):
                continue
            if key == "unevaluatedProperties":
                out["additionalProperties"] = value
            elif key == "pattern":
                out["minLength"] = 1
            elif key == "properties":
                out[key] = {name: inline(prop) for name, prop in value.items()}
            else:
                out[key] = inline(value)
        return out

    schema = inline({"$ref": "#/$defs/CaptionCore"})
    schema["additionalProperties"] = False
    return schema


# -- the captioner ---------------------------------------------------------------------------------------


class _FormatRejected(CaptionerError):
    """A 400 that blames the response_format: the caller may retry with a weaker one."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class _Answer:
    content: str
    finish_reason: str | None


class OpenAICaptioner:
    """Captions through an OpenAI-compatible chat-completions endpoint with vision input."""

    name = "openai"

    def __init__(
        self,
        model: str,
        base_url: str = "http://127.0.0.1:11434/v1",
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 3,
        seed: int = SEED,
        legacy_max_tokens: int = LEGACY_MAX_TOKENS,
        fibo_max_tokens: int = FIBO_MAX_TOKENS,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        retry_after_max: float = 30.0,
        max_pixels: int = MAX_PIXELS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not model or not model.strip():
            raise CaptionerError("The openai captioner needs a model name: set TAILORSET_CAPTIONER_MODEL.")
        url = httpx.URL(base_url.strip().rstrip("/"))
        if url.scheme not in ("http", "https") or not url.host:
            raise CaptionerError(
                f"The openai captioner's base URL {base_url!r} is not an http(s) URL: "
                "set TAILORSET_OPENAI_BASE_URL, e.g. http://127.0.0.1:11434/v1."
            )
        self.model = model.strip()
        self.base_url = str(url)
        self.endpoint = f"{self.base_url}/chat/completions"
        self.where = str(url.copy_with(username=None, password=None))  # for messages: no credentials
        self.timeout = float(timeout)
        self.max_retries = max(0, int(max_retries))
        self.seed = seed
        self.legacy_max_tokens = legacy_max_tokens
        self.fibo_max_tokens = fibo_max_tokens
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        self.max_pixels = max_pixels
        headers = {"Accept": "application/json", "User-Agent": "tailorset-captioner"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(
            timeout=httpx.Timeout(self.timeout), headers=headers, transport=transport, follow_redirects=False
        )
        self._format_lock = threading.Lock()
        self._format_index = 0  # into _FORMATS; only ever increases

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAICaptioner:
        if not settings.captioner_model:
            raise CaptionerError(
                "The openai captioner needs a model name: set TAILORSET_CAPTIONER_MODEL "
                "(e.g. qwen2.5vl:7b for Ollama, or the model a vLLM server was started with)."
            )
        return cls(
            settings.captioner_model,
            settings.openai_base_url,
            settings.openai_api_key,
            timeout=settings.captioner_timeout_seconds,
            max_retries=settings.captioner_max_retries,
        )

    @property
    def response_format(self) -> str | None:
        """The FIBO response_format type this instance currently sends (None: no response_format)."""
        return _FORMATS[self._format_index]

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAICaptioner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OpenAICaptioner(model={self.model!r}, base_url={self.where!r})"

    # -- captioning --

    def caption(self, image: Image.Image, context: CaptionContext) -> str:
        image_part = {"type": "image_url", "image_url": {"url": image_data_url(image, self.max_pixels)}}
        if context.wants_json:
            return self._fibo(image_part, context)
        return self._legacy(image_part, context)

    def _legacy(self, image_part: dict[str, Any], context: CaptionContext) -> str:
        messages = [
            {"role": "system", "content": LEGACY_SYSTEM_PROMPT},
            {
                "role": "user",
                "content": [{"type": "text", "text": legacy_user_prompt(context.caption_prefix)}, image_part],
            },
        ]
        answer = self._complete(messages, max_tokens=self.legacy_max_tokens, json_mode=False)
        caption = continue_prefix(context.caption_prefix, clean_caption_text(answer.content))
        if not caption:
            raise CaptionerError(f"The openai captioner at {self.where} answered with an empty caption.")
        return caption

    def _fibo(self, image_part: dict[str, Any], context: CaptionContext) -> str:
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": fibo_system_prompt(context.visual_schema)},
            {"role": "user", "content": [{"type": "text", "text": FIBO_USER_PROMPT}, image_part]},
        ]
        return self._json_answer(messages, check_caption, "FIBO caption", json_mode=True)

    def refine(self, structured_prompt: str, instruction: str, images: list[Image.Image], *, caption: bool) -> str:
        """A FIBO caption (`caption`) or a visual_schema changed as `instruction` says, checked as its kind."""
        parts = [{"type": "text", "text": refine_user_prompt(structured_prompt, instruction)}]
        parts += [{"type": "image_url", "image_url": {"url": image_data_url(i, self.max_pixels)}} for i in images]
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": refine_system_prompt(caption)},
            {"role": "user", "content": parts},
        ]
        if caption:
            return self._json_answer(messages, check_caption, "FIBO caption", json_mode=True)
        return self._json_answer(messages, check_visual_schema, "visual_schema", json_mode=False)

    def _json_answer(self, messages: list[dict[str, Any]], check: Any, what: str, *, json_mode: bool) -> str:
        """The model's JSON answer as `check` stores it; an invalid one gets one corrective round."""
        for attempt in range(2):
            answer = self._complete(messages, max_tokens=self.fibo_max_tokens, json_mode=json_mode)
            if answer.finish_reason == "length":
                raise CaptionerError(
                    f"The openai captioner at {self.where} stopped at its {self.fibo_max_tokens}-token limit "
                    f"before the JSON {what} was complete."
                )
            checked = check(answer.content)
            if checked.valid and checked.caption is not None:
                return checked.caption
            problem = checked.error_message()
            if attempt == 0:
                logger.info("The openai captioner wrote an invalid %s (%s); asking once more.", what, problem)
                messages += [
                    {"role": "assistant", "content": answer.content},
                    {"role": "user", "content": corrective_prompt(problem)},
                ]
        raise CaptionerError(
            f"The openai captioner at {self.where} wrote an invalid {what} twice, the second time: "
            f"{problem.rstrip('.')}."
        )

    # -- the protocol --

    def _complete(self, messages: list[dict[str, Any]], *, max_tokens: int, json_mode: bool) -> _Answer:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "seed": self.seed,
            "max_tokens": max_tokens,
            "stream": False,
        }
        while True:
            index = self._format_index if json_mode else None
            body.pop("response_format", None)
            if index is not None and _FORMATS[index] is not None:
                body["response_format"] = self._response_format_body(_FORMATS[index])
            try:
                return self._post(body)
            except _FormatRejected as exc:
                if index is None or _FORMATS[index] is None:
                    raise
                self._step_down(index, exc)

    @staticmethod
    def _response_format_body(kind: str) -> dict[str, Any]:
        if kind == JSON_SCHEMA:
            return {"type": JSON_SCHEMA, "json_schema": {"name": "fibo_caption", "schema": response_schema()}}
        return {"type": kind}

    def _step_down(self, index: int, rejection: _FormatRejected) -> None:
        with self._format_lock:
            if self._format_index == index:
                self._format_index = index + 1
                fallback = _FORMATS[index + 1]
                logger.warning(
                    "The openai captioner at %s rejected response_format %s (%s); using %s from now on.",
                    self.where,
                    _FORMATS[index],
                    rejection.detail,
                    f"response_format {fallback}" if fallback else "no response_format",
                )

    def _post(self, body: dict[str, Any]) -> _Answer:
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._client.post(self.endpoint, json=body)
            except httpx.TimeoutException as exc:
                failure = CaptionerError(
                    f"The openai captioner at {self.where} did not answer within {self.timeout:g} s"
                    f"{_on_any(attempts)}: raise TAILORSET_CAPTIONER_TIMEOUT_SECONDS or check the server."
                )
                delay, reason = self._backoff(attempt), "timed out"
                cause: Exception = exc
            except httpx.TransportError as exc:
                failure = CaptionerError(
                    f"The openai captioner at {self.where} could not be reached{_on_any(attempts)} "
                    f"({type(exc).__name__}: {_one_line(str(exc))[:200] or 'no details'}): "
                    "check TAILORSET_OPENAI_BASE_URL and that the server is running."
                )
                delay, reason = self._backoff(attempt), f"{type(exc).__name__}"
                cause = exc
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return self._parse(response)
                if status != 429 and status < 500:
                    raise self._client_error(response)
                failure = self._server_error(response, attempts)
                delay, reason = self._retry_after(response, attempt), self._status(response)
                cause = failure
            if last:
                raise failure from cause
            logger.warning(
                "The openai captioner at %s: %s (attempt %d of %d); retrying in %.2f s.",
                self.where,
                reason,
                attempt + 1,
                attempts,
                delay,
            )
            time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: base·2^attempt, capped, times a random factor in [0.5, 1)."""
        return min(self.backoff_max, self.backoff_base * 2**attempt) * random.uniform(0.5, 1.0)

    def _retry_after(self, response: httpx.Response, attempt: int) -> float:
        value = response.headers.get("Retry-After")
        seconds = _parse_retry_after(value) if value else None
        if seconds is None:
            return self._backoff(attempt)
        return min(self.retry_after_max, seconds)

    def _status(self, response: httpx.Response) -> str:
        reason = response.reason_phrase or httpx.codes.get_reason_phrase(response.status_code)
        return f"{response.status_code} {reason}".strip()

    def _client_error(self, response: httpx.Response) -> CaptionerError:
        status, detail = response.status_code, _server_message(response)
        said = f" ({detail})" if detail else ""
        head = f"The openai captioner at {self.where} answered {self._status(response)}{said}"
        if status in (401, 403):
            return CaptionerError(f"{head}: check TAILORSET_OPENAI_API_KEY.")
        if status == 404:
            return CaptionerError(
                f"{head}: check TAILORSET_OPENAI_BASE_URL (usually ending in /v1) and that the server serves "
                f"the model {self.model!r} (TAILORSET_CAPTIONER_MODEL)."
            )
        if status in (400, 422) and _FORMAT_COMPLAINT.search(response.text or ""):
            return _FormatRejected(f"{head}.", detail or self._status(response))
        if status in (400, 422):
            return CaptionerError(
                f"{head}: check that the model {self.model!r} accepts images (a vision model is needed)."
            )
        return CaptionerError(f"{head}.")

    def _server_error(self, response: httpx.Response, attempts: int) -> CaptionerError:
        detail = _server_message(response)
        said = f" ({detail})" if detail else ""
        if response.status_code == 429:
            return CaptionerError(
                f"The openai captioner at {self.where} answered {self._status(response)}{said}{_on_all(attempts)}: "
                "lower the captioning concurrency or raise the endpoint's rate limit."
            )
        return CaptionerError(
            f"The openai captioner at {self.where} answered {self._status(response)}{said}{_on_all(attempts)}: "
            "check the server's logs."
        )

    def _parse(self, response: httpx.Response) -> _Answer:
        def malformed(why: str) -> CaptionerError:
            return CaptionerError(
                f"The openai captioner at {self.where} sent a response that is not a chat completion ({why}): "
                "check that TAILORSET_OPENAI_BASE_URL points at an OpenAI-compatible /v1 API."
            )

        try:
            data = response.json()
        except ValueError:
            raise malformed(f"not JSON: {_one_line(response.text)[:80]!r}") from None
        if not isinstance(data, dict):
            raise malformed("not a JSON object")
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise malformed("no choices")
        message = choices[0].get("message")
        if not isinstance(message, dict):
            raise malformed("no message in the first choice")
        refusal = message.get("refusal")
        if isinstance(refusal, str) and refusal.strip():
            raise CaptionerError(
                f"The openai captioner at {self.where} refused to caption the image: "
                f"{_one_line(refusal)[:200].rstrip('.')}."
            )
        content = _content_text(message.get("content"))
        if content is None:
            raise malformed("the message has no text content")
        if not content.strip():
            raise CaptionerError(f"The openai captioner at {self.where} answered with an empty message.")
        finish = choices[0].get("finish_reason")
        return _Answer(content, finish if isinstance(finish, str) else None)


# -- helpers ---------------------------------------------------------------------------------------------


def _on_any(attempts: int) -> str:
    return "" if attempts == 1 else f" on any of {attempts} attempts"


def _on_all(attempts: int) -> str:
    return "" if attempts == 1 else f" on all {attempts} attempts"


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip()


def _content_text(content: Any) -> str | None:
    """message.content as text: a string, or a list of parts of which the text ones are joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [part.get("text") for part in content if isinstance(part, dict) and part.get("type") == "text"]
        texts = [t for t in texts if isinstance(t, str)]
        return "".join(texts) if texts else None
    return None


def _server_message(response: httpx.Response) -> str:
    """The server's own explanation, one line, short: error.message, error, message or detail."""
    try:
        data = response.json()
    except ValueError:
        text = _one_line(response.text)
        return "" if text.lower().startswith("<") else text[:200]  # skip HTML error pages
    found: Any = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            found = error.get("message")
        found = found or error or data.get("message") or data.get("detail")
    if found is None:
        return ""
    if not isinstance(found, str):
        found = json.dumps(found, ensure_ascii=False)
    return _one_line(found)[:200]


def _parse_retry_after(value: str) -> float | None:
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
