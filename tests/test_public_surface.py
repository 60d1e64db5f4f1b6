"""The public surface — tailorset.client, the captioner interface and its entry-point group, the command line —
written out as text and compared with tests/public_surface.txt. A change to it fails here until the snapshot is
regenerated on purpose (and the change is documented):

    TAILORSET_UPDATE_SURFACE=1 .venv/bin/pytest tests/test_public_surface.py
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import os
from pathlib import Path

from tailorset import cli

SNAPSHOT = Path(__file__).with_name("public_surface.txt")
MODULES = ("tailorset.client", "tailorset.captioners", "tailorset.captioners.registry", "tailorset.cli")


def _signature(function) -> str:
    try:
        return str(inspect.signature(function))
    except (TypeError, ValueError):
        return "(…)"


def _members(cls: type) -> list[str]:
    lines = []
    if dataclasses.is_dataclass(cls):
        lines += [f"    {field.name}: {field.type}" for field in dataclasses.fields(cls)]
    elif getattr(cls, "_is_protocol", False):  # a Protocol's attributes (typing.is_protocol from Python 3.13)
        lines += [f"    {name}: {kind}" for name, kind in cls.__annotations__.items()]
    protocol = getattr(cls, "_is_protocol", False)  # its __init__ is typing's, not the interface
    own = {name: value for name, value in vars(cls).items() if not name.startswith("_") or name == "__init__"}
    if protocol:
        own.pop("__init__", None)
    for name, value in sorted(own.items()):
        if isinstance(value, property):
            lines.append(f"    {name} (property)")
        elif isinstance(value, classmethod | staticmethod):
            lines.append(f"    {name}{_signature(value.__func__)} ({type(value).__name__})")
        elif inspect.isfunction(value) and not (dataclasses.is_dataclass(cls) and name == "__init__"):
            lines.append(f"    {name}{_signature(value)}")
    return lines


def _module(name: str) -> list[str]:
    module = importlib.import_module(name)
    lines = [f"module {name}"]
    for public in sorted(module.__all__):
        value = getattr(module, public)
        if inspect.isclass(value):
            bases = ", ".join(base.__name__ for base in value.__bases__ if base is not object)
            lines.append(f"  class {public}({bases})")
            lines += _members(value)
        elif inspect.isfunction(value):
            lines.append(f"  def {public}{_signature(value)}")
        else:
            lines.append(f"  {public} = {value!r}")
    return lines


def _commands(parser: argparse.ArgumentParser, path: str) -> list[str]:
    lines = [f"  {path}"]
    subcommands = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            subcommands += sorted(action.choices.items())
        elif not isinstance(action, argparse._HelpAction):
            name = "/".join(action.option_strings) or action.dest
            details = [f"{key}={value!r}" for key, value in (("default", action.default), ("choices", action.choices))
                       if value not in (None, False)]  # fmt: skip
            if action.type is not None:
                details.append(f"type={getattr(action.type, '__name__', action.type)}")
            if isinstance(action, argparse._StoreTrueAction):
                details.append("flag")
            elif isinstance(action, argparse._AppendAction):
                details.append("repeatable")
            if action.required and action.option_strings:
                details.append("required")
            if action.nargs not in (None, 0):
                details.append(f"nargs={action.nargs!r}")
            lines.append(f"    {name} {' '.join(details)}".rstrip())
    for name, sub in subcommands:
        lines += _commands(sub, f"{path} {name}")
    return lines


def surface() -> str:
    lines = []
    for name in MODULES:
        lines += _module(name)
    lines += ["command line", *_commands(cli.parser(), "tailorset")]
    return "\n".join(lines) + "\n"


def test_the_public_surface_is_the_snapshot():
    current = surface()
    if os.environ.get("TAILORSET_UPDATE_SURFACE"):
        SNAPSHOT.write_text(current)
    assert current == SNAPSHOT.read_text(), (
        "The public surface changed. If on purpose, regenerate tests/public_surface.txt "
        "(TAILORSET_UPDATE_SURFACE=1) and document the change."
    )


def test_public_modules_say_what_is_public():
    """Each public module lists its surface in __all__, and each name there is documented."""
    for name in MODULES:
        module = importlib.import_module(name)
        assert module.__doc__, name
        for public in module.__all__:
            value = getattr(module, public)
            if inspect.isclass(value) or inspect.isfunction(value):
                assert value.__doc__ and not value.__doc__.startswith(f"{public}("), f"{name}.{public} has no docstring"


def test_a_changed_surface_is_noticed(monkeypatch):
    """The check itself: a new client argument changes the text."""
    before = surface()
    from tailorset import client

    original = client.Client.image

    def image(self, dataset_id: int, image_id: int, include: str = "") -> client.Image:
        return original(self, dataset_id, image_id)

    monkeypatch.setattr(client.Client, "image", image)
    assert surface() != before
