"""The `openai` captioner: any OpenAI-compatible vision endpoint (vLLM, Ollama, LM Studio, OpenAI).

This module is the HTTP client; what the model is told and how its answer is cleaned is captioners/prompts.py.
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
from PIL import Image

from tailorset.captioners.base import CaptionContext, CaptionerError
from tailorset.captioners.prompts import (
    FIBO_USER_PROMPT,
    LEGACY_SYSTEM_PROMPT,
    MAX_PIXELS,
    clean_caption_text,
    continue_prefix,
    corrective_prompt,
    fibo_system_prompt,
    legacy_user_prompt,
    prepare_image,
    refine_system_prompt,
    refine_user_prompt,
)
from tailorset.fibo import SCHEMA, check_caption, check_visual_schema

if TYPE_CHECKING:
    from tailorset.config import Settings

logger = logging.getLogger(__name__)

JPEG_QUALITY = 90
SEED = 42
LEGACY_MAX_TOKENS = 300
FIBO_MAX_TOKENS = 4096
# Response formats for FIBO, strongest first; the instance steps down when a server rejects one.
JSON_SCHEMA, JSON_OBJECT, NO_FORMAT = "json_schema", "json_object", None
_FORMATS = (JSON_SCHEMA, JSON_OBJECT, NO_FORMAT)
# Words in a 400 body that say the server did not like the response_format we sent.
_FORMAT_COMPLAINT = re.compile(r"response[_ ]?format|json[_ ]?schema|json[_ ]?object|guided|structured output", re.I)


# -- the request -------------------------------------------------------------------------------------------


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
