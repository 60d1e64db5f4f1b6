"""Rate limits: per organization and endpoint, named plans, one budget across processes sharing Redis."""

import os

import httpx
import pytest
from starlette.testclient import TestClient

from tailorset.app import create_app
from tailorset.config import Settings
from tailorset.ratelimit import PLANS
from tests.servers import free_port, new_token, serve
from tests.support import Api, create_token


def statuses(api: Api, count: int, path: str = "/tailored-gen/projects") -> list[int]:
    return [api.get(path).status_code for _ in range(count)]


def test_the_plans_are_brias():
    assert (PLANS["free"], PLANS["default"], PLANS["enterprise"]) == ("10/minute", "60/minute", "1000/minute")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_free_and_default_plans(client):
    free = Api(client, create_token("free-org", "--rate-limit", "free"))
    assert statuses(free, 11) == [200] * 10 + [429]
    default = Api(client, create_token("default-org"))  # no plan: TAILORSET_RATE_LIMIT_DEFAULT, 60/minute
    assert statuses(default, 61) == [200] * 60 + [429]
    limited = free.get("/tailored-gen/projects")
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.json() == {
        "error": "Too many requests: this endpoint allows 10 per minute for your organization; "
        f"retry in {limited.headers['Retry-After']} seconds."
    }


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_default_plan_follows_the_configured_default(env, monkeypatch):
    monkeypatch.setenv("TAILORSET_RATE_LIMIT_DEFAULT", "3/minute")
    with TestClient(create_app(Settings())) as client:
        assert statuses(Api(client, create_token("a", "--rate-limit", "default")), 4) == [200, 200, 200, 429]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_two_server_processes_share_one_budget_through_redis(env, redis_url):
    env = {**os.environ, "TAILORSET_REDIS_URL": redis_url}
    token = new_token(env, "shared", "--rate-limit", "6/minute")
    with serve(env) as first, serve(env) as second:
        codes, refused = [], None
        for n in range(12):
            response = httpx.get(
                f"{(first, second)[n % 2].base}/tailored-gen/projects", headers={"api_token": token}, timeout=30
            )
            codes.append(response.status_code)
            refused = refused or (response if response.status_code == 429 else None)
    # Alone, each process would have allowed 6: together they allowed 6.
    assert sorted(codes) == [200] * 6 + [429] * 6, codes
    assert codes[:6] == [200] * 6
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["error"].startswith("Too many requests: this endpoint allows 6 per minute")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_without_redis_each_process_still_limits(env, monkeypatch):
    monkeypatch.setenv("TAILORSET_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    with TestClient(create_app(Settings())) as client:
        assert statuses(Api(client, create_token("a", "--rate-limit", "3/minute")), 4) == [200, 200, 200, 429]
