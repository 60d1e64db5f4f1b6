"""FIBO caption checks against the floor of Bria's own pydantic model, on the three fixture captions.

For each caption (tests/fibo/data, 2-2.6 KB in canonical form) prints the time per call of
  (a) the floor: bria-vgl's pydantic model (ThalesVGL, the FIBO dialect) validating the same JSON text,
  (b) check_caption on the canonical caption: the fast check (fibo/fast.py),
  (c) check_caption on the same caption with typical faults (code fence, trailing commas, single quotes,
      wrong key order, number_of_objects as "2"): the repair path,
and the ratio (b)/(a). The calls take turns and each keeps its best of many runs, so that load from other
processes hits them alike. The last line holds the ratios (goal: at most 2).

bria-vgl is a test dependency (pip install -e '.[test]'); it is imported with LiteLLM's local model list,
so that nothing reaches for the network. Run from the repo root: `python bench/fibo_validate.py`.
"""

from __future__ import annotations

import json
import os
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # bria_vgl imports LiteLLM, which would fetch it

from bria_vgl.dialects.thales.model import ThalesVGL  # noqa: E402

from tailorset.fibo import canonical_json, check_caption  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "tests" / "fibo" / "data"
MAX_RATIO = 2.0


def faulty(obj: dict) -> str:
    messy = dict(reversed(list(obj.items())))  # wrong key order
    messy["objects"] = [
        dict(o, number_of_objects=str(o["number_of_objects"])) if "number_of_objects" in o else o
        for o in obj["objects"]
    ]
    body = repr(messy).replace("}", ", }")  # single quotes (a Python dict) and trailing commas
    return f"Here is the caption:\n```json\n{body}\n```"


def best_per_call(cases: dict[str, Callable[[], object]], number: int, repeat: int = 25) -> dict[str, float]:
    """Best-of-`repeat` seconds per call, the cases taking turns."""
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(repeat):
        for name, fn in cases.items():
            best[name] = min(best[name], timeit.timeit(fn, number=number) / number)
    return best


def main() -> int:
    ratios = {}
    for path in sorted(DATA.glob("*.json")):
        obj = json.loads(path.read_text("utf-8"))
        canonical, messy = canonical_json(obj), faulty(obj)
        ThalesVGL.model_validate_json(canonical)  # the floor accepts it too
        fast, repaired = check_caption(canonical), check_caption(messy)
        assert fast.valid and fast.caption == canonical and not fast.corrections and not fast.warnings
        assert repaired.valid and repaired.caption == canonical, repaired.errors
        t = best_per_call(
            {
                "a": lambda text=canonical: ThalesVGL.model_validate_json(text),
                "b": lambda text=canonical: check_caption(text),
                "c": lambda text=messy: check_caption(text),
            },
            number=300,
        )
        ratios[path.stem] = t["b"] / t["a"]
        escapes = 'with \\u escapes and \\" (slower to compare)' if "\\" in canonical else "no escapes"
        print(f"{path.stem}: {len(canonical)} bytes canonical, {escapes}")
        print(f"  (a) floor: bria-vgl ThalesVGL.model_validate_json {t['a'] * 1e6:7.1f} µs")
        print(f"  (b) check_caption, canonical (fast check)          {t['b'] * 1e6:7.1f} µs   {t['b'] / t['a']:.2f}x")
        print(f"  (c) check_caption, faulty (repair path)            {t['c'] * 1e6:7.1f} µs")
    figures = ", ".join(f"{name} {ratio:.2f}" for name, ratio in ratios.items())
    print(f"FIBO check of a valid caption vs bria-vgl's pydantic model (goal ≤ {MAX_RATIO:g}x): {figures}")
    return 0 if max(ratios.values()) <= MAX_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
