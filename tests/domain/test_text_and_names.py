"""Which characters text may hold, review notes, and file names that every filesystem accepts."""

from __future__ import annotations

import pytest

from tailorset.domain.errors import Invalid
from tailorset.domain.filenames import MAX_BYTES, portable_name
from tailorset.domain.review import checked_note, state_after_caption_write
from tailorset.domain.text import caption_problem, unstorable


def test_only_nul_and_lone_surrogates_are_unstorable():
    assert unstorable("any text, \x07 \x1b \u200f é 中 😀") is None
    assert unstorable("a\x00b") == "must not contain NUL (\\x00) characters"
    assert unstorable("a\ud800b") == "must not contain a lone surrogate (\\ud800), which is not valid Unicode"


@pytest.mark.parametrize("char", ["\x01", "\x08", "\x0b", "\x0c", "\x0d", "\x1f", "\x7f", "\x85", "\x9f"])
def test_a_caption_holds_no_control_characters(char):
    assert caption_problem(f"a{char}cat") == (
        f"must not contain a control character (\\x{ord(char):02x}); only tab and newline are allowed"
    )


def test_a_caption_may_hold_tab_newline_and_any_printable_unicode():
    assert caption_problem("a cat,\tsitting\non a mat: é 中 😀 «»") is None
    assert caption_problem("\x00") == "must not contain NUL (\\x00) characters"


def test_review_state_after_a_caption_is_written():
    assert state_after_caption_write("automatic") == "unreviewed"
    assert state_after_caption_write(None) == "unreviewed"
    assert state_after_caption_write("manual") == "approved"
    assert state_after_caption_write("automatic", chosen_by_person=True) == "approved"


def test_a_note_belongs_to_a_flag():
    assert checked_note("flagged", "  blurry  ") == "blurry"
    assert checked_note("flagged", "   ") is None
    assert checked_note("flagged", None) is None
    assert checked_note("approved", None) is None
    with pytest.raises(Invalid, match="only for flagged"):
        checked_note("approved", "fine")
    assert checked_note("flagged", "x" * 2000) == "x" * 2000
    with pytest.raises(Invalid, match="2,001 characters long; the limit is 2,000"):
        checked_note("flagged", "x" * 2001)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cat.png", "cat.png"),
        ("CON", "CON_"),
        ("con.png", "con_.png"),
        ("LPT¹.txt", "LPT¹_.txt"),
        ("console.png", "console.png"),  # only the device itself is reserved
        ('a<b>c:d"e/f\\g|h?i*j', "a_b_c_d_e_f_g_h_i_j"),
        ("photo\u202egnp.exe", "photognp.exe"),  # a right-to-left override is invisible: dropped
        ("zero\u200bwidth", "zerowidth"),
        ("tab\there\nnewline", "tab_here_newline"),
        ("trailing dots. . ", "trailing dots"),
        (" .hidden", "hidden"),
        ("...", ""),
        ("cafe\u0301", "café"),  # NFC
    ],
)
def test_portable_names(name, expected):
    assert portable_name(name) == expected


def test_a_long_name_is_cut_on_a_character_boundary():
    name = portable_name("é" * 300)
    assert name == "é" * (MAX_BYTES // 2)
    assert len(portable_name("中" * 100).encode()) <= MAX_BYTES
    assert portable_name("中" * 100) == "中" * (MAX_BYTES // 3)
