"""FIBO structured captions: validation against caption.schema.json, safe repair, explanations.

A pure module (no web or database imports). The HTTP layer calls `check_caption` for a FIBO
caption and `check_visual_schema` for a dataset's visual_schema; a result is either valid (store
`caption`, report `corrections` and `warnings`) or not (answer 400 with `error_message()`).
Rule names are catalogued in `REPAIR_RULES`, `ERROR_RULES` and `WARNING_RULES`.
"""

from .check import canonical_json, check_caption, check_visual_schema
from .result import ERROR_RULES, REPAIR_RULES, WARNING_RULES, CaptionCheck, Correction, Problem
from .schema import SCHEMA, VALIDATOR

__all__ = [
    "ERROR_RULES",
    "REPAIR_RULES",
    "SCHEMA",
    "VALIDATOR",
    "WARNING_RULES",
    "CaptionCheck",
    "Correction",
    "Problem",
    "canonical_json",
    "check_caption",
    "check_visual_schema",
]
