"""CLIP's tokenizer, ours, against an independent implementation; and which encoder reads which version."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailorset import text_encoders
from tailorset.text_encoders import ClipTokenizer

oracle = pytest.importorskip("instant_clip_tokenizer").Tokenizer()  # the Rust one; no wheel for Python 3.13 yet


def test_known_sentences_tokenize_as_clip_does():
    tokenizer = ClipTokenizer.load()
    assert tokenizer.encode("A person riding a motorcycle") == [320, 2533, 6765, 320, 10297]  # its README's example
    caption = "sks style, a photo of a tabby cat, brown, beige and orange tones, balanced exposure"
    assert tokenizer.encode(caption) == list(oracle.encode(caption))
    assert tokenizer.count(caption) == len(tokenizer.encode(caption)) + 2


# Captions as people and captioners write them: words, punctuation, digits, accents, emoji.
caption_text = st.text(
    alphabet=st.sampled_from("abcdefghij klmnop qrstuvwxyz ABCXYZ 0123456789 ,.;:!?'\"()-_/#@ éàüñ 😀 —"), max_size=200
)


@settings(max_examples=300, deadline=None)
@given(caption_text)
def test_any_caption_tokenizes_as_the_independent_tokenizer_does(text):
    assert ClipTokenizer.load().encode(text) == list(oracle.encode(text))


def test_each_training_version_has_its_encoder():
    assert text_encoders.for_version("max") is text_encoders.CLIP and text_encoders.CLIP.limit == 77
    assert text_encoders.for_version("3.2").name == "T5" and not text_encoders.for_version("3.2").exact
    fibo = text_encoders.for_version("fibo")
    assert (fibo.name, fibo.limit, fibo.exact) == ("SmolLM3", 3000, False)
    assert fibo.count("x" * 12_000) > fibo.limit > fibo.count("x" * 11_000)  # four characters a token
