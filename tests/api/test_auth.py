"""api_token authentication (organizations that cannot see each other's resources: test_every_route.py)."""

import contextlib
import io
import time

from starlette.testclient import TestClient

from tailorset.app import create_app
from tailorset.config import Settings
from tests.support import create_token


def _operations(client):
    for path, item in client.get("/openapi.json").json()["paths"].items():
        for method in item:
            if path.startswith("/tailored-gen/"):  # /files (signed URLs) and /healthz etc. are public
                yield method, path.replace("{project_id}", "1").replace("{dataset_id}", "1").replace("{image_id}", "1")


def test_every_endpoint_needs_a_token(client):
    operations = list(_operations(client))
    assert len(operations) >= 17
    for method, path in operations:
        for headers in ({}, {"api_token": "ts_not-a-real-token"}):
            response = client.request(method.upper(), path, headers=headers, json={})
            assert response.status_code == 401, (method, path, headers)
            assert response.json()["error"] in ("The api_token header is missing.", "The api_token is not valid.")


def test_a_revoked_token_stops_working_once_its_lookup_is_forgotten(client, env):
    from tailorset.cli import main as cli

    client.app.state.services.tokens.ttl = 0.5  # TAILORSET_TOKEN_CACHE_SECONDS, 5 by default
    token = create_token("initech")
    assert client.get("/tailored-gen/projects", headers={"api_token": token}).status_code == 200
    assert cli(["token", "revoke", token]) == 0
    time.sleep(0.6)
    assert client.get("/tailored-gen/projects", headers={"api_token": token}).status_code == 401


def test_with_the_lookup_cache_off_revocation_is_immediate(env, monkeypatch):
    from tailorset.cli import main as cli

    monkeypatch.setenv("TAILORSET_TOKEN_CACHE_SECONDS", "0")
    with TestClient(create_app(Settings())) as client:
        token = create_token("initech")
        assert client.get("/tailored-gen/projects", headers={"api_token": token}).status_code == 200
        assert cli(["token", "revoke", token]) == 0
        assert client.get("/tailored-gen/projects", headers={"api_token": token}).status_code == 401


def test_requests_that_find_their_token_not_remembered_share_one_lookup(client):
    from concurrent.futures import ThreadPoolExecutor

    import anyio

    from tailorset.db import repository as repo

    headers = {"api_token": create_token("initech")}
    db = client.app.state.services.db
    lookups, read_blocking = [], db.read_blocking

    async def slow_lookups(work, *args):  # a lookup that takes a while, as a database round trip under load does
        if work is repo.token_owner:
            lookups.append(args)
            await anyio.sleep(0.2)
        return await read_blocking(work, *args)

    db.read_blocking = slow_lookups
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: client.get("/tailored-gen/projects", headers=headers), range(8)))
    finally:
        db.read_blocking = read_blocking
    assert [a.status_code for a in answers] == [200] * 8
    assert len(lookups) == 1


def test_tokens_are_stored_hashed(client, settings):
    from sqlalchemy import create_engine, text

    from tailorset.db.engine import sync_url

    token = create_token("hooli")
    engine = create_engine(sync_url(settings.resolved_database_url))
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT token_hash FROM api_tokens")).scalars().all()
    engine.dispose()
    assert stored and token not in stored and all(len(h) == 64 for h in stored)


def _cli(*args: str) -> tuple[int, str]:
    from tailorset.cli import main as cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli(list(args))
    return code, out.getvalue()


def test_a_token_is_listed_by_prefix_and_revoked_by_it(client, env):
    """An operator can revoke a token nobody has any more (leaked, or its holder left)."""
    client.app.state.services.tokens.ttl = 0
    token = create_token("initech", "--name", "ci")
    assert client.get("/tailored-gen/projects", headers={"api_token": token}).status_code == 200
    code, listed = _cli("token", "list", "--org", "initech")
    assert code == 0 and token not in listed
    assert listed.split()[:3] == [token[:10], "initech", "ci"] and listed.rstrip().endswith("live")
    assert _cli("token", "revoke", token[:10]) == (0, "Token revoked.\n")
    assert client.get("/tailored-gen/projects", headers={"api_token": token}).status_code == 401
    assert "revoked" in _cli("token", "list")[1]
    assert _cli("token", "revoke", token[:10])[0] == 1  # nothing live matches any more


def test_a_token_is_never_in_a_response(api, client):
    dataset = api.dataset()
    image = api.upload(dataset["id"])
    url = f"/tailored-gen/datasets/{dataset['id']}"
    api.put(f"{url}/images/{image['id']}", json={"caption": "by hand"})
    for path in ("/tailored-gen/projects", url, f"{url}/images", f"{url}/images/{image['id']}/captions"):
        response = api.get(path)
        assert response.status_code == 200 and api.token not in response.text + str(response.headers)
