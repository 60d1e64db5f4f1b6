"""How many tokens of a caption the text encoder that reads it sees, against how many it reads.

CLIP (Bria 2.3, and the max and light versions built on it) is counted exactly: this is CLIP's byte-level
BPE, written here from its published description, over OpenAI's own vocabulary, which the `openai-clip`
package ships (we read only that data file: the package's code needs torch, ours does not). T5 (Bria 3.x)
and SmolLM3 (FIBO's text encoder in Bria's fine-tuning code, `max_sequence_length` 3000) ship no
vocabulary in any registry package we can install, so their counts are estimates, and say so."""

from __future__ import annotations

import functools
import gzip
import html
import itertools
import math
from dataclasses import dataclass
from importlib.metadata import distribution

import ftfy
import regex

from tailorset.domain.lifecycle import FIBO
from tailorset.fibo.check import CHARS_PER_TOKEN
from tailorset.fibo.schema import MAX_TOKENS as FIBO_MAX_TOKENS

CLIP_CONTEXT = 77  # tokens CLIP reads, its start and end tokens included
CLIP_MERGES = 49152 - 256 - 2  # the vocabulary file holds more merges than the model's vocabulary uses
# CLIP's pre-tokenizer: contractions, runs of letters, single digits, runs of other symbols.
_WORDS = regex.compile(
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+", regex.IGNORECASE
)


def _byte_symbols() -> list[str]:
    """The printable character standing for each byte (GPT-2's trick, which CLIP shares): bytes that are
    printable stand for themselves; the others are mapped past 255, so no symbol is whitespace or a control."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    symbols, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            symbols[byte] = chr(byte)
        else:
            symbols[byte] = chr(256 + extra)
            extra += 1
    return [symbols[byte] for byte in range(256)]


class ClipTokenizer:
    """CLIP's tokenizer: ftfy and HTML unescaping, lower case, its pre-tokenizer, then BPE merges by rank."""

    def __init__(self, merges: list[tuple[str, str]]):
        self._symbols = _byte_symbols()
        self._ranks = {pair: rank for rank, pair in enumerate(merges)}
        ordered = sorted(self._symbols, key=ord)  # the vocabulary lists the printable bytes' symbols first
        vocabulary = [*ordered, *(s + "</w>" for s in ordered), *("".join(pair) for pair in merges)]
        vocabulary += ["<|startoftext|>", "<|endoftext|>"]
        self._ids = {piece: index for index, piece in enumerate(vocabulary)}
        self.start, self.end = self._ids["<|startoftext|>"], self._ids["<|endoftext|>"]
        self._pieces = functools.lru_cache(maxsize=50_000)(self._bpe)

    @classmethod
    @functools.cache
    def load(cls) -> ClipTokenizer:
        path = distribution("openai-clip").locate_file("clip/bpe_simple_vocab_16e6.txt.gz")
        lines = gzip.decompress(path.read_bytes()).decode("utf-8").split("\n")
        return cls([tuple(line.split()) for line in lines[1 : CLIP_MERGES + 1]])

    def encode(self, text: str) -> list[int]:
        """Token ids, without the start and end tokens."""
        text = " ".join(html.unescape(html.unescape(ftfy.fix_text(text))).split()).lower()
        ids = []
        for word in _WORDS.findall(text):
            ids.extend(self._ids[piece] for piece in self._pieces("".join(self._symbols[b] for b in word.encode())))
        return ids

    def count(self, text: str) -> int:
        """Tokens CLIP sees, its start and end tokens included (compare with CLIP_CONTEXT)."""
        return len(self.encode(text)) + 2

    def _bpe(self, word: str) -> tuple[str, ...]:
        if word in ("<|startoftext|>", "<|endoftext|>"):
            return (word,)
        parts = [*word[:-1], word[-1] + "</w>"]
        while len(parts) > 1:
            best = min(itertools.pairwise(parts), key=lambda pair: self._ranks.get(pair, math.inf))
            if best not in self._ranks:
                break
            first, second = best
            merged, i = [], 0
            while i < len(parts):  # merge every occurrence of the best pair, left to right
                if i < len(parts) - 1 and parts[i] == first and parts[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return tuple(parts)


@dataclass(frozen=True)
class TextEncoder:
    name: str
    limit: int  # the tokens it reads; the rest of a longer caption is cut off, silently, in training
    exact: bool  # counted with its real tokenizer, or estimated from the length

    def count(self, text: str) -> int:
        if self.exact:
            return ClipTokenizer.load().count(text)
        return math.ceil(len(text) / CHARS_PER_TOKEN) + 1  # the end token

    def as_dict(self) -> dict:
        return {"name": self.name, "limit": self.limit, "exact": self.exact}


CLIP = TextEncoder("CLIP", CLIP_CONTEXT, exact=True)
T5 = TextEncoder("T5", 512, exact=False)
SMOLLM3 = TextEncoder("SmolLM3", FIBO_MAX_TOKENS, exact=False)
ENCODERS = {"max": CLIP, "light": CLIP, "2.3": CLIP, "3.2": T5, FIBO: SMOLLM3}


def for_version(training_version: str) -> TextEncoder:
    """The text encoder a dataset's training version reads its captions with."""
    return ENCODERS.get(training_version, CLIP)
