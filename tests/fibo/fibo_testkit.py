"""Shared test data for the FIBO caption tests: fixture captions and Hypothesis strategies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from tailorset.fibo import canonical_json
from tailorset.fibo.schema import SCORE_LABELS

DATA = Path(__file__).parent / "data"
FIXTURES = sorted(p.stem for p in DATA.glob("*.json"))


def fixture(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text("utf-8"))


def canonical(name: str) -> str:
    return canonical_json(fixture(name))


def pretty(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False)


# -- Hypothesis: valid captions ---------------------------------------------------------------------

# Text that is already in canonical shape (trimmed, non-empty), drawn from an alphabet that stresses
# the repair scanners: quotes, apostrophes, slashes, brackets, commas, backslashes and non-ASCII.
_awkward = st.sampled_from(list("\"'/\\{}[],:*#`") + ["//", "/*", "*/", "```", "é", "ß", "中", "😀", "\n", "\t"])
_word = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12)
text = (
    st.lists(st.one_of(_word, _awkward, st.just(" ")), min_size=1, max_size=8).map("".join).map(str.strip).filter(bool)
)
score = st.sampled_from(SCORE_LABELS)


def _block(required: list[str], optional: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {k: text for k in required},
        optional={k: v for k, v in optional.items()},
    )


_object_optional = {
    k: text
    for k in (
        "relative_size",
        "shape_and_color",
        "texture",
        "appearance_details",
        "pose",
        "expression",
        "clothing",
        "action",
        "gender",
        "skin_tone_and_texture",
        "orientation",
    )
} | {"number_of_objects": st.integers(1, 10_000)}

obj_item = _block(["description", "location", "relationship"], _object_optional)
lighting = _block(["conditions", "direction"], {"shadows": text})
aesthetics = _block(
    ["composition", "color_scheme", "mood_atmosphere"], {"preference_score": score, "aesthetic_score": score}
)
photographic = _block(["depth_of_field", "focus", "camera_angle", "lens_focal_length"], {})
text_item = _block(["text", "location", "size", "color", "font"], {"appearance_details": text})

captions = st.fixed_dictionaries(
    {
        "short_description": text,
        "background_setting": text,
        "lighting": lighting,
        "aesthetics": aesthetics,
        "context": text,
    },
    optional={
        "objects": st.lists(obj_item, min_size=1, max_size=6),
        "photographic_characteristics": photographic,
        "style_medium": text,
        "text_render": st.lists(text_item, min_size=1, max_size=3),
        "artistic_style": text,
    },
)
