"""Write src/tailorset/captioners/imagenet_hierarchy.txt: the WordNet hypernyms of the ImageNet-1k classes that
a caption may name when no finer class is sure ("a dog" for the 118 breeds, "an animal", "a vehicle", "food").

ImageNet class ids are WordNet 3.0 noun synsets. The inputs come from registry packages with their ordinary
clients, at pinned versions:
- the WordNet 3.0 database, `data.noun` in Debian's `wordnet-base` (WordNet licence, permissive; apt-get download);
- the ordered list of the 1000 class synsets, `timm/data/_info/imagenet_synsets.txt` in the `timm` wheel
  (Apache-2.0; pip download). Its order is the classifier's output order (line 1 = n01440764, tench).

Which hypernyms are nameable, and with what words, is decided here (NAMEABLE): a caption noun a person would
use, not WordNet's "placental" or "instrumentality". Which classes fall under each is WordNet's: every class
whose hypernym closure (through all parents; WordNet has a few classes with two) contains the synset. COCO
classes of the object detector are placed the same way (COCO_SYNSETS), so the detector's "horse" supports
the classifier's "animal".

Run from the repo root: `python tools/imagenet_hierarchy.py` (downloads both packages into a temporary
directory), or pass `--wordnet wordnet-base_*.deb --timm timm-*.whl`. The output is deterministic.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "src" / "tailorset" / "captioners" / "imagenet_hierarchy.txt"
WORDNET = ("wordnet-base", "1:3.0-37")
TIMM = ("timm", "1.0.31")

# synset: (phrase, kind). kind as in imagenet_groups.txt: thing (default) or scene (a place, said as the setting).
# "a+b": one caption noun for the classes under either synset (WordNet files shops and dwellings apart from
# buildings, and buses and trains apart from vehicles, but a caption does not).
NAMEABLE = {
    # animals
    "n00015388": ("an animal", "thing"),
    "n01503061": ("a bird", "thing"),
    "n01844917": ("a water bird", "thing"),
    "n01604330": ("a bird of prey", "thing"),
    "n01816887": ("a parrot", "thing"),
    "n02512053": ("a fish", "thing"),
    "n01661091": ("a reptile", "thing"),
    "n01726692": ("a snake", "thing"),
    "n01674464": ("a lizard", "thing"),
    "n01662784": ("a turtle", "thing"),
    "n01627424": ("an amphibian", "thing"),
    "n02159955": ("an insect", "thing"),
    "n02164464": ("a beetle", "thing"),
    "n02274259": ("a butterfly", "thing"),
    "n01772222": ("a spider", "thing"),
    "n01974773": ("a crustacean", "thing"),
    "n01940736": ("a mollusc", "thing"),
    "n01861778": ("a mammal", "thing"),
    "n02084071": ("a dog", "thing"),
    "n02114100": ("a wolf", "thing"),
    "n02118333": ("a fox", "thing"),
    "n02120997": ("a cat", "thing"),
    "n02121808": ("a cat", "thing"),
    "n02127808": ("a big cat", "thing"),
    "n02131653": ("a bear", "thing"),
    "n02329401": ("a rodent", "thing"),
    "n02469914": ("a primate", "thing"),
    "n02484322": ("a monkey", "thing"),
    "n02470325": ("an ape", "thing"),
    "n02062017": ("a marine mammal", "thing"),
    "n02370806": ("a hoofed animal", "thing"),
    # vehicles
    "n04524313+n04019101": ("a vehicle", "thing"),  # vehicle, public transport (WordNet's buses and trains)
    "n02958343": ("a car", "thing"),
    "n04490091": ("a truck", "thing"),
    "n04530566": ("a boat", "thing"),
    "n04194289": ("a ship", "thing"),
    "n02686568": ("an aircraft", "thing"),
    # food and plants
    "n00021265": ("food", "thing"),
    "n07557434": ("a dish of food", "thing"),
    "n07707451": ("a vegetable", "thing"),
    "n07705931": ("fruit", "thing"),
    "n12992868": ("a mushroom", "thing"),
    "n11669921": ("a flower", "thing"),
    # objects
    "n03405725": ("furniture", "thing"),
    "n04161981": ("a seat", "thing"),
    "n03001627": ("a chair", "thing"),
    "n03800933": ("a musical instrument", "thing"),
    "n03082979": ("a computer", "thing"),
    "n04437953": ("a timepiece", "thing"),
    "n02876657": ("a bottle", "thing"),
    "n02778669": ("a ball", "thing"),
    "n02773037": ("a bag", "thing"),
    "n02883344": ("a box", "thing"),
    "n03380867": ("footwear", "thing"),
    "n04565375": ("a weapon", "thing"),
    "n04451818": ("a tool", "thing"),
    "n03309808": ("fabric", "thing"),
    "n03528263": ("a household appliance", "thing"),
    # places
    "n02913152+n03297735+n03546340": ("a building", "scene"),  # building, establishment (shops), housing
    "n09287968": ("a landscape", "scene"),
}

# ImageNet classes whose photos are not the thing their synset's hypernyms say: a "web site" is a screenshot,
# not a computer (WordNet: "a computer connected to the internet"); a "menu" is a printed card, not food.
# They count towards no hypernym.
EXCLUDED = {"n06359193", "n07565083"}

# The detector's COCO classes that have a synset at or below a nameable one (the rest support nothing here).
COCO_SYNSETS = {
    "bird": "n01503061", "cat": "n02121808", "dog": "n02084071", "horse": "n02374451",
    "sheep": "n02411705", "cow": "n02403454", "elephant": "n02503517", "bear": "n02131653",
    "zebra": "n02391049", "giraffe": "n02439033",
    "bicycle": "n02834778", "car": "n02958343", "motorcycle": "n03790512", "airplane": "n02691156",
    "bus": "n02924116", "train": "n04468005", "truck": "n04490091", "boat": "n02858304",
    "banana": "n07753592", "apple": "n07739125", "orange": "n07747607", "broccoli": "n07714990",
    "carrot": "n07730207", "hot dog": "n07697537", "pizza": "n07873807", "donut": "n07639069",
    "sandwich": "n07695965", "chair": "n03001627", "couch": "n04256520", "bed": "n02818832",
    "dining table": "n03201208", "bottle": "n02876657", "sports ball": "n02778669", "clock": "n03046257",
    "backpack": "n02769748", "handbag": "n02774152", "suitcase": "n02773838",
}  # fmt: skip


def read_wordnet(data_noun: str) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Each noun synset's hypernyms (@ and @i pointers) and first lemma, from WordNet's data.noun."""
    parents: dict[str, list[str]] = {}
    lemma: dict[str, str] = {}
    for line in data_noun.splitlines():
        if line.startswith("  "):  # the licence header
            continue
        fields = line.split()
        synset, words = "n" + fields[0], int(fields[3], 16)
        lemma[synset] = fields[4]
        at = 4 + 2 * words
        pointers = int(fields[at])
        ups = []
        for p in range(pointers):
            symbol, offset, pos = fields[at + 1 + 4 * p : at + 4 + 4 * p]
            if symbol in ("@", "@i") and pos == "n":
                ups.append("n" + offset)
        parents[synset] = ups
    return parents, lemma


def closure(synset: str, parents: dict[str, list[str]]) -> set[str]:
    """The synset and every hypernym above it, through all parents."""
    seen, todo = {synset}, [synset]
    while todo:
        for up in parents[todo.pop()]:
            if up not in seen:
                seen.add(up)
                todo.append(up)
    return seen


def ranges(indices: list[int]) -> str:
    out, start = [], None
    for i, index in enumerate(indices):
        if start is None:
            start = index
        if i + 1 == len(indices) or indices[i + 1] != index + 1:
            out.append(str(start) if start == index else f"{start}-{index}")
            start = None
    return " ".join(out)


def hierarchy(data_noun: str, synsets: list[str]) -> str:
    parents, lemma = read_wordnet(data_noun)
    if len(synsets) != 1000 or len(set(synsets)) != 1000:
        raise SystemExit("expected 1000 distinct ImageNet synsets")
    for synset in [*(s for key in NAMEABLE for s in key.split("+")), *COCO_SYNSETS.values(), *EXCLUDED, *synsets]:
        if synset not in parents:
            raise SystemExit(f"{synset} is not a WordNet 3.0 noun synset")
    above = [set() if s in EXCLUDED else closure(s, parents) for s in synsets]
    coco_above = {name: closure(s, parents) for name, s in COCO_SYNSETS.items()}
    lines = [
        "# Generated by tools/imagenet_hierarchy.py from WordNet 3.0 (Debian wordnet-base "
        f"{WORDNET[1]}) and the ImageNet-1k synset order of timm {TIMM[1]}; do not edit by hand.",
        "# One nameable WordNet hypernym a line: synset(s) | phrase | kind | ImageNet-1k class indices under it",
        "# (counted from 0, a-b ranges) | COCO detector classes under it. Its probability is the sum over its classes.",
    ]
    for key, (phrase, kind) in NAMEABLE.items():
        union = set(key.split("+"))
        indices = [i for i, up in enumerate(above) if union & up]
        if not indices:
            raise SystemExit(f"no ImageNet class lies under {key} ({lemma[key.split('+')[0]]})")
        coco = sorted(name for name, up in coco_above.items() if union & up)
        lines.append(f"{key} | {phrase} | {kind} | {ranges(indices)} | {', '.join(coco)}")
    return "\n".join(lines) + "\n"


def _download(where: Path) -> tuple[Path, Path]:
    subprocess.run(["apt-get", "download", "--quiet", f"{WORDNET[0]}={WORDNET[1]}"], cwd=where, check=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
    subprocess.run([*command, "--dest", str(where), f"{TIMM[0]}=={TIMM[1]}"], check=True)
    return next(where.glob("wordnet-base_*.deb")), next(where.glob("timm-*.whl"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet", type=Path, help="the wordnet-base .deb (default: apt-get download it)")
    parser.add_argument("--timm", type=Path, help="the timm wheel (default: pip download it)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        deb, wheel = (args.wordnet, args.timm) if args.wordnet and args.timm else _download(Path(tmp))
        data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(data)) as tarball:
            data_noun = tarball.extractfile("./usr/share/wordnet/data.noun").read().decode("latin-1")
        with zipfile.ZipFile(wheel) as archive:
            synsets = archive.read("timm/data/_info/imagenet_synsets.txt").decode().split()
    args.output.write_text(hierarchy(data_noun, synsets))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
