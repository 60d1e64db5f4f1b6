"""What the captioner tests share: the scikit-image photos, a loaded local captioner and the FIBO caption
schema's validator (tests/captioners/conftest.py makes fixtures of them)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from PIL import Image

PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "motorcycle_left.png", "rocket.jpg", "camera.png")


def photo_dir() -> Path:
    skimage = pytest.importorskip("skimage")
    return Path(skimage.__file__).parent / "data"


@cache
def photos() -> dict[str, Image.Image]:
    loaded = {}
    for name in PHOTOS:
        with Image.open(photo_dir() / name) as image:
            image.load()
            loaded[name] = image
    return loaded


def new_captioner(model_dir: Path, **options):
    """A loaded local captioner; its models are exported into `model_dir` unless they are there already."""
    from tailorset.captioners.local import LocalCaptioner

    captioner = LocalCaptioner(cache_dir=model_dir, **options)
    captioner.load()
    return captioner


@cache
def fibo_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(resources.files("tailorset.fibo").joinpath("caption.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema)
