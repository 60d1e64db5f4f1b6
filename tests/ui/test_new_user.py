"""Done when, as a new user would: a folder of 50 photos is pushed with the CLI, reviewed and fixed in
the browser with the keyboard, a bad bulk replace is undone, the dataset is completed, and the
kohya folder pulled with the CLI is what a trainer reads."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageOps
from playwright.sync_api import expect

from tests.support import PHOTOS, kohya_read
from tests.ui.conftest import API, cli, sign_in

SOURCES = [
    "astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png",
    "motorcycle_right.png", "hubble_deep_field.jpg", "camera.png", "moon.png", "coins.png",
]  # fmt: skip
# Captions someone already wrote, beside their photos (photo 7 is the Hubble deep field, 33 the cat turned).
SIDECARS = {
    7: "sks style, thousands of distant galaxies in deep space",
    33: "sks style, a tabby cat, the photo turned sideways",
}


def _at_least(image: Image.Image, side: int = 320) -> Image.Image:
    scale = side / min(image.size)
    return image if scale <= 1 else image.resize((round(image.width * scale), round(image.height * scale)))


def _variant(image: Image.Image, kind: int) -> Image.Image:
    """Five different photos from one: as shot, mirrored, cropped, turned, colour-shifted."""
    image = image.convert("RGB")
    if kind == 1:
        return ImageOps.mirror(image)
    if kind == 2:
        w, h = image.size
        return _at_least(image.crop((w // 10, h // 8, w - w // 10, h - h // 8)))
    if kind == 3:
        return image.rotate(90, expand=True)
    if kind == 4:
        r, g, b = image.split()
        if r.tobytes() == g.tobytes():  # a black-and-white photo: tint it instead
            return ImageOps.colorize(r, black="#1b2a49", white="#ffe9c4")
        return Image.merge("RGB", (b, r, g))
    return image


def make_photo_folder(folder: Path) -> list[Path]:
    """50 distinct real photos (≥ 256 px) derived from scikit-image's, two with a `.txt` caption beside them."""
    folder.mkdir()
    paths = []
    for n in range(50):
        source = SOURCES[n % len(SOURCES)]
        image = _at_least(_variant(Image.open(PHOTOS / source), n // len(SOURCES)))
        # Numbered first, as a camera would: the folder's order (and so the upload order) is the numbering.
        path = folder / f"{n + 1:02d}_{Path(source).stem}{'.png' if n % 4 == 0 else '.jpg'}"
        image.save(path, quality=90) if path.suffix == ".jpg" else image.save(path)
        if n + 1 in SIDECARS:
            path.with_suffix(".txt").write_text(SIDECARS[n + 1] + "\n")
        paths.append(path)
    return paths


def _has_client_commands(env: dict[str, str]) -> bool:
    done = subprocess.run([sys.executable, "-m", "tailorset", "--help"], env=env, capture_output=True, text=True)
    return " push" in done.stdout and " pull" in done.stdout


def test_new_user_from_a_folder_of_photos_to_a_kohya_folder(page, shot, server, ui_env, tmp_path):
    if not _has_client_commands(ui_env):
        pytest.skip("`tailorset push` / `tailorset pull` (src/tailorset/cli_client.py) are not there yet")
    token = cli(ui_env, "token", "create", "--org", "newcomer", "--name", "sam").strip().splitlines()[-1]
    photos = make_photo_folder(tmp_path / "photos")
    assert len({p.read_bytes() for p in photos}) == 50 and min(min(Image.open(p).size) for p in photos) >= 256

    # 1. Sign in, make a project and a dataset.
    sign_in(page, token)
    page.get_by_label("Name").fill("Holiday photos")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Holiday photos")
    page.get_by_label("Name").fill("Trip")
    page.get_by_label("Caption prefix").fill("sks style")
    page.get_by_role("button", name="Create dataset").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Trip")
    dataset_id = int(re.search(r"#/datasets/(\d+)$", page.url).group(1))
    expect(page.locator(".grid .empty")).to_contain_text(f"tailorset push DIR --dataset {dataset_id}")
    shot("empty-dataset")

    # 2. Push the folder with the command line.
    client_env = {**ui_env, "TAILORSET_URL": server, "TAILORSET_TOKEN": token}
    print(cli(client_env, "push", str(tmp_path / "photos"), "--dataset", str(dataset_id)))
    http = httpx.Client(base_url=server + API, headers={"api_token": token}, timeout=60)
    pushed = http.get(f"/datasets/{dataset_id}/images").json()
    assert len(pushed) == 50
    by_name = {Path(i["image_name"]).stem: i for i in pushed}
    for n, text in SIDECARS.items():
        sidecar = next(p for p in photos if p.stem.startswith(f"{n:02d}_"))
        assert by_name[sidecar.stem]["caption"] == text and by_name[sidecar.stem]["caption_source"] == "manual"

    # 3. Review with the keyboard only: the grid pages in 48 at a time, j walks on past the page.
    page.reload()
    cards = page.locator(".grid .card")
    expect(cards).to_have_count(48)
    expect(page.get_by_role("button", name="Load more")).to_be_visible()
    shot("pushed")
    fixes = {}

    def fix(text: str) -> None:
        page.keyboard.press("Enter")
        caption = page.get_by_label("Caption", exact=True)
        expect(caption).to_be_focused()
        page.keyboard.press("ControlOrMeta+a")
        page.keyboard.type(text)
        page.keyboard.press("ControlOrMeta+Enter")
        expect(page.locator(".panel .message-box")).to_have_text("Saved.")
        fixes[int(page.locator('.card[aria-current="true"]').get_attribute("data-id"))] = text
        page.keyboard.press("Escape")  # leave the field; letters are shortcuts again

    page.keyboard.press("j")
    fix("sks style, an astronaut in an orange suit in front of the flag")
    page.keyboard.press("j")
    page.keyboard.press("j")
    fix("sks style, a tabby cat, close-up of its face")
    shot("fixed-with-keyboard")
    page.keyboard.press("Escape")  # close the editor
    for _ in range(47):
        page.keyboard.press("j")
    expect(cards).to_have_count(50)  # the last page came in as j went past the first
    expect(page.locator('.card[aria-current="true"]')).to_contain_text("50_coins")
    fix("sks style, coins on a dark cloth, colours shifted")
    page.keyboard.press("Escape")
    assert len(fixes) == 3
    for image_id, text in fixes.items():
        saved = http.get(f"/datasets/{dataset_id}/images/{image_id}").json()
        assert (saved["caption"], saved["caption_source"]) == (text, "manual")

    # 4. A bad bulk replace (the trigger word dropped from every caption), previewed, applied, undone.
    before = {i["id"]: (i["caption"], i["caption_source"]) for i in http.get(f"/datasets/{dataset_id}/images").json()}
    page.get_by_role("button", name="Find and replace…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Find").fill("sks style, ")
    dialog.get_by_role("button", name="Preview").click()
    expect(dialog.locator(".preview-table tbody tr")).to_have_count(50)
    dialog.get_by_role("button", name="Apply to 50 captions").click()
    expect(page.locator(".messages")).to_contain_text("Replaced in 50 captions.")
    shot("bad-replace-applied")
    assert not any(i["caption"].startswith("sks") for i in http.get(f"/datasets/{dataset_id}/images").json())
    page.get_by_role("button", name="Undo replace (50)").click()
    expect(page.locator(".messages")).to_contain_text("Undone: 50 captions put back.")
    shot("undone")
    after = {i["id"]: (i["caption"], i["caption_source"]) for i in http.get(f"/datasets/{dataset_id}/images").json()}
    assert after == before

    # 5. Complete the dataset.
    page.get_by_role("button", name="Complete…").click()
    page.get_by_role("dialog").get_by_role("button", name="Complete dataset").click()
    expect(page.locator(".messages")).to_contain_text("Dataset completed with 50 images")
    expect(page.locator(".dataset-info .badge")).to_have_text("completed")
    shot("completed")

    # 6. Pull a kohya folder and read it as a trainer would.
    out = tmp_path / "kohya"
    print(cli(client_env, "pull", "--dataset", str(dataset_id), "--format", "kohya", str(out)))
    folders = [out, *sorted(p for p in out.rglob("*") if p.is_dir())]
    trained = {}
    for folder in folders:
        trained.update(kohya_read(folder))
    assert len(trained) == 50, sorted(p.name for p in out.rglob("*"))
    captions = sorted(c for _, c in trained.values())
    assert captions == sorted(c for c, _ in after.values())
    # Each fixed caption sits beside its own photo: the very file the service holds for that image.
    for image_id, text in fixes.items():
        [(image_path, _)] = [entry for entry in trained.values() if entry[1] == text]
        original = httpx.get(http.get(f"/datasets/{dataset_id}/images/{image_id}").json()["image_url"]).content
        assert image_path.read_bytes() == original
    http.close()
    print(f"kohya folder: {out} ({len(trained)} images)", file=sys.stderr)
