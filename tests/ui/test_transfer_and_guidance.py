"""The workbench's Import and Export, and what guides the captions (a prefix, a FIBO visual_schema) generated
from images picked in the grid — driven through Chromium as a person would use them."""

from __future__ import annotations

import io
import json
import zipfile

from playwright.sync_api import expect

from tests.support import photo, zip_of
from tests.ui.conftest import make_dataset, sign_in


def open_dataset(page, token, dataset_id: int) -> None:
    sign_in(page, token, f"/ui/#/datasets/{dataset_id}")
    expect(page.locator(".grid .card").first).to_be_visible()


def test_import_a_zip_then_export_it(page, shot, http, token, tmp_path):
    dataset = make_dataset(http, ["chelsea.png"])
    open_dataset(page, token, dataset["id"])
    archive = tmp_path / "trip.zip"
    archive.write_bytes(zip_of({
        "coffee.png": photo("coffee.png"), "coffee.caption": "sks style, an espresso",
        "astronaut.png": photo("astronaut.png"),
        "metadata.jsonl": '{"file_name": "nowhere.png", "text": "a typo"}\n',
    }))  # fmt: skip

    page.get_by_role("button", name="Import ZIP…").click()
    dialog = page.get_by_role("dialog", name="Import a ZIP")
    dialog.get_by_label("ZIP file").set_input_files(str(archive))
    dialog.get_by_role("button", name="Import").click()
    expect(dialog.locator(".import-report")).to_contain_text("Imported 2 images; 1 refused, 0 already here.")
    expect(dialog.locator(".import-report")).to_contain_text(
        "metadata.jsonl: metadata.jsonl names files that are not images in the ZIP: row 1 ('nowhere.png')."
    )
    expect(dialog.locator(".import-report")).to_contain_text("No caption found (1)astronaut.png")
    shot("import-report")
    dialog.get_by_role("button", name="Close").click()
    expect(page.locator(".grid .card")).to_have_count(3)  # the grid shows what came in
    expect(page.locator(".grid")).to_contain_text("sks style, an espresso")

    page.get_by_role("button", name="Export…").click()
    dialog = page.get_by_role("dialog", name="Export the dataset")
    expect(dialog.get_by_label("Format").locator("option[value=fibo]")).to_have_count(0)  # not a FIBO dataset
    dialog.get_by_label("Format").select_option("ai-toolkit")
    with page.expect_download() as started:
        dialog.get_by_role("button", name="Download").click()
    download = started.value
    assert download.suggested_filename == f"dataset-{dataset['id']}-ai-toolkit.zip"
    exported = zipfile.ZipFile(io.BytesIO(open(download.path(), "rb").read()))  # noqa: SIM115
    assert exported.read("coffee.txt").decode() == "sks style, an espresso"
    assert sorted(n for n in exported.namelist() if not n.endswith(".txt")) == [
        "astronaut.png", "chelsea.png", "coffee.png"
    ]  # fmt: skip
    shot("export")


def test_generate_a_prefix_from_picked_images_then_regenerate_all(page, shot, http, token):
    dataset = make_dataset(http, ["chelsea.png", "coffee.png"])
    open_dataset(page, token, dataset["id"])
    page.get_by_role("button", name="Prefix…").click()
    dialog = page.get_by_role("dialog", name="Caption prefix")
    dialog.get_by_text("Generate one from images of this dataset").click()
    dialog.get_by_role("button", name="Generate prefix").click()
    expect(dialog.get_by_role("alert")).to_have_text("Pick 1 to 6 images first.")
    dialog.get_by_label("Pick chelsea.png").check()
    expect(dialog).to_contain_text("1 picked; pick 1 to 6.")
    dialog.get_by_role("button", name="Generate prefix").click()
    expect(dialog.get_by_label("Prefix")).to_have_value("A photo of a tabby cat")
    shot("prefix-generated")
    dialog.get_by_role("button", name="Save prefix").click()
    expect(page.locator(".messages")).to_contain_text("Prefix saved.")
    assert http.get(f"/datasets/{dataset['id']}").json()["caption_prefix"] == "A photo of a tabby cat"

    page.locator(".messages").get_by_role("button", name="Regenerate all…").click()
    page.get_by_role("dialog").get_by_role("button", name="Regenerate all").click()
    expect(page.locator(".messages")).to_contain_text("Regenerate All completed: 2 of 2 captions", timeout=60_000)
    captions = [i["caption"] for i in http.get(f"/datasets/{dataset['id']}/images").json()]
    assert all(caption.startswith("A photo of a tabby cat") for caption in captions), captions


def test_a_fibo_visual_schema_is_generated_reviewed_and_saved(page, shot, http, token):
    names = ["chelsea.png", "coffee.png", "astronaut.png", "camera.png", "rocket.jpg"]
    dataset = make_dataset(http, names, training_version="fibo")
    open_dataset(page, token, dataset["id"])
    expect(page.get_by_role("button", name="Prefix…")).to_be_hidden()
    page.get_by_role("button", name="Visual schema…").click()
    dialog = page.get_by_role("dialog", name="Visual schema")
    expect(dialog.get_by_label("Visual schema (JSON)")).to_have_value("")
    dialog.get_by_text("Generate one from images of this dataset").click()
    for name in names:
        dialog.get_by_label(f"Pick {name}").check()
    dialog.get_by_role("button", name="Generate visual schema").click()
    schema = dialog.get_by_label("Visual schema (JSON)")
    expect(schema).not_to_have_value("")
    generated = json.loads(schema.input_value())
    assert generated["style_medium"] == "photograph"

    # Reviewed: a person changes it before saving.
    schema.fill(json.dumps({**generated, "mood": "quiet, studio-like"}, indent=2))
    dialog.get_by_label("Refine with an instruction").fill("Warmer colours.")
    dialog.get_by_role("button", name="Refine").click()  # the offline captioner cannot: it says which can
    expect(dialog.get_by_role("alert")).to_contain_text(
        "Not refined: Refining a structured prompt needs a language model"
    )
    shot("visual-schema")
    dialog.get_by_role("button", name="Save visual schema").click()
    expect(page.locator(".messages")).to_contain_text("Visual schema saved.")
    saved = json.loads(http.get(f"/datasets/{dataset['id']}").json()["visual_schema"])
    assert saved == {**generated, "mood": "quiet, studio-like"}
    expect(page.locator(".messages").get_by_role("button", name="Regenerate all…")).to_be_visible()
