"""Picture measurements and the health rules over them, on real photos."""

from __future__ import annotations

import io

from PIL import Image, ImageFilter

from tailorset import imaging, quality
from tailorset.domain import health
from tests.support import photo

NAMES = ("astronaut.png", "coffee.png", "chelsea.png", "camera.png", "rocket.jpg", "coins.png", "hubble_deep_field.jpg")


def measured(image: Image.Image) -> quality.Measurements:
    return quality.measure(image, imaging.to_rgb(image))


def opened(name: str) -> Image.Image:
    image = Image.open(io.BytesIO(photo(name)))
    image.load()
    return image


def test_copies_hash_close_and_different_photos_far():
    for name in NAMES:
        image = opened(name).convert("RGB")
        out = io.BytesIO()
        image.resize((image.width * 2 // 3, image.height * 2 // 3)).save(out, format="JPEG", quality=70)
        copy = Image.open(io.BytesIO(out.getvalue()))
        assert quality.hamming(measured(image).phash, measured(copy).phash) <= health.NEAR_DUPLICATE_BITS, name
    hashes = [measured(opened(name)).phash for name in NAMES]
    distances = [quality.hamming(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :]]
    assert min(distances) > 2 * health.NEAR_DUPLICATE_BITS


def test_blur_exposure_and_transparency_are_found():
    for name in NAMES:
        sharp = opened(name)
        assert "blurry" not in health.image_issues(picture(sharp)), name
        assert "blurry" in health.image_issues(picture(sharp.filter(ImageFilter.GaussianBlur(3)))), name
    dark = Image.new("RGB", (600, 400), (6, 6, 6))
    assert {"underexposed", "blurry"} <= set(health.image_issues(picture(dark)))
    cut_out = opened("coffee.png").convert("RGBA")
    cut_out.putalpha(Image.new("L", cut_out.size, 255).crop((0, 0, *cut_out.size)))
    assert not measured(cut_out).transparent
    cut_out.paste((0, 0, 0, 0), (0, 0, 100, 100))
    assert measured(cut_out).transparent


def picture(image: Image.Image) -> health.Picture:
    m = measured(image)
    return health.Picture(
        image.width,
        image.height,
        m.turned,
        m.sharpness,
        m.brightness,
        m.dark_fraction,
        m.bright_fraction,
        m.transparent,
    )


def test_buckets_are_kohyas():
    # sd-scripts with --resolution 1024 --max_bucket_reso 2048: 1024², 1344×768 for 16:9, 1216×832 for 3:2 …
    assert health.bucket_of(1024, 1024) == ((1024, 1024), 0.0)
    assert health.bucket_of(1920, 1080)[0] == (1344, 768)
    assert health.bucket_of(1080, 1920)[0] == (768, 1344)
    assert health.bucket_of(600, 400)[0] == (1216, 832)
    bucket, cropped = health.bucket_of(4000, 1000)
    assert bucket == (2048, 512) and cropped == 0.0
    assert all(w % 64 == 0 and h % 64 == 0 and w * h <= 1024 * 1024 for w, h in health.BUCKETS)


def test_readiness_follows_brias_rules():
    assert health.readiness("fibo", 4, 200, '{"style": "x"}').blocking[0].startswith("A fibo dataset needs at least 5")
    assert not health.readiness("fibo", 5, 200, None).ready
    assert health.readiness("fibo", 5, 200, '{"style": "x"}').ready
    light = health.readiness("light", 10, 200, None)
    assert light.ready and light.warnings == ["Bria recommends 15-100 images for light training; the dataset has 10."]
    assert not health.readiness("max", 0, 200, None).ready
