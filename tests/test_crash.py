"""kill -9 a real server in the middle of uploads and caption edits, on both databases. Afterwards no
row lacks its file; the files a crash can strand (written, their row never committed) are found and
removed by `tailorset fsck --repair`; on restart, every acknowledged upload and edit is there."""

import contextlib
import io
import threading
from urllib.parse import urlsplit

import httpx
from sqlalchemy import create_engine, text

from tailorset.cli import main as cli
from tailorset.db.engine import sync_url
from tests.servers import ServerProcess, new_token, serve
from tests.support import photo, wait_until


def fsck(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli(["fsck", *args])
    return code, out.getvalue()


def test_kill_9_during_uploads_and_edits(env, settings, monkeypatch):
    monkeypatch.setenv("TAILORSET_RATE_LIMIT_DEFAULT", "100000/minute")
    headers = {"api_token": new_token(None, "acme")}
    server = ServerProcess()
    api = httpx.Client(base_url=server.base + "/tailored-gen", headers=headers, timeout=60)
    project = api.post("/projects", json={"project_name": "P", "ip_medium": "photography", "ip_type": "other"})
    dataset = api.post("/datasets", json={"project_id": project.json()["id"], "name": "D"}).json()["id"]
    upload = {"files": {"file": ("cat.png", photo("chelsea.png"))}}
    edited = [api.post(f"/datasets/{dataset}/images", **upload).json()["id"] for _ in range(3)]

    uploaded: list[dict] = []  # acknowledged (201)
    captions = {image: {"acked": None, "sent": None} for image in edited}

    def keep_uploading() -> None:
        with httpx.Client(base_url=api.base_url, headers=headers, timeout=60) as own:
            while True:
                try:
                    response = own.post(f"/datasets/{dataset}/images", **upload)
                except httpx.TransportError:
                    return  # the server is gone
                assert response.status_code == 201, response.text
                uploaded.append(response.json())

    def keep_editing(image: int) -> None:
        with httpx.Client(base_url=api.base_url, headers=headers, timeout=60) as own:
            for n in range(10**6):
                captions[image]["sent"] = caption = f"edit {n}"
                try:
                    response = own.put(f"/datasets/{dataset}/images/{image}", json={"caption": caption})
                except httpx.TransportError:
                    return
                assert response.status_code == 200, response.text
                captions[image]["acked"] = caption

    threads = [threading.Thread(target=keep_uploading) for _ in range(3)]
    threads += [threading.Thread(target=keep_editing, args=(image,)) for image in edited]
    for thread in threads:
        thread.start()
    # Killed in full flow: uploads acknowledged and every edited caption acknowledged at least once.
    wait_until(lambda: len(uploaded) >= 6 and all(c["acked"] for c in captions.values()), 120, "no traffic")
    server.kill()
    for thread in threads:
        thread.join(timeout=60)
    api.close()
    assert uploaded and all(c["acked"] for c in captions.values()), "no traffic reached the server"

    # No row lacks its file; files whose row never committed are the only possible drift.
    code, report = fsck()
    assert " 0 missing originals, 0 missing thumbnails, " in report, report
    # The server is dead, so nothing is in flight: no grace period for unreferenced files.
    code, report = fsck("--repair", "--grace-minutes", "0")
    assert code == 0, report
    code, report = fsck()
    assert code == 0 and report.endswith("0 missing originals, 0 missing thumbnails, 0 orphan files.\n"), report

    # The file store holds exactly the files of the live rows, by an independent count.
    engine = create_engine(sync_url(settings.resolved_database_url))
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT file_key, thumbnail_key FROM images WHERE deleted_at IS NULL")).all()
    engine.dispose()
    # (A write cut off by the kill leaves a .tmp- file that never became an object; see LocalStorage.)
    on_disk = {
        p.relative_to(settings.files_dir).as_posix()
        for p in settings.files_dir.rglob("*")
        if p.is_file() and not p.name.startswith(".tmp-")
    }
    assert on_disk == {key for row in rows for key in row}

    with serve() as again, httpx.Client(base_url=again.base, headers=headers, timeout=60) as http:
        images = http.get(f"/tailored-gen/datasets/{dataset}/images").json()
        stored = {image["id"] for image in images}
        assert {image["id"] for image in uploaded} <= stored  # every acknowledged upload survived
        for image in uploaded:
            url = urlsplit(image["image_url"])
            assert http.get(f"{url.path}?{url.query}").status_code == 200
        for image, sent in captions.items():
            caption = http.get(f"/tailored-gen/datasets/{dataset}/images/{image}").json()["caption"]
            assert caption in (sent["acked"], sent["sent"])  # the last acknowledged edit, or the one in flight
