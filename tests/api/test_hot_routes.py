"""api/hot.py serves Get Image and Update Image Caption without FastAPI's routing: every answer it gives must be
the one FastAPI gives to the same request, byte for byte (status, headers but the date, body),
under every path prefix the app serves, and each request is counted once by the rate limit."""

from __future__ import annotations

import json
import re

import pytest

from tailorset.api import hot
from tests.support import Api, create_token

PREFIXES = ("", "/v1", "/v2")
VARYING = {"date"}


@pytest.fixture
def served(monkeypatch):
    """How many requests api/hot.py took ("hot"), and how many of those it handed on to FastAPI with their body."""
    count = {"hot": 0, "handed on": 0}
    serve, replay = hot.HotRoutes._serve, hot._replay

    async def counted(self, *args):
        count["hot"] += 1
        return await serve(self, *args)

    def replayed(*args):
        count["handed on"] += 1
        return replay(*args)

    monkeypatch.setattr(hot.HotRoutes, "_serve", counted)
    monkeypatch.setattr(hot, "_replay", replayed)
    return count


def through_fastapi(monkeypatch):
    """From now on, api/hot.py matches no path: every request goes to FastAPI."""
    monkeypatch.setattr(hot, "PATH", re.compile(r"(?!)"))


def send(api: Api, method: str, path: str, kwargs: dict):
    options = dict(kwargs)
    given = options.pop("headers", {})
    given = list(given.items()) if isinstance(given, dict) else given  # a list: a header sent twice
    # One request id for both paths: /v2's error bodies carry it.
    defaults = [("api_token", api.token), ("x-request-id", "hot-or-not")]
    headers = [(k, v) for k, v in defaults if k not in {name for name, _ in given}] + given
    return api.client.request(method, path, headers=headers, **options)


def answer(response) -> tuple:
    headers = sorted((k, v) for k, v in response.headers.multi_items() if k not in VARYING)
    return response.status_code, headers, response.content


@pytest.fixture
def images(api: Api) -> dict:
    """A live image in a draft dataset, one in a completed dataset, and a deleted one."""
    draft = api.dataset()
    live = api.upload(draft["id"])
    deleted = api.upload(draft["id"], "coffee.png")
    assert api.delete(f"/tailored-gen/datasets/{draft['id']}/images/{deleted['id']}").status_code == 204
    done = api.dataset()
    frozen = api.upload(done["id"], "camera.png")
    assert api.put(f"/tailored-gen/datasets/{done['id']}", json={"status": "completed"}).status_code == 200
    path = "/tailored-gen/datasets/{}/images/{}".format
    return {
        "live": path(draft["id"], live["id"]),
        "deleted": path(draft["id"], deleted["id"]),
        "frozen": path(done["id"], frozen["id"]),
        "missing": path(draft["id"], 10**9),
        "no dataset": path(10**9, live["id"]),
    }


def requests(images: dict) -> list[tuple[str, str, dict]]:
    """(method, path, httpx arguments): one of each answer the two routes give, except a 200 PUT (below)."""
    token = {}
    return [
        ("GET", images["live"], token),  # 200
        ("GET", images["missing"], token),  # 404
        ("GET", images["no dataset"], token),  # 404
        ("GET", images["deleted"], token),  # 410
        ("GET", images["live"], {"headers": {"api_token": "not a token"}}),  # 401
        ("GET", images["live"], {"headers": {"api_token": ""}}),  # 401, missing
        ("PUT", images["frozen"], {"json": {"caption": "a camera"}}),  # 409
        ("PUT", images["deleted"], {"json": {"caption": "a cup"}}),  # 410
        ("PUT", images["missing"], {"json": {"caption": "nothing"}}),  # 404
        ("PUT", images["live"], {"json": {"caption": 5}}),  # 400, from FastAPI
        ("PUT", images["live"], {"json": {"caption": "x", "regenerate_caption": True}}),  # 400, the domain's
        ("PUT", images["live"], {"content": b"{not json", "headers": {"content-type": "application/json"}}),  # 400
        ("PUT", images["live"], {"json": {"caption": "x"}, "headers": {"api_token": "wrong"}}),  # 401
        ("GET", images["live"], {"headers": [("api_token", "wrong"), ("api_token", "")]}),  # 401: the first counts
        ("PUT", images["live"], {"content": b"{}", "headers": {"content-length": str(2 * 1024 * 1024)}}),  # 413
        ("PUT", images["live"], {"content": b"x" * (1024 * 1024 + 1), "headers": {"content-type": "application/json"}}),
    ]  # fmt: skip


def test_every_answer_is_fastapis(api: Api, images: dict, served, monkeypatch):
    cases = [(method, prefix + path, kwargs) for prefix in PREFIXES for method, path, kwargs in requests(images)]
    hot_answers = [answer(send(api, method, path, kwargs)) for method, path, kwargs in cases]
    assert served == {"hot": len(cases), "handed on": 2 * len(PREFIXES)}  # the bodies FastAPI refuses in its words
    statuses = {status for status, _, _ in hot_answers}
    assert statuses == {200, 400, 401, 404, 409, 410, 413}

    through_fastapi(monkeypatch)
    fastapi_answers = [answer(send(api, method, path, kwargs)) for method, path, kwargs in cases]
    for case, ours, theirs in zip(cases, hot_answers, fastapi_answers, strict=True):
        assert ours == theirs, case
    v2 = dict(zip([c[1] for c in cases], hot_answers, strict=True))
    assert json.loads(v2["/v2" + images["missing"]][2])["error"]["code"] == 404  # Bria's v2 error object


def test_a_caption_written_either_way_answers_the_same(api: Api, images: dict, served, monkeypatch):
    for prefix in PREFIXES:
        caption = {"json": {"caption": f"a tabby cat {prefix}"}}
        ours = send(api, "PUT", prefix + images["live"], caption)
        with monkeypatch.context() as patched:
            through_fastapi(patched)
            theirs = send(api, "PUT", prefix + images["live"], caption)
        assert ours.status_code == theirs.status_code == 200
        ours_body, theirs_body = ours.json(), theirs.json()
        assert theirs_body.pop("updated_at") > ours_body.pop("updated_at")  # written again, later
        assert ours_body == theirs_body and ours_body["caption_source"] == "manual"
        skip = VARYING | {"content-length"}  # updated_at's fraction of a second may have fewer digits
        assert [h for h in ours.headers.multi_items() if h[0] not in skip] == [
            h for h in theirs.headers.multi_items() if h[0] not in skip
        ]
    history = api.get(images["live"] + "/captions").json()
    assert [r["caption"] for r in history[-6:]] == [f"a tabby cat {p}" for p in PREFIXES for _ in (1, 2)]
    assert served == {"hot": len(PREFIXES), "handed on": 0}


def test_the_rate_limit_counts_each_request_once(client, images: dict, served):
    limited = Api(client, create_token("acme", "--rate-limit", "3/minute"))  # the same organization, a lower plan
    assert limited.put(images["live"], json={"caption": 5}).status_code == 400  # handed to FastAPI after counting
    assert limited.put(images["live"], json={"caption": "one"}).status_code == 200
    assert limited.put("/v1" + images["live"], json={"caption": "two"}).status_code == 200
    refused = limited.put(images["live"], json={"caption": "three"})
    assert refused.status_code == 429 and refused.headers["retry-after"]
    assert limited.get(images["live"]).status_code == 200  # another endpoint, another budget
    assert served == {"hot": 5, "handed on": 1}
