"""The caption review workbench at /ui, driven through Chromium as a person would use it."""

from __future__ import annotations

import json
import re

from playwright.sync_api import expect

from tests.ui.conftest import cli, make_dataset, sign_in


def test_sign_in_refuses_a_bad_token_then_lists_projects(page, shot, http, ui_env):
    token = cli(ui_env, "token", "create", "--org", "studio", "--name", "temp").strip().splitlines()[-1]
    dataset = make_dataset(http, [])
    page.goto("/ui/")
    page.get_by_label("API token").fill("ts_not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Not signed in: The api_token is not valid.")
    shot("bad-token")

    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    page.get_by_role("link", name=dataset_project_name(http, dataset)).click()
    expect(page.get_by_role("link", name="Review set")).to_be_visible()
    shot("project")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API token")).to_be_visible()
    assert page.evaluate("Object.keys(sessionStorage)") == []

    # A token revoked while signed in: the next call says so and asks to sign in again.
    sign_in(page, token)
    cli(ui_env, "token", "revoke", token)
    page.get_by_role("link", name=dataset_project_name(http, dataset)).click()
    expect(page.locator(".messages [role=alert] .message-text")).to_have_text(
        "Signed out: The api_token is not valid. Sign in again with a valid token."
    )
    expect(page.get_by_label("API token")).to_be_visible()
    shot("revoked")


def dataset_project_name(http, dataset: dict) -> str:
    return http.get(f"/projects/{dataset['project_id']}").json()["project_name"]


def open_dataset(page, token, dataset_id: int) -> None:
    sign_in(page, token, f"/ui/#/datasets/{dataset_id}")
    expect(page.locator(".grid .card").first).to_be_visible()


def test_grid_filter_and_keyboard_edit(page, shot, http, token):
    dataset = make_dataset(http, ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg"])
    open_dataset(page, token, dataset["id"])
    cards = page.locator(".grid .card")
    expect(cards).to_have_count(4)
    expect(page.locator(".grid .badge.source-automatic")).to_have_count(4)
    # Every automatic caption shows how sure the captioner was (confidence.js), named subjects as 60% or more.
    expect(page.locator(".grid .badge.confidence")).to_have_count(4)
    cat = http.get(f"/datasets/{dataset['id']}/images/{dataset['images'][0]['id']}", params={"include": "confidence"})
    expect(page.locator(".card", has_text="chelsea.png").locator(".badge.confidence")).to_have_text(
        f"{round(cat.json()['caption_confidence'] * 100)}%"
    )
    shot("grid")

    # Server-side search and source filter.
    page.get_by_label("Caption contains").fill("cat")
    expect(cards).to_have_count(1)
    expect(cards.first).to_contain_text("chelsea.png")
    page.get_by_label("Source").select_option("manual")
    expect(page.locator(".grid .empty")).to_have_text("No caption matches these filters.")
    shot("filtered")
    page.get_by_label("Caption contains").fill("")
    page.get_by_label("Source").select_option("")
    expect(cards).to_have_count(4)

    # Keyboard only: j, j, Enter to edit, Ctrl+Enter to save, Esc, j, k.
    coffee = dataset["images"][1]
    page.keyboard.press("Escape")  # leaves the filter field: letters are shortcuts again
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(page.locator('.card[aria-current="true"]')).to_contain_text("coffee.png")
    page.keyboard.press("Enter")
    caption = page.get_by_label("Caption", exact=True)
    expect(caption).to_be_focused()
    expect(caption).to_have_value(coffee["caption"])
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type("sks style, an espresso cup on a saucer, seen from above")
    page.keyboard.press("ControlOrMeta+Enter")
    panel = page.locator(".panel")
    expect(panel.get_by_role("status")).to_have_text("Saved.")
    expect(panel.locator(".badge")).to_have_text("manual")  # a person's caption: no confidence badge
    expect(page.locator(f'.card[data-id="{coffee["id"]}"] .badge')).to_have_text("manual")
    shot("saved-with-keyboard")
    page.keyboard.press("Escape")
    expect(page.locator('.card[aria-current="true"]')).to_be_focused()
    page.keyboard.press("j")
    expect(panel.get_by_role("heading")).to_have_text("astronaut.png")
    page.keyboard.press("k")
    expect(caption).to_have_value("sks style, an espresso cup on a saucer, seen from above")
    saved = http.get(f"/datasets/{dataset['id']}/images/{coffee['id']}").json()
    assert (saved["caption"], saved["caption_source"]) == (caption.input_value(), "manual")

    # r: the captioner writes it again.
    page.keyboard.press("r")
    expect(panel.get_by_role("status")).to_have_text("Regenerated: the captioner wrote this caption.")
    expect(caption).to_have_value(coffee["caption"])
    expect(panel.locator(".badge.source-automatic")).to_have_text("automatic")
    expect(panel.locator(".badge.confidence")).to_have_text(re.compile(r"^\d+%$"))
    expect(panel.locator(".signals")).to_contain_text("a cup of espresso")
    expect(page.locator(f'.card[data-id="{coffee["id"]}"] .badge.confidence')).to_be_visible()
    shot("regenerated")
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(page.locator('.card[aria-current="true"]')).to_be_focused()


def test_a_completed_dataset_says_409_then_clone_makes_a_draft(page, shot, http, token):
    dataset = make_dataset(http, ["chelsea.png"])
    open_dataset(page, token, dataset["id"])
    page.locator(".grid .card").first.click()
    caption = page.get_by_label("Caption", exact=True)
    expect(caption).to_be_focused()
    caption.fill("sks style, a tabby cat looking straight at you")

    # Completed meanwhile, say from another tab: the save is refused with the API's own sentence.
    assert http.put(f"/datasets/{dataset['id']}", json={"status": "completed"}).status_code == 200
    page.keyboard.press("ControlOrMeta+Enter")
    panel = page.locator(".panel")
    expect(panel.get_by_role("alert")).to_have_text(
        f"Not saved: Dataset {dataset['id']} is completed, so you cannot edit its captions; "
        "clone it as a draft instead."
    )
    expect(page.locator(".banner")).to_contain_text("this dataset is frozen")
    expect(page.get_by_role("button", name="Complete…")).to_be_disabled()
    expect(page.locator("#complete-note")).to_have_text("This dataset is already completed; it cannot return to draft.")
    expect(panel.get_by_role("button", name="Save")).to_be_disabled()
    expect(caption).to_have_attribute("readonly", "")
    shot("409-completed")
    assert http.get(f"/datasets/{dataset['id']}/images/{dataset['images'][0]['id']}").json()["caption_source"] == (
        "automatic"
    )

    page.get_by_role("button", name="Clone as draft").click()
    expect(page.locator(".messages")).to_contain_text("Cloned as the draft “Copy of Review set”")
    expect(page.get_by_role("heading", level=1)).to_have_text("Copy of Review set")
    clone_id = int(page.evaluate("location.hash").rsplit("/", 1)[-1])
    assert clone_id != dataset["id"]
    expect(page.locator(".banner")).to_be_hidden()
    page.locator(".grid .card").first.click()
    page.get_by_label("Caption", exact=True).fill("sks style, a tabby cat looking straight at you")
    page.keyboard.press("ControlOrMeta+Enter")
    expect(page.locator(".panel").get_by_role("status")).to_have_text("Saved.")
    shot("clone-edited")
    assert [i["caption"] for i in http.get(f"/datasets/{clone_id}/images").json()] == [
        "sks style, a tabby cat looking straight at you"
    ]


def test_history_restore(page, shot, http, token):
    dataset = make_dataset(http, ["coffee.png"])
    image = dataset["images"][0]
    for text in ("sks style, an espresso", "sks style, an espresso on a wooden table"):
        assert http.put(f"/datasets/{dataset['id']}/images/{image['id']}", json={"caption": text}).status_code == 200
    open_dataset(page, token, dataset["id"])
    page.locator(".grid .card").first.click()
    page.get_by_text("Caption history").click()
    revisions = page.locator(".history-list > li")
    expect(revisions).to_have_count(3)
    expect(revisions.first.get_by_role("button")).to_have_text("Current")
    expect(revisions.first).to_contain_text("token:reviewer")
    shot("history")

    revisions.last.get_by_role("button", name="Restore").click()  # the captioner's original
    panel = page.locator(".panel")
    expect(panel.locator(".message-box").get_by_role("status")).to_contain_text("Restored the caption from")
    expect(page.get_by_label("Caption", exact=True)).to_have_value(image["caption"])
    expect(panel.locator(".panel-meta .badge.source-automatic")).to_have_text("automatic")
    # The captioner's confidence comes back with its caption.
    confidence = http.get(f"/datasets/{dataset['id']}/images/{image['id']}", params={"include": "confidence"})
    expect(panel.locator(".panel-meta .badge.confidence")).to_have_text(
        f"{round(confidence.json()['caption_confidence'] * 100)}%"
    )
    expect(revisions).to_have_count(4)
    shot("restored")
    now = http.get(f"/datasets/{dataset['id']}/images/{image['id']}").json()
    assert (now["caption"], now["caption_source"]) == (image["caption"], "automatic")


def test_fibo_caption_edited_as_fields_with_live_validation(page, shot, http, token):
    dataset = make_dataset(http, ["chelsea.png"], training_version="fibo")
    image = dataset["images"][0]
    original = json.loads(image["caption"])
    open_dataset(page, token, dataset["id"])
    page.locator(".grid .card").first.click()
    panel = page.locator(".panel")
    short = panel.get_by_label("Short description")
    expect(short).to_have_value(original["short_description"])
    expect(short).to_be_focused()
    shot("fibo-fields")

    # Clear a required field: the validate endpoint's error appears under it while typing.
    direction = panel.locator('[name="caption.lighting.direction"]')
    direction.fill("")
    field_problems = panel.locator('.problems[data-problems-for="caption.lighting.direction"]')
    expect(field_problems).to_contain_text("caption.lighting.direction is required")
    expect(direction).to_have_attribute("aria-invalid", "true")
    expect(panel.locator(".validation")).to_contain_text("1 problem: saving would be refused")
    direction.evaluate("field => field.scrollIntoView({block: 'center'})")
    shot("fibo-live-error")
    page.keyboard.press("ControlOrMeta+Enter")
    expect(panel.locator(".message-box").get_by_role("alert")).to_contain_text(
        "Not saved: caption.lighting.direction is required"
    )
    assert http.get(f"/datasets/{dataset['id']}/images/{image['id']}").json()["caption"] == image["caption"]

    direction.fill("soft window light from the left")
    expect(panel.locator(".validation")).to_contain_text("✓ Valid")
    expect(field_problems).to_be_empty()
    page.keyboard.press("ControlOrMeta+Enter")
    expect(panel.locator(".message-box").get_by_role("status")).to_have_text("Saved.")
    shot("fibo-saved")
    saved = http.get(f"/datasets/{dataset['id']}/images/{image['id']}").json()
    assert saved["caption_source"] == "manual"
    assert json.loads(saved["caption"])["lighting"]["direction"] == "soft window light from the left"
    assert json.loads(saved["caption"])["context"] == original["context"]

    # The raw JSON view, and back to the fields.
    panel.get_by_role("button", name="JSON").click()
    raw = panel.get_by_label("Caption JSON")
    expect(raw).to_have_value(re.compile(r'"direction": "soft window light from the left"'))
    raw.fill(raw.input_value().replace('"context": ', '"context" '))
    panel.get_by_role("button", name="Fields").click()
    expect(panel.locator(".validation")).to_contain_text("The JSON does not parse")
    raw.fill(raw.input_value().replace('"context" ', '"context": ').replace("soft window light", "hard light"))
    panel.get_by_role("button", name="Fields").click()
    expect(panel.locator('[name="caption.lighting.direction"]')).to_have_value("hard light from the left")
    shot("fibo-back-to-fields")


def test_bulk_replace_preview_apply_undo(page, shot, http, token):
    dataset = make_dataset(http, ["chelsea.png", "coffee.png", "astronaut.png"])
    before = {i["id"]: i["caption"] for i in dataset["images"]}
    open_dataset(page, token, dataset["id"])
    page.get_by_label("Caption contains").fill("tabby")
    expect(page.locator(".grid .card")).to_have_count(1)
    page.get_by_role("button", name="Find and replace…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Find").fill("sks style")
    dialog.get_by_label("Replace with").fill("zzk style")
    apply = dialog.get_by_role("button", name=re.compile("^Apply"))
    expect(apply).to_be_disabled()
    dialog.get_by_role("button", name="Preview").click()
    rows = dialog.locator(".preview-table tbody tr")
    expect(rows).to_have_count(1)  # limited to what the search matches…
    expect(rows.first.get_by_role("rowheader")).to_have_text("chelsea.png")
    dialog.get_by_label("Only the images matching the current search and filter").uncheck()
    expect(apply).to_be_disabled()  # …and a changed question needs a new preview
    dialog.get_by_role("button", name="Preview").click()
    expect(rows).to_have_count(3)
    expect(dialog).to_contain_text("3 captions would change. Nothing is saved until you apply.")
    expect(rows.first.locator("del")).to_have_text("sks")
    expect(rows.first.locator("ins")).to_have_text("zzk")
    shot("dry-run-preview")
    assert {i["caption"] for i in http.get(f"/datasets/{dataset['id']}/images").json()} == set(before.values())

    apply.click()
    expect(dialog).to_be_hidden()
    page.get_by_label("Caption contains").fill("")
    expect(page.locator(".messages")).to_contain_text("Replaced in 3 captions.")
    expect(page.locator(".grid .card .caption").first).to_contain_text("zzk style")
    expect(page.locator(".grid .badge.source-manual")).to_have_count(3)
    shot("applied")
    assert all(i["caption"].startswith("zzk style") for i in http.get(f"/datasets/{dataset['id']}/images").json())

    page.get_by_role("button", name="Undo replace (3)").click()
    expect(page.locator(".messages")).to_contain_text("Undone: 3 captions put back.")
    expect(page.locator(".grid .badge.source-automatic")).to_have_count(3)
    expect(page.get_by_role("button", name=re.compile("^Undo replace"))).to_be_hidden()
    shot("undone")
    now = {i["id"]: (i["caption"], i["caption_source"]) for i in http.get(f"/datasets/{dataset['id']}/images").json()}
    assert now == {image_id: (caption, "automatic") for image_id, caption in before.items()}


def test_regenerate_all_shows_progress(page, shot, http, token):
    dataset = make_dataset(http, ["chelsea.png", "coffee.png"])
    first = dataset["images"][0]
    http.put(f"/datasets/{dataset['id']}/images/{first['id']}", json={"caption": "sks style, a cat"})
    assert http.put(f"/datasets/{dataset['id']}", json={"caption_prefix": "zzk photo"}).status_code == 200
    open_dataset(page, token, dataset["id"])
    page.get_by_role("button", name="Regenerate all…").click()
    page.get_by_role("dialog").get_by_label("Also replace manual captions").check()
    page.get_by_role("dialog").get_by_role("button", name="Regenerate all").click()
    expect(page.get_by_label("Regenerating captions")).to_be_visible()  # shown from the 202 until the job ends
    shot("progress")
    expect(page.locator(".messages")).to_contain_text("Regenerate All completed: 2 of 2 captions.", timeout=60_000)
    expect(page.locator(".grid .badge.source-automatic")).to_have_count(2)
    expect(page.locator(".grid .card .caption").first).to_contain_text("zzk photo")
    shot("regenerated-all")
