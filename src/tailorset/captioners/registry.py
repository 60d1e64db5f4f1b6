"""Choose the captioner backend named by `TAILORSET_CAPTIONER`.

Built-in backends are listed here; a separate package can add one through the
`tailorset.captioners` entry-point group (name → a factory taking Settings)."""

from __future__ import annotations

import os
from importlib.metadata import entry_points

from tailorset.captioners.base import Captioner, CaptionerError
from tailorset.config import Settings

__all__ = ["ENTRY_POINT_GROUP", "load_captioner"]

# Where a separate package registers a captioner: name → a factory taking Settings and returning a Captioner.
ENTRY_POINT_GROUP = "tailorset.captioners"


def local(settings: Settings) -> Captioner:
    """The offline captioner: in a child process (process.py) unless TAILORSET_CAPTIONER_PROCESS=false, or where
    a child cannot be handed its sockets (process.py passes them as file descriptors: POSIX only)."""
    if settings.captioner_process and os.name == "posix":
        from tailorset.captioners import process

        return process.shared(settings.resolved_model_dir, settings.captioner_idle_seconds)
    from tailorset.captioners.local import LocalCaptioner

    return LocalCaptioner(cache_dir=settings.resolved_model_dir)


def _openai(settings: Settings) -> Captioner:
    from tailorset.captioners.openai import OpenAICaptioner

    return OpenAICaptioner.from_settings(settings)


def _transformers(settings: Settings) -> Captioner:
    from tailorset.captioners.transformers import TransformersCaptioner

    return TransformersCaptioner.from_settings(settings)


BUILTIN = {"local": local, "openai": _openai, "transformers": _transformers}


def load_captioner(settings: Settings) -> Captioner:
    """The captioner TAILORSET_CAPTIONER names: built in, or from ENTRY_POINT_GROUP."""
    name = settings.captioner
    factory = BUILTIN.get(name)
    if factory is None:
        plugins = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
        if name not in plugins:
            known = ", ".join(sorted({*BUILTIN, *plugins}))
            raise CaptionerError(f"Unknown captioner {name!r}; available: {known}.")
        factory = plugins[name].load()
    return factory(settings)
