"""What the server does for the web UI: the shell with a strict CSP, its own static files only,
and nothing of it in the API schema."""


def test_shell_and_static_files(client):
    assert client.get("/", follow_redirects=False).headers["location"] == "/ui/"
    assert client.get("/ui", follow_redirects=False).headers["location"] == "/ui/"
    shell = client.get("/ui/")
    assert shell.status_code == 200 and shell.headers["content-type"].startswith("text/html")
    csp = shell.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert '<script type="module" src="/ui/static/app.js">' in shell.text

    script = client.get("/ui/static/app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert client.get("/ui/static/app.js", headers={"If-None-Match": script.headers["etag"]}).status_code == 304
    schema = client.get("/ui/static/fibo-schema.json").json()
    assert "CaptionCore" in schema["$defs"]

    for missing in ("/ui/static/nope.js", "/ui/static/..%2Froutes.py", "/ui/static/index.html"):
        response = client.get(missing)
        assert response.status_code == 404 and set(response.json()) == {"error"}, missing


def test_the_ui_is_not_in_the_api_schema(client):
    assert not [path for path in client.get("/openapi.json").json()["paths"] if path == "/" or path.startswith("/ui")]
