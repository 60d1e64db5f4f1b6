"""FIBO captions through the public API: each repair rule, each refusal, the canonical stored form,
and the lint endpoint."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CAPTION = {
    "short_description": "A tabby cat looks straight at the camera from a sofa.",
    "objects": [
        {"description": "A tabby cat with green eyes.", "location": "center", "relationship": "The only subject.",
         "number_of_objects": 1},
    ],
    "background_setting": "A blurred living room.",
    "lighting": {"conditions": "soft daylight", "direction": "front-lit", "shadows": "soft"},
    "aesthetics": {"composition": "close-up", "color_scheme": "gray and brown", "mood_atmosphere": "calm",
                   "aesthetic_score": "high"},
    "photographic_characteristics": {"depth_of_field": "shallow", "focus": "sharp on the eyes",
                                     "camera_angle": "eye-level", "lens_focal_length": "85mm"},
    "style_medium": "photograph",
    "context": "A pet portrait.",
    "artistic_style": "realistic",
}  # fmt: skip
CANONICAL = json.dumps(CAPTION, separators=(",", ":"))


def with_(**changes) -> dict:
    return {**json.loads(CANONICAL), **changes}


def obj(**changes) -> dict:
    return {**CAPTION["objects"][0], **changes}


# (name, faulty caption text, a rule the response must name)
REPAIRS = [
    ("code fence", "```json\n" + CANONICAL + "\n```", "code_fence"),
    ("surrounding prose", "Here is the caption you asked for:\n" + CANONICAL + "\nHope it helps!", "surrounding_prose"),
    ("trailing commas", CANONICAL[:-1] + ",}", "trailing_commas"),
    ("python dict", repr(CAPTION), "python_literal"),
    ("double encoded", json.dumps(CANONICAL), "double_encoded"),
    ("unknown keys", json.dumps(with_(camera="Canon", mood="calm")), "unknown_key_dropped"),
    ("null and empty values", json.dumps(with_(text_render=[], artistic_style=None, style_medium="photograph")),
     "empty_dropped"),
    ("key order", json.dumps(dict(sorted(CAPTION.items()))), "key_order"),
    ("count as text", json.dumps(with_(objects=[obj(number_of_objects="1")])), "integer_coerced"),
    ("score label case", json.dumps(with_(aesthetics={**CAPTION["aesthetics"], "aesthetic_score": " High "})),
     "score_label"),
    ("single object for a list", json.dumps(with_(objects=obj())), "single_object_wrapped"),
    ("indented", json.dumps(CAPTION, indent=2), "reformatted"),
]  # fmt: skip

# (name, caption text, the one-sentence message must contain this)
REFUSALS = [
    ("truncated", CANONICAL[:-40], "truncated"),
    ("missing required key", json.dumps({k: v for k, v in CAPTION.items() if k != "context"}),
     "caption.context is required"),
    ("missing nested key", json.dumps(with_(lighting={"conditions": "soft daylight"})),
     "caption.lighting.direction is required"),
    ("block as a string", json.dumps(with_(lighting="bright daylight")), "caption.lighting"),
    ("plain prose", "a cat on a sofa", "caption"),
    ("bad score", json.dumps(with_(aesthetics={**CAPTION["aesthetics"], "aesthetic_score": "superb"})),
     "caption.aesthetics.aesthetic_score"),
    ("a count Bria cannot read", json.dumps(with_(objects=[obj(number_of_objects=1e20)])),
     "caption.objects[0].number_of_objects"),
    ("empty required text", json.dumps(with_(context="  ")), "caption.context"),
]  # fmt: skip


@pytest.fixture
def fibo_image(api) -> dict:
    dataset = api.dataset(training_version="fibo")
    return api.upload(dataset["id"], "chelsea.png")


def put(api, image, caption):
    return api.put(f"/tailored-gen/datasets/{image['dataset_id']}/images/{image['id']}", json={"caption": caption})


def test_every_repair_is_applied_named_and_stored_canonical(api, fibo_image):
    for name, faulty, rule in REPAIRS:
        response = put(api, fibo_image, faulty)
        assert response.status_code == 200, (name, response.text)
        stored = response.json()["caption"]
        assert json.loads(stored) == json.loads(CANONICAL) or name in ("null and empty values",), name
        assert stored == json.dumps(json.loads(stored), separators=(",", ":")), name  # compact
        assert rule in response.headers["X-Caption-Corrected"], (name, response.headers["X-Caption-Corrected"])
    # The same content always stores byte-identically; canonical input is stored untouched, with no header.
    response = put(api, fibo_image, CANONICAL)
    assert response.json()["caption"] == CANONICAL and "X-Caption-Corrected" not in response.headers


def test_every_refusal_is_a_400_that_names_the_path_and_changes_nothing(api, fibo_image):
    for name, caption, fragment in REFUSALS:
        response = put(api, fibo_image, caption)
        assert response.status_code == 400, (name, response.text)
        message = response.json()["error"]
        assert fragment in message, (name, message)
        assert message.endswith("."), message
    current = api.get(f"/tailored-gen/datasets/{fibo_image['dataset_id']}/images/{fibo_image['id']}").json()
    assert current == fibo_image


def test_legacy_captions_are_not_held_to_the_fibo_schema(api):
    image = api.upload(api.dataset()["id"])
    response = put(api, image, "{not json, and that is fine for a legacy dataset")
    assert response.status_code == 200


def test_lint_endpoint_reports_without_saving(api):
    faulty = "```json\n" + json.dumps(with_(objects=[obj(number_of_objects="1")] * 6)) + "\n```"
    response = api.post("/tailored-gen/captions/validate", json={"caption": faulty, "training_version": "fibo"})
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is True and body["errors"] == []
    assert {"code_fence", "integer_coerced"} <= {c["rule"] for c in body["corrections"]}
    assert json.loads(body["caption"])["objects"][0]["number_of_objects"] == 1
    assert any(w["rule"] == "too_many_objects" and w["path"] == "caption.objects" for w in body["warnings"])

    refused = api.post("/tailored-gen/captions/validate", json={"caption": REFUSALS[1][1]}).json()
    assert refused["valid"] is False and refused["caption"] is None
    assert refused["errors"][0] == {
        "rule": "required", "path": "caption.context", "message": refused["errors"][0]["message"]
    }  # fmt: skip
    assert "caption.context is required" in refused["errors"][0]["message"]

    legacy = api.post("/tailored-gen/captions/validate", json={"caption": " ", "training_version": "max"}).json()
    assert legacy["valid"] is False and legacy["errors"][0]["message"] == "caption must not be empty."
    assert api.post("/tailored-gen/captions/validate", json={"caption": 3}).status_code == 400


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.one_of(st.text(max_size=300), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_garbage_is_never_anything_but_a_400(api, fibo_image, garbage):
    response = put(api, fibo_image, garbage)
    assert response.status_code in (200, 400), response.text
    assert set(response.json()) == ({"error"} if response.status_code == 400 else set(fibo_image))


def test_the_caption_limit_counts_the_compact_form(api, fibo_image):
    # 16 objects of ~900 characters each: about 15.5k compact, well over 20k pretty-printed.
    long = with_(objects=[obj(appearance_details=f"{i}" + " freckled" * 100) for i in range(16)])
    compact, pretty = json.dumps(long, separators=(",", ":")), json.dumps(long, indent=8)
    assert len(compact) < 20_000 < len(pretty)
    response = put(api, fibo_image, pretty)
    assert response.status_code == 200, response.text
    stored = response.json()["caption"]
    assert json.loads(stored) == long and len(stored) == len(compact)

    longer = with_(objects=[obj(appearance_details=f"{i}" + " freckled" * 100) for i in range(23)])
    response = put(api, fibo_image, json.dumps(longer, separators=(",", ":")))
    assert response.status_code == 400
    assert response.json()["error"].endswith("characters long in compact form; the limit is 20,000.")
    assert api.get(f"/tailored-gen/datasets/{fibo_image['dataset_id']}/images/{fibo_image['id']}").json()[
        "caption"
    ] == stored  # fmt: skip
