"""The openai captioner against a small chat-completions server on a real 127.0.0.1 socket."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from openai_server import ChatServer, Reply, answer, completion
from PIL import Image

from tailorset.captioners.base import CaptionContext, Captioner, CaptionerError
from tailorset.captioners.openai import MAX_PIXELS, OpenAICaptioner, image_data_url, response_schema
from tailorset.config import Settings
from tailorset.fibo import canonical_json, check_caption

LEGACY = CaptionContext(training_version="max", caption_prefix="sks style")
FIBO = CaptionContext(training_version="fibo")
CAPTION = {
    "short_description": "A tabby cat sleeps curled up on a red cushion.",
    "objects": [
        {"description": "A tabby cat, curled up asleep.", "location": "center", "relationship": "Lies on the cushion."}
    ],
    "background_setting": "A plain beige wall.",
    "lighting": {"conditions": "soft daylight", "direction": "side-lit from left"},
    "aesthetics": {"composition": "centered", "color_scheme": "warm reds and browns", "mood_atmosphere": "calm"},
    "style_medium": "photograph",
    "context": "A pet photograph.",
}
CANONICAL = canonical_json(CAPTION)
INVALID = json.dumps({k: v for k, v in CAPTION.items() if k != "context"})  # context is required


@pytest.fixture
def server():
    chat = ChatServer().start()
    yield chat
    chat.stop()


@pytest.fixture
def make(server):
    """A captioner for the test's server, with fast backoff; closed after the test."""
    made = []

    def factory(**options) -> OpenAICaptioner:
        options = {"model": "test-vlm", "base_url": server.url, "timeout": 5.0, "backoff_base": 0.01, **options}
        captioner = OpenAICaptioner(**options)
        made.append(captioner)
        return captioner

    yield factory
    for captioner in made:
        captioner.close()


def image(size=(96, 64), colour=(200, 60, 40), mode="RGB") -> Image.Image:
    return Image.new(mode, size, colour if mode == "RGB" else (*colour, 128))


# -- legacy ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "said, expected",
    [
        ("sks style, a red square on a plain background", "sks style, a red square on a plain background"),
        ("A red square on a plain background", "sks style, a red square on a plain background"),  # omitted
        ('Caption: "sks style, sks style, a red square"', "sks style, a red square"),  # repeated, chatter
        ("Here is the caption:\n\n'SKS STYLE, a red square'\n\nHope this helps!", "sks style, a red square"),
    ],
)
def test_legacy_caption_starts_with_the_prefix_exactly_once(server, make, said, expected):
    server.script(answer(said))
    assert make().caption(image(), LEGACY) == expected


def test_request_carries_image_model_temperature_seed_and_key(server, make):
    server.script(answer("sks style, a red square"))
    make(api_key="sk-test-123").caption(image((1024, 768), mode="RGBA"), LEGACY)

    (request,) = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test-123"
    body = request.body
    assert body["model"] == "test-vlm"
    assert body["temperature"] == 0
    assert isinstance(body["seed"], int)
    assert "response_format" not in body
    assert any('"sks style"' in text for text in request.texts())  # the prefix is in the prompt
    (url,) = request.image_urls()
    assert url.startswith("data:image/jpeg;base64,")
    sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert sent.format == "JPEG" and sent.mode == "RGB"
    assert sent.width * sent.height <= MAX_PIXELS
    assert abs(sent.width / sent.height - 1024 / 768) < 0.01


def test_no_key_no_authorization_header(server, make):
    server.script(answer("a red square"))
    assert make().caption(image(), CaptionContext()) == "a red square"
    assert "authorization" not in server.requests[0].headers


# -- FIBO --------------------------------------------------------------------------------------------


def test_fibo_sends_the_schema_and_repairs_fence_and_trailing_comma(server, make):
    sloppy = "```json\n" + json.dumps(CAPTION, indent=2)[:-1] + ",\n}\n```"
    server.script(answer(sloppy))
    guidance = '{"style_medium": "photograph", "mood": "calm"}'
    result = make().caption(image(), CaptionContext(training_version="fibo", visual_schema=guidance))

    assert result == CANONICAL
    assert check_caption(result).caption == result
    (request,) = server.requests
    response_format = request.body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "fibo_caption"
    schema = response_format["json_schema"]["schema"]
    assert schema == response_schema()
    assert "$" not in json.dumps(schema)  # no $ref/$defs/$schema for servers to choke on
    assert {"short_description", "lighting", "context"} <= set(schema["required"])
    system = request.texts()[0]
    assert guidance in system and "short_description" in system


def test_fibo_invalid_answer_gets_one_corrective_retry(server, make):
    server.script(answer(INVALID), answer(CANONICAL))
    assert make().caption(image(), FIBO) == CANONICAL

    first, second = server.requests
    assert len(second.messages) == len(first.messages) + 2
    assert second.messages[-2] == {"role": "assistant", "content": INVALID}
    assert "caption.context is required" in second.messages[-1]["content"]
    assert second.image_urls() == first.image_urls()


def test_fibo_still_invalid_is_an_error(server, make):
    server.script(answer(INVALID), answer("I cannot describe this image."))
    with pytest.raises(CaptionerError, match="invalid FIBO caption twice") as caught:
        make().caption(image(), FIBO)
    assert "JSON" in str(caught.value) or "json" in str(caught.value)
    assert len(server.requests) == 2


def test_json_schema_rejected_falls_back_to_json_object_and_remembers(server, make):
    rejected = Reply(400, {"error": {"message": "response_format.json_schema is not supported by this server"}})
    server.script(rejected, answer(CANONICAL), answer(CANONICAL))
    captioner = make()

    assert captioner.caption(image(), FIBO) == CANONICAL
    assert captioner.caption(image(), FIBO) == CANONICAL
    formats = [r.body["response_format"]["type"] for r in server.requests]
    assert formats == ["json_schema", "json_object", "json_object"]
    assert captioner.response_format == "json_object"


def test_truncated_fibo_answer_is_a_clear_error(server, make):
    server.script(Reply(body=completion(CANONICAL[:200], finish_reason="length")))
    with pytest.raises(CaptionerError, match="token limit"):
        make().caption(image(), FIBO)


# -- robustness ----------------------------------------------------------------------------------------


def test_retries_after_a_server_error(server, make):
    server.script(Reply(500, {"error": {"message": "CUDA out of memory"}}), answer("a red square"))
    assert make().caption(image(), CaptionContext()) == "a red square"
    assert len(server.requests) == 2


def test_429_retry_after_is_honoured(server, make):
    server.script(Reply(429, {"error": "slow down"}, headers={"Retry-After": "1"}), answer("a red square"))
    assert make().caption(image(), CaptionContext()) == "a red square"
    first, second = server.requests
    assert second.at - first.at >= 0.9


def test_timeouts_are_retried_then_an_error(server, make):
    server.default = Reply(body=completion("too late"), delay=1.0)
    started = time.monotonic()
    with pytest.raises(
        CaptionerError,
        match=r"did not answer within 0\.2 s on any of 3 attempts: raise TAILORSET_CAPTIONER_TIMEOUT_SECONDS",
    ):
        make(timeout=0.2, max_retries=2).caption(image(), CaptionContext())
    assert len(server.requests) == 3
    assert time.monotonic() - started < 2.5


def test_unreachable_server_is_an_error(make):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(
        CaptionerError, match=r"could not be reached on any of 2 attempts \(ConnectError.*TAILORSET_OPENAI_BASE_URL"
    ):
        make(base_url=f"http://127.0.0.1:{port}/v1", max_retries=1).caption(image(), CaptionContext())


def test_401_is_a_clear_error_and_not_retried(server, make):
    server.script(Reply(401, {"error": {"message": "Incorrect API key provided"}}))
    with pytest.raises(CaptionerError) as caught:
        make(api_key="wrong").caption(image(), LEGACY)
    message = str(caught.value)
    assert message.startswith(f"The openai captioner at {server.url} answered 401 Unauthorized")
    assert "TAILORSET_OPENAI_API_KEY" in message and "Incorrect API key" in message
    assert "wrong" not in message
    assert len(server.requests) == 1


def test_404_names_the_model_and_is_not_retried(server, make):
    server.script(Reply(404, {"error": {"message": "model 'test-vlm' not found"}}))
    with pytest.raises(CaptionerError, match="404 Not Found.*TAILORSET_CAPTIONER_MODEL"):
        make().caption(image(), LEGACY)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "reply",
    [
        Reply(body="<html>a proxy error page</html>"),
        Reply(body={"choices": []}),
        Reply(body={"choices": [{"message": {"role": "assistant"}}]}),
        Reply(body=[1, 2, 3]),
    ],
)
def test_malformed_response_is_an_error(server, make, reply):
    server.script(reply)
    with pytest.raises(CaptionerError, match="not a chat completion"):
        make().caption(image(), LEGACY)
    assert len(server.requests) == 1


def test_concurrent_calls_from_four_threads(server, make):
    def tag(url: str) -> str:
        return hashlib.sha1(url.encode()).hexdigest()[:8]

    server.default = lambda request: answer(f"a square number {tag(request.image_urls()[0])}", delay=0.15)
    captioner = make()
    images = [image(colour=(40 * i, 200 - 40 * i, 90)) for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda im: captioner.caption(im, LEGACY), images))

    assert results == [f"sks style, a square number {tag(image_data_url(im))}" for im in images]
    assert len(set(results)) == 4
    assert len(server.requests) == 4
    assert server.peak_in_flight >= 2  # really concurrent, not serialised by the captioner


# -- construction --------------------------------------------------------------------------------------


def test_from_settings(server):
    settings = Settings(
        captioner="openai",
        captioner_model="qwen2.5vl:7b",
        openai_base_url=server.url + "/",
        openai_api_key="sk-x",
        captioner_timeout_seconds=7,
        captioner_max_retries=1,
    )
    with OpenAICaptioner.from_settings(settings) as captioner:
        assert isinstance(captioner, Captioner)
        assert (captioner.model, captioner.base_url, captioner.timeout, captioner.max_retries) == (
            "qwen2.5vl:7b",
            server.url,
            7.0,
            1,
        )


def test_from_settings_needs_a_model():
    with pytest.raises(CaptionerError, match="TAILORSET_CAPTIONER_MODEL"):
        OpenAICaptioner.from_settings(Settings(captioner="openai", captioner_model=None))


def test_base_url_must_be_http():
    with pytest.raises(CaptionerError, match="TAILORSET_OPENAI_BASE_URL"):
        OpenAICaptioner("m", "localhost:11434")
