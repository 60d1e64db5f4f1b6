"""The transformers captioner's failure paths: each misconfiguration is one clear CaptionerError.

No model is loaded here (none ships offline); the loading code itself was exercised by hand with tiny
random BLIP and LLaVA models written by save_pretrained.
"""

from __future__ import annotations

import sys

import pytest
from PIL import Image

from tailorset.captioners.base import CaptionContext, Captioner, CaptionerError
from tailorset.captioners.transformers import INSTALL_HINT, TransformersCaptioner, caption_from_sentence
from tailorset.config import Settings
from tailorset.fibo import check_caption


@pytest.fixture
def model_dir(tmp_path):
    path = tmp_path / "blip"
    path.mkdir()
    (path / "config.json").write_text('{"model_type": "blip", "architectures": ["BlipForConditionalGeneration"]}')
    return path


@pytest.fixture
def no_transformers(monkeypatch):
    """As if the extra were not installed (a None entry makes `import transformers` fail)."""
    monkeypatch.setitem(sys.modules, "transformers", None)


def test_missing_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(CaptionerError, match="does not exist") as caught:
        TransformersCaptioner(missing)
    assert str(missing) in str(caught.value) and "TAILORSET_CAPTIONER_MODEL" in str(caught.value)


def test_a_file_instead_of_a_directory(tmp_path):
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"\0")
    with pytest.raises(CaptionerError, match="is a file, not a directory") as caught:
        TransformersCaptioner(file)
    assert str(file) in str(caught.value)


def test_a_directory_without_config_json(tmp_path):
    with pytest.raises(CaptionerError, match="has no config.json") as caught:
        TransformersCaptioner(tmp_path)
    assert str(tmp_path) in str(caught.value)


def test_transformers_not_installed_fails_at_the_first_caption(model_dir, no_transformers):
    captioner = TransformersCaptioner(model_dir)  # lazy: nothing is imported yet
    assert isinstance(captioner, Captioner) and captioner.name == "transformers"
    with pytest.raises(CaptionerError, match="pip install 'tailorset\\[transformers\\]'") as caught:
        captioner.caption(Image.new("RGB", (32, 32)), CaptionContext(caption_prefix="sks style"))
    assert INSTALL_HINT in str(caught.value) and "transformers is not installed" in str(caught.value)


def test_transformers_not_installed_fails_at_start_up(model_dir, no_transformers):
    settings = Settings(captioner="transformers", captioner_model=str(model_dir))
    with pytest.raises(CaptionerError, match=r"pip install 'tailorset\[transformers\]'"):
        TransformersCaptioner.from_settings(settings)


def test_from_settings_needs_a_model_directory():
    with pytest.raises(CaptionerError, match="TAILORSET_CAPTIONER_MODEL"):
        TransformersCaptioner.from_settings(Settings(captioner="transformers", captioner_model=None))


def test_from_settings_checks_the_path_first(tmp_path):
    settings = Settings(captioner="transformers", captioner_model=str(tmp_path / "nowhere"))
    with pytest.raises(CaptionerError, match="does not exist"):
        TransformersCaptioner.from_settings(settings)


def test_a_plain_sentence_becomes_a_valid_fibo_caption():
    caption = caption_from_sentence("a tabby cat sleeping on a red cushion")
    check = check_caption(caption)
    assert check.valid and check.caption == caption
    assert '"short_description":"A tabby cat sleeping on a red cushion."' in caption
