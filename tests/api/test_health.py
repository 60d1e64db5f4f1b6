"""The dataset health report and caption lint, through the API as a client sees them."""

from __future__ import annotations

import io
import time

from PIL import Image, ImageFilter
from sqlalchemy import create_engine, text

from tailorset.db.engine import sync_url
from tests.support import photo

LONG = "sks style, " + ", ".join(f"a {color} balloon over the {place}" for color in ("red", "blue", "green", "gold")
                                 for place in ("harbour", "old town", "river", "hills"))  # fmt: skip


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def upload(api, dataset_id: int, name: str, data: bytes) -> dict:
    response = api.post(f"/tailored-gen/datasets/{dataset_id}/images", files={"file": (name, data)})
    assert response.status_code == 201, response.text
    return response.json()


def health(api, dataset_id: int, complete: bool = True, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        report = api.get(f"/tailored-gen/datasets/{dataset_id}/health")
        assert report.status_code == 200, report.text
        if report.json()["complete"] or not complete or time.monotonic() > deadline:
            return report.json()
        time.sleep(0.2)


def problem(report: dict, rule: str) -> dict | None:
    return next((p for p in report["problems"] if p["rule"] == rule), None)


def test_the_report_finds_duplicates_blur_and_long_captions_and_clears_when_fixed(api):
    dataset = api.dataset()
    api.put(f"/tailored-gen/datasets/{dataset['id']}", json={"caption_prefix": "sks style"})
    cat = Image.open(io.BytesIO(photo("chelsea.png")))
    original = upload(api, dataset["id"], "cat.png", photo("chelsea.png"))
    resized = upload(api, dataset["id"], "cat-small.png", png(cat.resize((400, 266))))
    again = upload(api, dataset["id"], "cat-again.png", photo("chelsea.png"))
    blurry = upload(
        api,
        dataset["id"],
        "cup.png",
        png(Image.open(io.BytesIO(photo("coffee.png"))).filter(ImageFilter.GaussianBlur(4))),
    )
    sharp = upload(api, dataset["id"], "camera.png", photo("camera.png"))
    url = f"/tailored-gen/datasets/{dataset['id']}"
    assert api.put(f"{url}/images/{sharp['id']}", json={"caption": LONG}).status_code == 200

    report = health(api, dataset["id"])
    assert report["images_count"] == 5 and report["complete"] and not report["ready"]
    assert report["duplicates"]["exact"] == [{"image_ids": [original["id"], again["id"]]}]
    assert report["duplicates"]["near"] == [{"image_ids": [original["id"], resized["id"], again["id"]]}]
    assert problem(report, "exact_duplicates")["severity"] == "blocking"
    assert problem(report, "blurry")["image_ids"] == [blurry["id"]]
    too_long = problem(report, "token_limit")
    assert (too_long["severity"], too_long["image_ids"]) == ("blocking", [sharp["id"]])
    assert problem(report, "below_recommended")["count"] == 5  # scikit-image's photos are all under 1024 px
    assert report["captions"]["encoder"] == {"name": "CLIP", "limit": 77, "exact": True}
    assert sum(bar["count"] for bar in report["captions"]["token_histogram"]) == 5
    assert report["review"] == {"unreviewed": 4, "approved": 1, "flagged": 0, "unreviewed_automatic": 4}
    assert {b["width"] * b["height"] <= 1024 * 1024 for b in report["buckets"]["counts"]} == {True}
    assert sum(b["count"] for b in report["buckets"]["counts"]) == 5
    assert set(report["images"]) >= {str(original["id"]), str(sharp["id"])}
    assert report["images"][str(blurry["id"])]["image_name"] == "cup.png"
    assert report["blocking"] == 2

    # Delete the copies, fix the caption: nothing blocks any more.
    assert api.post(f"{url}/images/delete", json={"image_ids": [resized["id"], again["id"]]}).status_code == 200
    assert api.put(f"{url}/images/{sharp['id']}", json={"caption": "sks style, an old camera"}).status_code == 200
    fixed = health(api, dataset["id"])
    assert fixed["blocking"] == 0 and fixed["ready"], fixed["problems"]
    assert fixed["duplicates"] == {"exact": [], "near": []}
    assert problem(fixed, "blurry")["image_ids"] == [blurry["id"]]  # a warning: the user decides


def test_lint_of_a_draft_and_of_a_stored_caption(api):
    dataset = api.dataset()
    url = f"/tailored-gen/datasets/{dataset['id']}"
    api.put(url, json={"caption_prefix": "sks style"})
    image = api.upload(dataset["id"], "chelsea.png")
    twin = api.upload(dataset["id"], "coffee.png")
    api.put(f"{url}/images/{twin['id']}", json={"caption": image["caption"]})

    draft = api.post(f"{url}/captions/lint", json={"caption": LONG}).json()
    assert draft["encoder"] == {"name": "CLIP", "limit": 77, "exact": True}
    assert draft["tokens"] > 77 and [f["rule"] for f in draft["findings"]] == ["token_limit"]
    assert draft["findings"][0]["blocking"] is True
    bare = api.post(f"{url}/captions/lint", json={"caption": "sks style, sks style,\u200b"}).json()
    assert {f["rule"] for f in bare["findings"]} == {"prefix_repeated", "control_characters", "no_subject"}
    huge = api.post(f"{url}/captions/lint", json={"caption": "sks style, a cat " * 2000})
    assert huge.status_code == 400 and "the limit is 20,000" in huge.json()["error"]
    missing = api.post(f"{url}/captions/lint", json={"caption": "a cat on a sofa"}).json()
    assert [f["rule"] for f in missing["findings"]] == ["prefix_missing"]

    stored = api.get(f"{url}/images/{image['id']}/lint").json()
    assert stored["same_caption_image_ids"] == [twin["id"]] and stored["tokens"] < 77
    # A draft of the image's own caption, as the editor sends it while the image is open: the image itself is
    # not "the same caption".
    own = api.post(f"{url}/captions/lint", json={"caption": image["caption"], "image_id": image["id"]}).json()
    assert own["same_caption_image_ids"] == [twin["id"]]
    anyone = api.post(f"{url}/captions/lint", json={"caption": image["caption"]}).json()
    assert anyone["same_caption_image_ids"] == [image["id"], twin["id"]]
    report = health(api, dataset["id"])
    assert report["captions"]["duplicate_captions"] == [
        {"caption": image["caption"], "image_ids": [image["id"], twin["id"]]}
    ]

    # A new prefix: every caption is linted again against it.
    api.put(url, json={"caption_prefix": "zzk style"})
    report = health(api, dataset["id"])
    assert problem(report, "prefix_missing")["image_ids"] == [image["id"], twin["id"]]
    lint_totals = {entry["rule"]: entry["count"] for entry in api.get(f"{url}/captions/lint").json()["lint"]}
    assert lint_totals["prefix_missing"] == 2


def test_fibo_lint_reports_undetermined_fields_and_readiness(api):
    dataset = api.dataset(training_version="fibo")
    image = api.upload(dataset["id"], "coffee.png")
    stored = api.get(f"/tailored-gen/datasets/{dataset['id']}/images/{image['id']}/lint").json()
    assert stored["encoder"] == {"name": "SmolLM3", "limit": 3000, "exact": False}
    undetermined = [f for f in stored["findings"] if f["rule"] == "not_determined"]
    assert undetermined and undetermined[0]["path"].startswith("caption.") and not undetermined[0]["blocking"]
    report = health(api, dataset["id"])
    readiness = [p["message"] for p in report["problems"] if p["rule"] == "readiness"]
    assert any("at least 5 images" in m for m in readiness) and any("visual_schema" in m for m in readiness)


def test_images_stored_before_the_report_existed_are_measured_in_the_background(api, database_url):
    dataset = api.dataset()
    for name in ("chelsea.png", "coffee.png", "rocket.jpg"):
        api.upload(dataset["id"], name)
    first = health(api, dataset["id"])
    engine = create_engine(sync_url(database_url))
    with engine.begin() as connection:
        measured = connection.execute(text("SELECT id, phash, sharpness FROM images ORDER BY id")).all()
        connection.execute(
            text("UPDATE images SET phash = NULL, sharpness = NULL, measured_at = NULL, lint_issues = NULL")
        )
    engine.dispose()

    pending = health(api, dataset["id"], complete=False)
    assert not pending["complete"] and pending["pending"]["measurements"] == 3
    done = health(api, dataset["id"])
    assert done["pending"] == {"measurements": 0, "lint": 0}
    engine = create_engine(sync_url(database_url))
    with engine.begin() as connection:
        assert connection.execute(text("SELECT id, phash, sharpness FROM images ORDER BY id")).all() == measured
    engine.dispose()
    assert done["buckets"] == first["buckets"]


def test_the_health_report_is_walled_off(api, other_api):
    dataset = api.dataset()
    assert other_api.get(f"/tailored-gen/datasets/{dataset['id']}/health").status_code == 404
    assert (
        other_api.post(f"/tailored-gen/datasets/{dataset['id']}/captions/lint", json={"caption": "x"}).status_code
        == 404
    )


def test_the_report_points_at_the_automatic_captions_the_captioner_doubts_until_they_are_reviewed(api):
    """rocket.jpg's subject is withheld for doubt (its confidence is below review.SURE), the cat and the cup are
    named surely: only the rocket is listed. Approving it, or writing its caption by hand, takes it off."""
    dataset = api.dataset()
    url = f"/tailored-gen/datasets/{dataset['id']}"
    rocket, cat, cup = (api.upload(dataset["id"], name) for name in ("rocket.jpg", "chelsea.png", "coffee.png"))
    shown = {
        i["id"]: i["caption_confidence"] for i in api.get(f"{url}/images", params={"include": "confidence"}).json()
    }
    assert shown[rocket["id"]] < 0.8 <= min(shown[cat["id"]], shown[cup["id"]]), shown

    doubtful = problem(health(api, dataset["id"]), "doubtful_captions")
    assert (doubtful["severity"], doubtful["count"], doubtful["image_ids"]) == ("warning", 1, [rocket["id"]])
    assert doubtful["message"] == (
        "1 automatic caption not reviewed yet the captioner is unsure of (confidence below 80%): review it first."
    )

    api.post(f"{url}/images/{rocket['id']}/review", json={"state": "approved"})
    assert problem(health(api, dataset["id"]), "doubtful_captions") is None
    api.post(f"{url}/images/{rocket['id']}/review", json={"state": "unreviewed"})
    assert problem(health(api, dataset["id"]), "doubtful_captions")["image_ids"] == [rocket["id"]]
    api.put(f"{url}/images/{rocket['id']}", json={"caption": "a rocket on its launch pad at dusk"})
    assert problem(health(api, dataset["id"]), "doubtful_captions") is None
