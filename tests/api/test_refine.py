"""POST /tailored-gen/refine_structured_prompt: a visual_schema or FIBO caption changed by an instruction, through
an OpenAI-compatible server on a real loopback socket (tests/captioners/openai_server.py); 501 offline."""

from __future__ import annotations

import base64
import json

import pytest
from starlette.testclient import TestClient

from tailorset.app import create_app
from tailorset.config import Settings
from tests.captioners.openai_server import ChatServer, answer
from tests.support import Api, create_token, photo

URL = "/tailored-gen/refine_structured_prompt"
SCHEMA = '{"style_medium": "flat vector illustration", "colors": "pastel"}'
CAPTION = {
    "short_description": "A teapot on a table.",
    "objects": [{"description": "A white teapot.", "location": "center", "relationship": "The only subject."}],
    "background_setting": "A wooden table.",
    "lighting": {"conditions": "soft daylight", "direction": "side-lit from left"},
    "aesthetics": {"composition": "centered", "color_scheme": "white and brown", "mood_atmosphere": "calm"},
    "context": "A product photo.",
}


@pytest.fixture
def chat():
    server = ChatServer().start()
    yield server
    server.stop()


@pytest.fixture
def llm_api(env, monkeypatch, chat) -> Api:
    """The API with TAILORSET_CAPTIONER=openai, pointed at the test's chat server."""
    for name, value in {"CAPTIONER": "openai", "CAPTIONER_MODEL": "test-vlm", "OPENAI_BASE_URL": chat.url,
                        "PRELOAD_CAPTIONER": "false", "CAPTIONER_MAX_RETRIES": "0"}.items():  # fmt: skip
        monkeypatch.setenv(f"TAILORSET_{name}", value)
    with TestClient(create_app(Settings()), raise_server_exceptions=False) as client:
        yield Api(client, create_token("refiners"))


def test_a_visual_schema_is_refined_by_the_language_model(llm_api, chat):
    dataset = llm_api.dataset(training_version="fibo")
    chat.script(answer('Here it is:\n```json\n{"style_medium": "flat vector illustration", "colors": "bold"}\n```'))
    picture = base64.b64encode(photo("coffee.png")).decode()
    body = {"structured_prompt": SCHEMA, "instruction": "Make the colours bold.", "context_images": [picture]}
    response = llm_api.post(URL, json={"dataset_id": dataset["id"], **body})
    assert response.status_code == 200, response.text
    assert response.json() == {"structured_prompt": '{"style_medium":"flat vector illustration","colors":"bold"}'}
    (request,) = chat.requests
    assert (
        request.texts()[-1].endswith("Make the colours bold.")
        and json.dumps(json.loads(SCHEMA), separators=(",", ":")) in request.texts()[-1]
    )
    assert "visual_schema" in request.texts()[0] and len(request.image_urls()) == 1
    assert "response_format" not in request.body  # a free-form object: no caption schema imposed


def test_a_caption_is_refined_and_an_invalid_answer_corrected_once(llm_api, chat):
    dataset = llm_api.dataset(training_version="fibo")
    refined = {**CAPTION, "lighting": {"conditions": "golden hour", "direction": "backlit"}}
    chat.script(answer(json.dumps({**refined, "context": ""})), answer(json.dumps(refined)))
    response = llm_api.post(URL, json={"dataset_id": dataset["id"], "structured_prompt": json.dumps(CAPTION),
                                       "instruction": "Golden hour, from behind."})  # fmt: skip
    assert response.status_code == 200, response.text
    assert json.loads(response.json()["structured_prompt"]) == refined
    first, second = chat.requests
    assert first.body["response_format"]["type"] == "json_schema"  # constrained to the caption schema
    assert "caption.context is required" in second.texts()[-1]


def test_refusals_name_what_is_wrong_and_nothing_is_asked(llm_api, chat):
    dataset = llm_api.dataset(training_version="fibo")
    body = {"dataset_id": dataset["id"], "structured_prompt": "not json at all", "instruction": "x"}
    response = llm_api.post(URL, json=body)
    assert response.status_code == 400 and response.json()["error"].startswith("structured_prompt")
    response = llm_api.post(URL, json={**body, "dataset_id": 999_999, "structured_prompt": SCHEMA})
    assert response.status_code == 404 and response.json()["error"] == "Dataset 999999 not found."
    assert chat.requests == []
    legacy = llm_api.dataset()  # completes with one image (its caption comes from the chat server)
    chat.script(answer("A photo of a tabby cat"))
    llm_api.upload(legacy["id"])
    assert llm_api.put(f"/tailored-gen/datasets/{legacy['id']}", json={"status": "completed"}).status_code == 200
    response = llm_api.post(URL, json={**body, "dataset_id": legacy["id"], "structured_prompt": SCHEMA})
    assert response.status_code == 409 and "completed" in response.json()["error"]
    chat.requests.pop()  # the upload's caption
    assert chat.requests == []


def test_the_offline_captioner_answers_501_naming_the_backends_that_can(api):
    dataset = api.dataset(training_version="fibo")
    body = {"dataset_id": dataset["id"], "structured_prompt": SCHEMA, "instruction": "Warmer colours."}
    response = api.post(URL, json=body)
    assert response.status_code == 501
    assert response.json()["error"] == (
        "Refining a structured prompt needs a language model, which the local captioner does not have: set "
        "TAILORSET_CAPTIONER=openai (any OpenAI-compatible server) or transformers (a local chat model)."
    )
    assert api.post("/v2" + URL, json=body).json()["error"]["code"] == 501
