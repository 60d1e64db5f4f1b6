"""The `transformers` captioner: a local Hugging Face model directory (BLIP, GIT, Florence-2, Qwen-VL, LLaVA…).

`TAILORSET_CAPTIONER_MODEL` is the path of a model directory (config.json, weights, processor files), e.g.
one written by `save_pretrained` or `huggingface-cli download … --local-dir`. Nothing is ever downloaded:
every `from_pretrained` runs with `local_files_only=True`. `transformers` is an optional extra
(`pip install 'tailorset[transformers]'`) imported only when the model is first loaded.

Three kinds of model are told apart after loading:
- chat VLMs (the processor has a chat template: Qwen-VL, LLaVA, SmolVLM, Gemma 3…) get the same prompts
  as the openai captioner; for FIBO they are asked for JSON, and the answer is used if it validates;
- Florence-2 gets its <DETAILED_CAPTION> / <MORE_DETAILED_CAPTION> task prompts;
- plain captioners (BLIP, GIT, ViT-GPT2…) caption the image unconditionally.
A FIBO caption that is not the model's own valid JSON is built around the model's sentence: the sentence
becomes short_description and every field the model said nothing about reads "not determined", so the
caption is schema-valid without claiming what nobody measured.

Loading happens once, lazily, on the GPU when `torch.cuda.is_available()`; one lock serialises loading
and generation, so the instance is safe to call from several threads.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from tailorset.captioners.base import CaptionContext, CaptionerError
from tailorset.captioners.prompts import (
    FIBO_USER_PROMPT,
    LEGACY_SYSTEM_PROMPT,
    MAX_PIXELS,
    clean_caption_text,
    continue_prefix,
    fibo_system_prompt,
    legacy_user_prompt,
    prepare_image,
    refine_system_prompt,
    refine_user_prompt,
)
from tailorset.fibo import canonical_json, check_caption, check_visual_schema

if TYPE_CHECKING:
    from tailorset.config import Settings

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'tailorset[transformers]'"
# Tried in order; the first whose mapping knows the model's config class loads it. transformers 5 folds
# Vision2Seq into ImageTextToText; 4.x still has both.
MODEL_CLASSES = ("AutoModelForImageTextToText", "AutoModelForVision2Seq", "AutoModelForCausalLM")
LEGACY_MAX_NEW_TOKENS = 120
FIBO_MAX_NEW_TOKENS = 2048
DETAILED_MAX_NEW_TOKENS = 512  # a paragraph from a plain captioner, for a FIBO short_description
NOT_DETERMINED = "not determined"
CHAT, FLORENCE, PLAIN = "chat", "florence", "plain"


def check_model_dir(path: str | Path) -> Path:
    """The model directory, or a CaptionerError saying exactly what is wrong with `path`."""
    where = Path(path).expanduser()
    setting = "TAILORSET_CAPTIONER_MODEL"
    try:
        if not where.exists():
            raise CaptionerError(
                f"The transformers captioner's model directory {where} does not exist: set {setting} to the path "
                "of a local model directory (models are never downloaded)."
            )
        if not where.is_dir():
            raise CaptionerError(
                f"The transformers captioner's model path {where} is a file, not a directory: set {setting} "
                "to the folder that holds config.json."
            )
        if not (where / "config.json").is_file():
            raise CaptionerError(
                f"The transformers captioner's model directory {where} has no config.json: it is not a Hugging Face "
                "model directory (write one with save_pretrained, or huggingface-cli download … --local-dir)."
            )
    except OSError as exc:
        raise CaptionerError(f"The transformers captioner cannot read its model directory {where}: {exc}.") from exc
    return where


def transformers_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("transformers", "torch"))


def _missing_extra(missing: str | None = None) -> CaptionerError:
    what = f" ({missing} is not installed)" if missing else ""
    return CaptionerError(
        f"The transformers captioner needs the optional Hugging Face dependencies{what}: {INSTALL_HINT}."
    )


def caption_from_sentence(sentence: str) -> str:
    """A schema-valid FIBO caption around one sentence from a plain captioning model, in canonical form.

    Only short_description carries information; the required fields the model did not describe say so
    ("not determined") rather than guess.
    """
    text = clean_caption_text(sentence)
    if not text:
        raise CaptionerError("The transformers captioner's model wrote an empty caption.")
    text = text[0].upper() + text[1:]
    if text[-1] not in ".!?":
        text += "."
    return canonical_json(
        {
            "short_description": text,
            "background_setting": NOT_DETERMINED,
            "lighting": {"conditions": NOT_DETERMINED, "direction": NOT_DETERMINED},
            "aesthetics": {
                "composition": NOT_DETERMINED,
                "color_scheme": NOT_DETERMINED,
                "mood_atmosphere": NOT_DETERMINED,
            },
            "context": NOT_DETERMINED,
        }
    )


@dataclass
class _Loaded:
    torch: Any
    model: Any
    processor: Any
    tokenizer: Any
    device: str
    dtype: Any
    kind: str  # CHAT | FLORENCE | PLAIN


class TransformersCaptioner:
    """Captions with a local Hugging Face model directory."""

    name = "transformers"

    def __init__(
        self,
        model_path: str | Path,
        *,
        device: str | None = None,
        trust_remote_code: bool = False,
        legacy_max_new_tokens: int = LEGACY_MAX_NEW_TOKENS,
        fibo_max_new_tokens: int = FIBO_MAX_NEW_TOKENS,
        max_pixels: int = MAX_PIXELS,
    ) -> None:
        self.model_path = check_model_dir(model_path)
        self.device = device
        # Off by default: it runs Python code shipped in the model directory (Florence-2's original repos,
        # some Qwen-VL and MiniCPM checkpoints). Models natively supported by transformers don't need it.
        self.trust_remote_code = trust_remote_code
        self.legacy_max_new_tokens = legacy_max_new_tokens
        self.fibo_max_new_tokens = fibo_max_new_tokens
        self.max_pixels = max_pixels
        self._lock = threading.Lock()
        self._loaded: _Loaded | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> TransformersCaptioner:
        if not settings.captioner_model:
            raise CaptionerError(
                "The transformers captioner needs a local model directory: set TAILORSET_CAPTIONER_MODEL to its path."
            )
        captioner = cls(settings.captioner_model)
        if not transformers_installed():  # fail at start-up, not at the first image
            raise _missing_extra()
        return captioner

    def __repr__(self) -> str:
        return f"TransformersCaptioner(model_path={str(self.model_path)!r})"

    # -- loading --

    def load(self) -> None:
        """Load the model now (it otherwise loads on the first caption); idempotent."""
        with self._lock:
            self._ensure_loaded()

    def _ensure_loaded(self) -> _Loaded:
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    def _load(self) -> _Loaded:
        path = check_model_dir(self.model_path)  # it may have changed since start-up
        try:  # transformers first: without it, there is no point in paying for torch's import
            transformers = importlib.import_module("transformers")
            torch = importlib.import_module("torch")
        except ImportError as exc:
            raise _missing_extra(exc.name) from exc
        try:
            config = json.loads((path / "config.json").read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise CaptionerError(f"The transformers captioner cannot read {path / 'config.json'}: {exc}.") from exc
        model_type = str(config.get("model_type") or "") if isinstance(config, dict) else ""

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        if device.startswith("cuda"):
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dtype = torch.float32
        options = {"local_files_only": True, "trust_remote_code": self.trust_remote_code}

        try:
            processor = transformers.AutoProcessor.from_pretrained(path, **options)
        except Exception as exc:
            raise self._load_error("its processor", exc) from exc
        tokenizer = getattr(processor, "tokenizer", None)
        if tokenizer is None and hasattr(processor, "batch_decode"):
            tokenizer = processor  # AutoProcessor gave the tokenizer itself
        if tokenizer is None:  # e.g. ViT-GPT2: AutoProcessor returns only the image processor
            try:
                tokenizer = transformers.AutoTokenizer.from_pretrained(path, **options)
            except Exception as exc:
                raise self._load_error("its tokenizer", exc) from exc

        model = self._load_model(transformers, path, dtype, options)
        try:
            model.to(device)
        except Exception as exc:
            raise self._load_error(f"the model onto {device}", exc) from exc
        model.eval()

        if model_type.startswith("florence"):
            kind = FLORENCE
        elif getattr(processor, "chat_template", None) or (
            getattr(tokenizer, "chat_template", None) and hasattr(processor, "apply_chat_template")
        ):
            kind = CHAT
        else:
            kind = PLAIN
        logger.info("Loaded %s (%s, %s model) on %s.", path, type(model).__name__, kind, device)
        return _Loaded(torch, model, processor, tokenizer, device, dtype, kind)

    def _load_model(self, transformers: Any, path: Path, dtype: Any, options: dict[str, Any]) -> Any:
        dtype_key = "dtype" if _version_at_least(transformers.__version__, (4, 56)) else "torch_dtype"
        tried = []
        for class_name in MODEL_CLASSES:
            auto = getattr(transformers, class_name, None)
            if auto is None:
                continue
            tried.append(class_name)
            try:
                return auto.from_pretrained(path, **{dtype_key: dtype}, **options)
            except ValueError as exc:
                if "Unrecognized configuration class" in str(exc):
                    continue  # not this auto class's kind of model
                raise self._load_error("the model", exc) from exc
            except Exception as exc:
                raise self._load_error("the model", exc) from exc
        raise CaptionerError(
            f"The transformers captioner cannot load {path}: {', '.join(tried)} do not know its model type; "
            "use an image-to-text or image-text-to-text model (BLIP, GIT, Florence-2, Qwen-VL, LLaVA…)."
        )

    def _load_error(self, what: str, exc: Exception) -> CaptionerError:
        detail = " ".join(str(exc).split())[:300].rstrip(".")
        hint = ""
        if "trust_remote_code" in detail:
            hint = " The model needs its own Python code, which this captioner does not run."
        return CaptionerError(
            f"The transformers captioner could not load {what} from {self.model_path} "
            f"({type(exc).__name__}: {detail}).{hint}"
        )

    # -- captioning --

    def caption(self, image: Image.Image, context: CaptionContext) -> str:
        picture = prepare_image(image, self.max_pixels)
        with self._lock:
            loaded = self._ensure_loaded()
            try:
                if context.wants_json:
                    return self._fibo(loaded, picture, context)
                return self._legacy(loaded, picture, context)
            except CaptionerError:
                raise
            except Exception as exc:  # a generate() failure: out of memory, an incompatible processor…
                detail = " ".join(str(exc).split())[:300].rstrip(".")
                raise CaptionerError(
                    f"The transformers captioner's model {self.model_path} failed to caption the image "
                    f"({type(exc).__name__}: {detail})."
                ) from exc

    def _legacy(self, loaded: _Loaded, image: Image.Image, context: CaptionContext) -> str:
        if loaded.kind == CHAT:
            prompt = f"{LEGACY_SYSTEM_PROMPT}\n\n{legacy_user_prompt(context.caption_prefix)}"
            said = self._chat(loaded, image, prompt, self.legacy_max_new_tokens)
        else:
            said = self._describe(loaded, image, "<DETAILED_CAPTION>", self.legacy_max_new_tokens)
        caption = continue_prefix(context.caption_prefix, clean_caption_text(said))
        if not caption:
            raise CaptionerError(f"The transformers captioner's model {self.model_path} wrote an empty caption.")
        return caption

    def _fibo(self, loaded: _Loaded, image: Image.Image, context: CaptionContext) -> str:
        if loaded.kind == CHAT:
            prompt = f"{fibo_system_prompt(context.visual_schema)}\n\n{FIBO_USER_PROMPT}"
            said = self._chat(loaded, image, prompt, self.fibo_max_new_tokens)
            check = check_caption(said)
            if check.valid and check.caption is not None:
                return check.caption
            logger.info(
                "%s wrote no valid FIBO JSON (%s); building the caption from a plain description.",
                self.model_path,
                check.error_message(),
            )
            said = self._chat(loaded, image, f"{LEGACY_SYSTEM_PROMPT}\n\n{legacy_user_prompt(None)}", 200)
        else:
            said = self._describe(loaded, image, "<MORE_DETAILED_CAPTION>", DETAILED_MAX_NEW_TOKENS)
        return caption_from_sentence(said)

    def refine(self, structured_prompt: str, instruction: str, images: list[Image.Image], *, caption: bool) -> str:
        """A FIBO caption (`caption`) or a visual_schema changed as `instruction` says, checked as its kind."""
        prompt = f"{refine_system_prompt(caption)}\n\n{refine_user_prompt(structured_prompt, instruction)}"
        with self._lock:
            loaded = self._ensure_loaded()
            if loaded.kind != CHAT:
                raise CaptionerError(
                    f"The transformers captioner's model {self.model_path} only describes images, so it cannot "
                    "follow an instruction: set TAILORSET_CAPTIONER_MODEL to a chat model (Qwen-VL, LLaVA…)."
                )
            picture = prepare_image(images[0], self.max_pixels) if images else None
            said = self._chat(loaded, picture, prompt, self.fibo_max_new_tokens)
        checked = (check_caption if caption else check_visual_schema)(said)
        if not checked.valid or checked.caption is None:
            raise CaptionerError(
                f"The transformers captioner's model {self.model_path} did not answer with valid JSON: "
                f"{checked.error_message().rstrip('.')}."
            )
        return checked.caption

    # -- generation --

    def _generate(self, loaded: _Loaded, inputs: Any, max_new_tokens: int) -> Any:
        torch = loaded.torch
        inputs = inputs.to(loaded.device)
        for key, value in list(inputs.items()):
            if torch.is_tensor(value) and torch.is_floating_point(value):
                inputs[key] = value.to(loaded.dtype)
        with torch.inference_mode():
            output = loaded.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
        prompt_ids = inputs.get("input_ids")
        encoder_decoder = getattr(loaded.model.config, "is_encoder_decoder", False)
        if prompt_ids is None or encoder_decoder or output.shape[1] < prompt_ids.shape[1]:
            return output
        if torch.equal(output[:, : prompt_ids.shape[1]], prompt_ids.to(output.device)):
            output = output[:, prompt_ids.shape[1] :]  # decoder-only: the prompt comes back first
        return output

    def _decode(self, loaded: _Loaded, tokens: Any, skip_special_tokens: bool = True) -> str:
        decoder = loaded.processor if hasattr(loaded.processor, "batch_decode") else loaded.tokenizer
        return decoder.batch_decode(tokens, skip_special_tokens=skip_special_tokens)[0].strip()

    def _chat(self, loaded: _Loaded, image: Image.Image | None, prompt: str, max_new_tokens: int) -> str:
        content = [{"type": "image"}] if image is not None else []
        messages = [{"role": "user", "content": [*content, {"type": "text", "text": prompt}]}]
        templater = loaded.processor if hasattr(loaded.processor, "apply_chat_template") else loaded.tokenizer
        text = templater.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        pictures = {"images": [image]} if image is not None else {}
        inputs = loaded.processor(text=[text], **pictures, return_tensors="pt")
        return self._decode(loaded, self._generate(loaded, inputs, max_new_tokens))

    def _describe(self, loaded: _Loaded, image: Image.Image, florence_task: str, max_new_tokens: int) -> str:
        """One caption from a Florence-2 task prompt or a plain (unconditional) captioning model."""
        if loaded.kind == FLORENCE:
            inputs = loaded.processor(text=florence_task, images=image, return_tensors="pt")
            tokens = self._generate(loaded, inputs, max_new_tokens)
            raw = self._decode(loaded, tokens, skip_special_tokens=False)
            post = getattr(loaded.processor, "post_process_generation", None)
            if post is not None:
                parsed = post(raw, task=florence_task, image_size=image.size)
                if isinstance(parsed, dict) and isinstance(parsed.get(florence_task), str):
                    return parsed[florence_task]
            return self._decode(loaded, tokens)
        if hasattr(loaded.processor, "image_processor") or hasattr(loaded.processor, "tokenizer"):
            inputs = loaded.processor(images=image, return_tensors="pt")
        else:  # AutoProcessor gave the image processor itself
            inputs = loaded.processor(image, return_tensors="pt")
        return self._decode(loaded, self._generate(loaded, inputs, max_new_tokens))


def _version_at_least(version: str, minimum: tuple[int, ...]) -> bool:
    parts = []
    for piece in version.split(".")[: len(minimum)]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts) >= minimum
