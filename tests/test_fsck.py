"""`tailorset fsck` finds each kind of drift between the database and the file store, and --repair
mends it: orphans removed, a lost thumbnail rebuilt, an image whose original is lost tombstoned
(410), old tombstones purged; young unreferenced files (uploads in flight) and foreign files kept."""

import contextlib
import io
import os
import time
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

from PIL import Image
from sqlalchemy import create_engine, text

from tailorset.cli import main as cli
from tailorset.db.engine import sync_url
from tailorset.db.models import utcnow
from tailorset.services.files import new_keys


def fsck(*args: str) -> tuple[int, list[str]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli(["fsck", *args])
    return code, out.getvalue().splitlines()


def key_of(url: str) -> str:
    return urlsplit(url).path.removeprefix("/files/")


def test_fsck_reports_and_repairs_drift(api, client, settings):
    dataset = api.dataset()
    url = f"/tailored-gen/datasets/{dataset['id']}"
    lost, thumbless, old = (api.upload(dataset["id"], name) for name in ("chelsea.png", "coffee.png", "camera.png"))
    assert api.delete(f"{url}/images/{old['id']}").status_code == 204
    clone = api.post(f"{url}/clone").json()
    lost_copy, thumbless_copy = (
        next(i for i in clone["images"] if i["image_name"] == n) for n in ("chelsea.png", "coffee.png")
    )
    assert fsck() == (0, ["fsck: 4 files, 4 live images; 0 missing originals, 0 missing thumbnails, 0 orphan files."])

    files = settings.files_dir
    (files / key_of(lost["image_url"])).unlink()  # the store lost an original (shared with the clone)
    (files / key_of(thumbless["thumbnail_url"])).unlink()  # …and a thumbnail
    stray = f"images/00/{uuid.uuid4().hex}.png"  # a crash's leftover, from before keys carried a time
    young = new_keys("png")[0]  # an upload about to commit its row
    for key in (stray, young, "exports/backup.zip"):
        (files / key).parent.mkdir(parents=True, exist_ok=True)
        (files / key).write_bytes(b"data")
    engine = create_engine(sync_url(settings.resolved_database_url))
    with engine.begin() as connection:  # the deleted image's tombstone is older than the retention period
        connection.execute(
            text("UPDATE images SET deleted_at = :when WHERE id = :id"),
            {"when": (utcnow() - timedelta(days=settings.tombstone_retention_days + 1)).replace(tzinfo=None),
             "id": old["id"]},
        )  # fmt: skip
    engine.dispose()

    code, lines = fsck()
    thumbnail = key_of(thumbless["thumbnail_url"])
    assert code == 1
    assert set(lines[:-1]) == {
        f"missing original {key_of(lost['image_url'])} of image {lost['id']} (dataset {dataset['id']})",
        f"missing original {key_of(lost['image_url'])} of image {lost_copy['id']} (dataset {clone['id']})",
        f"missing thumbnail {thumbnail} of image {thumbless['id']} (dataset {dataset['id']})",
        f"missing thumbnail {thumbnail} of image {thumbless_copy['id']} (dataset {clone['id']})",
        f"orphan file {stray}",
        f"unreferenced file {young}: younger than 60 minutes (an upload in flight?), left alone",
        "not an image file: exports/backup.zip (left alone)",
    }
    assert lines[-1] == "fsck: 5 files, 4 live images; 2 missing originals, 2 missing thumbnails, 1 orphan files."

    code, lines = fsck("--repair")
    assert code == 0 and lines[-1].endswith("1 orphan files; repaired, 1 old tombstones purged.")
    # The stray file and the lost original's thumbnail removed, the lost thumbnail back.
    assert fsck()[1][-1] == "fsck: 4 files, 2 live images; 0 missing originals, 0 missing thumbnails, 0 orphan files."
    assert not (files / stray).exists() and (files / young).exists() and (files / "exports/backup.zip").exists()

    for image in (lost, lost_copy):  # tombstoned: gone, with its caption history kept
        path = f"/tailored-gen/datasets/{image['dataset_id']}/images/{image['id']}"
        assert api.get(path).status_code == 410
    rebuilt = client.get(thumbless["thumbnail_url"])
    assert rebuilt.status_code == 200 and max(Image.open(io.BytesIO(rebuilt.content)).size) == 256
    assert api.get(f"{url}/images/{old['id']}").status_code == 404  # purged for good


def test_fsck_removes_what_a_cut_off_write_left(api, settings):
    """A write a crash cut off before its rename leaves a partial file; fsck --repair removes it once it is
    older than the grace period, and leaves a fresh one alone (another process's write in progress)."""
    api.dataset()  # the service has started on this data directory
    folder = settings.files_dir / "images" / "ab"
    folder.mkdir(parents=True, exist_ok=True)
    old, fresh = folder / ".tmp-old.png", folder / ".tmp-fresh.png"
    for path in (old, fresh):
        path.write_bytes(b"half a file")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    code, report = fsck("--repair")
    assert code == 0 and "orphan file images/ab/.tmp-old.png (removed)" in report, report
    assert not old.exists() and fresh.exists()
