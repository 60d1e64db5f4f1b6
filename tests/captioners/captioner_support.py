"""Shared test helpers (a plain module, so the tests also run with --noconftest): the scikit-image photos
and one ONNX export per test process, reused by every module's captioner fixture."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
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


@cache
def model_dir() -> Path:
    """A model cache shared by all test modules; the first captioner to load exports into it."""
    path = Path(tempfile.mkdtemp(prefix="tailorset-models-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def new_captioner(**options):
    from tailorset.captioners.local import LocalCaptioner

    captioner = LocalCaptioner(cache_dir=model_dir(), **options)
    captioner.load()
    return captioner


@cache
def fibo_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(resources.files("tailorset.fibo").joinpath("caption.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema)
