"""Result types of a caption check, and the catalogue of rule names they carry.

Rule names are part of the public contract (the lint endpoint and clients key on them), so they
live here in one table; tests check that every name used by the code is catalogued.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Repairs: applied silently to the stored caption and listed in CaptionCheck.corrections.
REPAIR_RULES: dict[str, str] = {
    "whitespace": "UTF-8 BOM or surrounding whitespace stripped",
    "stop_tokens": "chat stop tokens or a <think> block removed",
    "code_fence": "markdown code fence around the JSON removed",
    "surrounding_prose": "text before or after the JSON object removed",
    "comments": "// or /* */ comments removed",
    "trailing_commas": "commas before } or ] removed",
    "control_characters": "raw newlines or tabs inside strings escaped",
    "python_literal": "Python-dict style (single quotes, None/True/False) read with ast.literal_eval",
    "json_syntax": "other JSON syntax (missing commas, unquoted keys, curly quotes) fixed by json-repair",
    "double_encoded": "JSON encoded twice: the inner string was parsed",
    "envelope": 'caption unwrapped from a known envelope such as {"caption": ...} or {"structured_prompt": ...}',
    "single_item_array": "a top-level list holding exactly one object unwrapped",
    "duplicate_keys": "a key repeated with an identical value kept once",
    "key_spelling": "a missing required key taken from its spelling variant (case, spaces, hyphens, camelCase, colour)",
    "unknown_key_dropped": "key not in the schema dropped (also a warning)",
    "edit_instruction_dropped": "FIBO-Edit edit_instruction dropped from a text-to-image caption (also a warning)",
    "empty_dropped": "null, empty string, empty list, empty object or NaN dropped",
    "key_order": "keys reordered into the canonical order",
    "text_trimmed": "leading or trailing whitespace inside a text value trimmed",
    "text_stringified": "a number where text is expected turned into text",
    "text_list_joined": "a list of strings where one text is expected joined with ', '",
    "integer_coerced": 'number_of_objects as "3", "1_000", 3.0 or true turned into the integer Bria\'s model reads',
    "score_label": "score label case, spacing or underscores normalised",
    "score_bucketed": "numeric aesthetic/preference score bucketed into its label with Bria's thresholds",
    "single_object_wrapped": "a single object where a list is expected wrapped in a list",
    "reformatted": "re-serialised as compact canonical JSON (spacing, escapes)",
}

# Errors: the caption is rejected (HTTP 400) and nothing is stored.
ERROR_RULES: dict[str, str] = {
    "empty_input": "the text is empty",
    "not_json": "no JSON object could be read from the text",
    "truncated": "the JSON ends before its brackets are closed",
    "multiple_objects": "the text holds several top-level JSON objects",
    "duplicate_key_conflict": "a key is given twice (or in two spellings) with different values",
    "not_an_object": "the JSON is not an object",
    "too_large": "the text is too large to repair",
    "too_deep": "the JSON is nested too deeply",
    "required": "a required key is missing or empty",
    "wrong_type": "a value has the wrong JSON type (e.g. a string where an object is required)",
    "invalid_choice": "a value is not one of the allowed labels",
    "out_of_range": "a whole number too large for Bria's model to read as an integer (1e20)",
    "empty_text": "a required text is blank",
    "unknown_key": "a key the schema does not allow",
    "schema": "any other schema violation",
    "unprocessable": "an unexpected internal failure (a bug; reported instead of raising)",
}

# Warnings: soft limits, the caption is still stored.
WARNING_RULES: dict[str, str] = {
    "unknown_key_dropped": REPAIR_RULES["unknown_key_dropped"],
    "edit_instruction_dropped": REPAIR_RULES["edit_instruction_dropped"],
    "objects_missing": "the caption has no objects list",
    "too_many_objects": "more objects than the x-fibo-maxItems guideline (5)",
    "too_many_words": "a text longer than its x-fibo-maxWords guideline",
    "token_limit": "the caption is near or over the text encoder's 3000-token limit",
    "captioner_artifact": "a known captioner artifact such as 'End of texture answer.'",
}


@dataclass(frozen=True)
class Correction:
    """A repair that was applied, e.g. rule="trailing_commas", path="caption"."""

    rule: str
    path: str
    detail: str


@dataclass(frozen=True)
class Problem:
    """An error or a warning; `message` is one sentence naming the JSON path, without a final period."""

    rule: str
    path: str
    message: str


@dataclass(frozen=True)
class CaptionCheck:
    valid: bool
    caption: str | None  # canonical compact JSON when valid, None otherwise
    corrections: list[Correction] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def corrected(self) -> bool:
        """True when the stored caption differs from the input text.

        The pipeline guarantees that a valid check has corrections exactly when its caption differs
        from the input, so this needs no copy of the input.
        """
        return self.valid and bool(self.corrections)

    def error_message(self) -> str:
        """One sentence for an HTTP 400 body; "" when the caption is valid."""
        if not self.errors:
            return ""
        first, rest = self.errors[0].message, [e.message for e in self.errors[1:]]
        if not rest:
            return f"{first}."
        shown = "; ".join(rest[:3]) + ("; …" if len(rest) > 3 else "")
        noun = "problem" if len(rest) == 1 else "problems"
        return f"{first} (and {len(rest)} more {noun}: {shown})."
