"""What the local captioner may name, and how sure it is: the classifier, the object detector, the face
detector and the scene classifier weighed against each other. Pure functions, no models.

Each candidate subject gets a confidence in 0..1 from the evidence behind it:
- agreement raises it: independent signals for the same thing combine as 1 - (1 - a)(1 - b)
  (the classifier's "dog" and the detector's dog; a detected person with a face inside the box);
- disagreement lowers it: the classifier says "dog" while the detector sees a horse;
- a signal known to be fooled in a given way is discounted (a "person" box covering the whole frame
  with no face in it: the detector's usual false hit on busy textures; the face and "person" box of a mask
  the classifier is sure of: the mask's own).
The best candidate is named only at NAME_MIN or above (calibrated on the evaluation set,
bench/caption_quality.py). Below that, a coarser but right noun may still be sure enough: the classifier's
probability summed over a WordNet hypernym ("a dog" over 118 breeds, "an animal", "a vehicle", "a landscape";
imagenet.hypernyms), weighed against the detections the same way, names the most specific hypernym that
reaches COARSE_MIN. A worn item the classifier is sure of is named alone ("a mask") where no person is sure.
Where no thing, animal or person can be named, the scene classifier (Places365) may name the place ("a canyon",
"a stadium", "the sky"), backed by the classifier's "a landscape" or "a building" where it sees one (_scene), at
SCENE_MIN.
Below all of these the caption says what is visible without naming a thing.
A candidate that passes those thresholds is still written into the caption only at CAPTION_MIN: below it, the
captioner was right about three times in four on the evaluation set, too seldom to teach a model. Such a
subject is withheld (kind "withheld"): the caption names nothing, the guess stays in the caption's signals
for whoever reviews it, and no texture or silhouette is said instead, since the models did see a thing.
Detected objects other than the subject are listed (FIBO `objects`) at OBJECT_MIN.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from tailorset.captioners.detector import Detection
from tailorset.captioners.faces import Face
from tailorset.captioners.imagenet import Hypernym, Label, with_article
from tailorset.captioners.pixels import Layout, Tones
from tailorset.captioners.scenes import Place

NAME_MIN = 0.5  # a subject is a candidate at this confidence or above…
# …and is written into the caption at this one: the lowest 0.05 step at which the set's 291 photos labelled before
# blind8 reach 95% precision with a point to spare (0.55: 95.3%, 0.6: 96%). Below it the guess is withheld.
CAPTION_MIN = 0.6
MIN_SIDE = 64  # pixels: a frame with a shorter side names nothing (local.py)
# A WordNet hypernym is named at this confidence or above when no finer subject reaches NAME_MIN: the highest
# value that names as many tune photos of the evaluation set as any (bench/caption_quality.py).
COARSE_MIN = 0.3
OBJECT_MIN = 0.6  # another detected object is listed at this detector score or above…
# …or, where the classifier does not name its class too, at this one: on its own the detector takes printed
# patterns, petals and specks for donuts, bananas and birds at 0.6-0.73.
ALONE_OBJECT_MIN = 0.75
COUNT_MIN = 0.45  # …and further boxes of its class scoring at least this are counted with it
PERSON_MIN = 0.4  # a "person" box scoring below this is not counted as a person
MIN_AREA = 0.004  # boxes smaller than this share of the frame are noise at 416 px…
OBJECT_AREA = 0.01  # …and an object is listed only from this size (a speck of texture passes for a bird)
# A box covering this much of the frame is the detector's usual false hit on a busy or plain frame (a
# "person" on a star field, a "dining table" under cups): it counts only when another signal backs it
# (a face inside a person, the classifier naming the same class or something a person wears).
WHOLE_FRAME = 0.85
FACE_SUPPORT = 0.6  # a face inside a person box counts as this much independent evidence
AGREE_MIN = 0.25  # the classifier's probability must reach this to count as agreeing with the detector
OBJECT_HINT = 0.3  # a classifier this sure of a COCO object means the frame is not just a texture
UNSEEN_DISCOUNT = 0.9  # a classifier noun the detector knows but did not see keeps this share
CONFLICT_AREA = 0.05  # a detection of another class this large contradicts the classifier
STRONG = 0.85  # a classifier this sure keeps its specific noun against a detector that disagrees
TEXTURE_DISCOUNT = 0.6  # a frame filled with texture fools the classifier: its unconfirmed nouns keep this share
# The detector sees animals of every kind well; an animal the classifier names (below STRONG) where the detector
# sees none keeps this share (a flower close-up the classifier calls an insect).
NO_ANIMAL_DISCOUNT = 0.6
LARGE = 0.25  # a detected object this large that contradicts a named subject is not listed
WITH_MIN = 0.8  # a thing the classifier is this sure of is "shown with" a detected person ("with a tripod")
WORN_MIN = 0.9  # a worn item is named on a person only when the classifier is this sure
# Worn items that show a face: a face or a "person" box on one is the item's own (a Guy Fawkes mask on white),
# so a person wearing one must be seen by the detector alone, at ALONE_OBJECT_MIN.
FACE_COVERINGS = frozenset({"mask"})
# Caption nouns of printed matter: where the classifier's top nouns among them reach AGREE_MIN, a frame of fine
# regular detail is a printed page (a table of numbers), not a texture; none of the set's textures gets 0.05.
PRINTED = frozenset({"menu", "a book cover", "a crossword puzzle", "a comic book", "a website screenshot", "envelope"})
# A place is written into the caption at this confidence, not CAPTION_MIN: the scene classifier's probabilities are
# its own, not the fusion's calibrated ones (on the 363 photos labelled before blind10, places named at 0.6-0.85
# were right 20 times in 24). Chosen by CAPTION_MIN's rule, on those photos: the lowest 0.05 step reaching 95%
# precision with a point to spare (0.8: 95.5%; 0.85: 16 right, none wrong).
SCENE_MIN = 0.85
# The ImageNet hypernym that backs a Places365 group (scenes.GROUPS): a canyon is "a landscape" to the classifier.
SCENE_BACKING = {"landscape": "a landscape", "plants": "a landscape", "building": "a building"}
# Groups of places named only with that backing: the scene classifier takes close-ups of flowers, leaves, grass and
# insects for fields and orchards (0.7-0.9 on the evaluation set), where the ImageNet classifier sees no landscape.
BACKING_NEEDED = frozenset({"plants"})
NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five"}
NAMED = ("person", "animal", "thing", "scene")  # kinds of Subject that name something
KINDS = ("thing", "scene")  # kinds of classifier Label that _classified names

# Caption nouns of the ImageNet grouping (imagenet_groups.txt, or a class's own name) that are COCO classes.
COCO_OF_NOUN = {
    "dog": "dog", "cat": "cat", "bird": "bird", "horse": "horse", "sheep": "sheep", "cow": "cow",
    "elephant": "elephant", "bear": "bear", "zebra": "zebra", "car": "car", "truck": "truck", "bus": "bus",
    "train": "train", "motorbike": "motorcycle", "bicycle": "bicycle", "boat": "boat", "ship": "boat",
    "airplane": "airplane", "cup": "cup", "bottle": "bottle", "clock": "clock", "chair": "chair",
    "sofa": "couch", "bed": "bed", "ball": "sports ball", "table": "dining table", "umbrella": "umbrella",
    "banana": "banana", "orange": "orange", "pizza": "pizza", "laptop": "laptop", "mouse": "mouse",
    "remote control": "remote", "toaster": "toaster", "refrigerator": "refrigerator", "microwave": "microwave",
    "vase": "vase", "a teddy bear": "teddy bear", "pot": "potted plant", "traffic light": "traffic light",
    "park bench": "bench", "backpack": "backpack", "broccoli": "broccoli", "computer keyboard": "keyboard",
    "cellular telephone": "cell phone", "apple": "apple",
}  # fmt: skip
COCO_ANIMALS = frozenset({"bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"})
COCO_VEHICLES = frozenset({"bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"})
# How a COCO class reads in a caption ("a tv" is "a television").
COCO_PHRASES = {"tv": "television", "sports ball": "ball", "dining table": "table", "cell phone": "mobile phone"}


@dataclass(frozen=True)
class Thing:
    """A detected object a FIBO caption lists: what, how many, where and how large."""

    noun: str  # "person", "dog", "potted plant"
    count: int
    score: float  # the best detector score among them
    x: float  # union of their boxes, as fractions of the frame
    y: float
    w: float
    h: float

    @property
    def phrase(self) -> str:
        return counted(self.noun, self.count)

    @property
    def placement(self) -> str:
        return placement(self.x + self.w / 2, self.y + self.h / 2)


@dataclass(frozen=True)
class Subject:
    """What the caption is about, and how sure the captioner is."""

    phrase: str  # "a person", "two people", "a tabby cat"; "" when nothing is named
    # "person", "animal", "thing", "scene"; nothing named: "none", or what is visible instead: "texture",
    # "silhouette", "starfield" (describe_unnamed), or "withheld" (a guess below CAPTION_MIN, in `guess`)
    kind: str
    confidence: float  # 0..1, see the module docstring
    evidence: tuple[str, ...] = ()  # which signals support it: "classifier", "detector", "face"
    wearing: str | None = None  # "a helmet", for a person
    with_object: str | None = None  # "a ball", shown together with a person
    placement: str = "center"  # "left", "center" or "right", optionally after "upper " / "lower "; "" = not known
    shot: str | None = None  # "close-up", "medium shot" or "wide shot" (people only)
    view: str | None = None  # "frontal" or "profile" (faces only)
    gender: str | None = None  # "female" or "male" (NudeNet only)
    count: int = 1
    noun: str = ""  # the detector class it stands for, if any ("person", "dog"): not listed again as an object
    coarse: bool = False  # a WordNet hypernym named for want of a sure finer noun
    guess: str = ""  # what a "withheld" subject would have been named: "a dog wearing a collar"

    @property
    def named(self) -> str:
        """The subject with what it wears: "a person wearing a helmet"."""
        if not self.phrase:
            return ""
        return f"{self.phrase} wearing {self.wearing}" if self.wearing else self.phrase

    @property
    def text(self) -> str:
        """`named` plus what is shown with it: "a person with a ball"."""
        return f"{self.named} with {self.with_object}" if self.named and self.with_object else self.named


def counted(noun: str, count: int) -> str:
    word = COCO_PHRASES.get(noun, noun)
    if count == 1:
        return with_article(word)
    plural = "people" if word == "person" else word + ("es" if word.endswith(("s", "sh", "ch", "x")) else "s")
    return f"{NUMBERS.get(count, 'several')} {plural}"


def combine(*evidence: float) -> float:
    """Independent pieces of evidence for the same thing (noisy-OR)."""
    doubt = 1.0
    for value in evidence:
        doubt *= 1.0 - value
    return 1.0 - doubt


def credible(detections: Sequence[Detection], labels: Sequence[Label], faces: Sequence[Face]) -> list[Detection]:
    """The detections worth weighing: not specks, and no unsupported box over the whole frame."""
    named = {COCO_OF_NOUN.get(lb.noun) for lb in labels if lb.probability >= AGREE_MIN}
    if any(lb.animal and lb.probability >= AGREE_MIN for lb in labels):
        named |= COCO_ANIMALS  # the classifier sees an animal: a detected animal is credible, whichever
    if any(lb.kind == "worn" and lb.noun not in FACE_COVERINGS and lb.probability >= AGREE_MIN for lb in labels):
        named.add("person")  # sunglasses, a suit: worn by someone, so a "person" filling the frame is a close-up
    return [
        d
        for d in detections
        if d.area >= MIN_AREA
        and (d.area < WHOLE_FRAME or d.label in named or (d.label == "person" and any(_inside(f, d) for f in faces)))
    ]


def choose_subject(
    labels: Sequence[Label],
    faces: Sequence[Face],
    detections: Sequence[Detection],
    point: tuple[float, float],
    texture: bool = False,
    hypernyms: Sequence[Hypernym] = (),
    places: Callable[[], Sequence[Place]] = tuple,
) -> Subject:
    """The best-supported subject, else the most specific hypernym sure enough, else the place the scene
    classifier sees (`places()`, called only when a place could be named: the model costs as much as the rest);
    unnamed (phrase "") when none reaches its threshold."""
    boxes = credible(detections, labels, faces)
    people = _people(labels, faces, boxes)
    if people is not None and texture and people.evidence == ("detector",):  # a speck of texture, as for objects
        people = replace(people, confidence=round(people.confidence * TEXTURE_DISCOUNT, 3))
    # A sure worn item where no person is sure is named alone: "a mask", not "a person wearing a mask".
    worn = _worn(labels, texture) if people is None or people.confidence < NAME_MIN else None
    sure_people = [d for d in boxes if d.label == "person" and d.score >= NAME_MIN]
    candidates = [c for c in (people, worn, _classified(labels, boxes, texture, sure_people)) if c]
    best = max(candidates, key=lambda c: c.confidence, default=None)
    if best is None or best.confidence < NAME_MIN:
        coarse = _coarse(hypernyms, boxes, texture)
        if coarse is not None and (best is None or coarse.confidence >= min(COARSE_MIN, best.confidence)):
            best = coarse
    # A place is named where nothing else can be: no thing, animal or person sure enough to be written, nor one
    # only just below that (withheld: the models saw a thing, and a close-up of it is no scene), or where the
    # ImageNet classifier itself sees a place less surely ("a landscape" at 0.45 becomes "a canyon").
    if best is None or best.confidence < CAPTION_MIN and (best.kind == "scene" or not _nameable(best)):
        scene = _scene(places(), hypernyms)
        if scene is not None and (best is None or not _nameable(best) or scene.confidence > best.confidence):
            best = scene
    if best is None:
        return Subject("", "none", 0.0, placement=placement(*point))
    if not _nameable(best):
        return Subject("", "none", best.confidence, best.evidence, placement=placement(*point))
    if best.confidence < (SCENE_MIN if "scene" in best.evidence else CAPTION_MIN):
        return Subject("", "withheld", best.confidence, best.evidence, placement=placement(*point), guess=best.text)
    return best if best.placement else replace(best, placement=placement(*point))  # no box: where it stands out


def _nameable(candidate: Subject) -> bool:
    """Sure enough to be a candidate at all (it may still be withheld below CAPTION_MIN)."""
    return candidate.confidence >= (COARSE_MIN if candidate.coarse else NAME_MIN)


def objects(
    subject: Subject, detections: Sequence[Detection], labels: Sequence[Label], faces: Sequence[Face]
) -> tuple[Thing, ...]:
    """Every detected class with a box at OBJECT_MIN or above, counted (boxes at COUNT_MIN or above) and with
    the union of its boxes, largest first. The subject's own class is included: FIBO lists the main subject
    among the objects. A large box of another class than a named subject contradicts it and is left out."""
    boxes = credible(detections, labels, faces)
    classified = {COCO_OF_NOUN.get(lb.noun) for lb in labels if lb.probability >= AGREE_MIN} | {"person"}
    listed = {
        d.label
        for d in boxes
        if d.area >= OBJECT_AREA and d.score >= (OBJECT_MIN if d.label in classified else ALONE_OBJECT_MIN)
    }
    if subject.noun:
        listed.add(subject.noun)
    by_class: dict[str, list[Detection]] = {}
    for d in boxes:
        contradicts = subject.kind in NAMED and d.label != subject.noun and d.area >= LARGE and d.label != "person"
        if d.label in listed and d.score >= COUNT_MIN and not contradicts:
            by_class.setdefault(d.label, []).append(d)
    if _face_covering(labels) is not None and subject.noun != "person":  # the mask's "person" is the mask
        by_class.pop("person", None)
    if subject.noun == "person" and "person" in by_class:
        by_class["person"] = by_class["person"][: subject.count]
    things = []
    for noun, found in by_class.items():
        left, top = min(d.x for d in found), min(d.y for d in found)
        right, bottom = max(d.x + d.w for d in found), max(d.y + d.h for d in found)
        score = max(d.score for d in found)
        things.append(Thing(noun, len(found), score, left, top, right - left, bottom - top))
    return tuple(sorted(things, key=lambda t: (-t.w * t.h, t.noun)))


# -- candidates ------------------------------------------------------------------------------------------
def _sure_worn(labels: Sequence[Label]) -> Label | None:
    return next((lb for lb in labels if lb.kind == "worn" and lb.probability >= WORN_MIN), None)


def _face_covering(labels: Sequence[Label]) -> Label | None:
    """A worn item the classifier is sure of that shows a face itself (a mask), else None."""
    worn = _sure_worn(labels)
    return worn if worn is not None and worn.noun in FACE_COVERINGS else None


def _worn(labels: Sequence[Label], texture: bool) -> Subject | None:
    """A worn item the classifier is sure of, named on its own (a mask, a gown on a hanger)."""
    worn = _sure_worn(labels)
    if worn is None:
        return None
    confidence = worn.phrase_sureness * (TEXTURE_DISCOUNT if texture else 1.0)
    return Subject(worn.phrase, "thing", round(confidence, 3), ("classifier",), placement="")


def _people(labels: Sequence[Label], faces: Sequence[Face], boxes: Sequence[Detection]) -> Subject | None:
    people = [d for d in boxes if d.label == "person" and d.score >= PERSON_MIN]
    if _face_covering(labels) is not None:
        # A face or person box on a mask is the mask's: only a person the detector is sure of by itself counts.
        people, faces = [d for d in people if d.score >= ALONE_OBJECT_MIN], ()
    if not people:
        return None
    main = max(people, key=lambda d: (d.score * min(1.0, d.area * 4), d.score))
    face = next((f for f in faces if _inside(f, main)), None)
    evidence = ["detector"]
    confidence = main.score
    if face is not None:
        confidence = combine(confidence, FACE_SUPPORT)
        evidence.append("face")
    named = next((lb for lb in labels if lb.kind == "person" and lb.probability >= NAME_MIN), None)
    if named is not None:
        confidence = combine(confidence, named.probability)
        evidence.append("classifier")
    count = sum(1 for d in people if d.score >= COUNT_MIN) or 1
    if count > 1:
        phrase = counted("person", count)
    elif named:
        phrase = named.phrase
    else:
        phrase = {"female": "a woman", "male": "a man"}.get(face.gender if face else "", "a person")
    worn = _sure_worn(labels)
    held = next((d for d in boxes if d.label != "person" and d.score >= OBJECT_MIN and _overlaps(d, main)), None)
    shown = next((lb for lb in labels if lb.kind == "thing" and lb.probability >= WITH_MIN), None)
    shot = "close-up" if main.h >= 0.8 and main.area >= 0.5 else "medium shot" if main.h >= 0.45 else "wide shot"
    if face is not None:
        shot = "close-up" if face.h >= 0.3 else "medium shot" if face.h >= 0.12 else "wide shot"
    return Subject(
        phrase,
        "person",
        round(confidence, 3),
        tuple(evidence),
        wearing=worn.phrase if worn else None,
        with_object=counted(held.label, 1) if held else shown.phrase if shown else None,
        placement=placement(*main.centre),
        shot=shot,
        view=face.view if face else None,
        gender=face.gender if face and count == 1 else None,
        count=count,
        noun="person",
    )


def _classified(
    labels: Sequence[Label], boxes: Sequence[Detection], texture: bool, people: Sequence[Detection] = ()
) -> Subject | None:
    """The classifier's best noun (not a person or something worn), checked against the detections. A box of
    that noun lying on a surer `people` box does not back it: it is what the person sits on or holds, seen
    with the person (a chair behind a man holding a chessboard), not a subject apart from them."""
    best = next((lb for lb in labels if lb.kind in KINDS), None)
    if best is None:
        return None
    coco = COCO_OF_NOUN.get(best.noun)
    same = [
        d
        for d in boxes
        if d.label == coco
        and not any(p.score > d.score and _overlaps(d, p) for p in people)
        # On a frame filled with texture both are fooled alike: a box over the whole frame backs nothing there.
        and not (texture and d.area >= WHOLE_FRAME)
    ]
    animals = [d for d in boxes if d.label in COCO_ANIMALS]
    # A finer phrase ("a valley") is only as sure as its own classes: the noun's sum also holds siblings that do
    # not support it (the cliffs and headlands of "landscape"). The coarse noun is left to the hypernyms.
    phrase, evidence, confidence = best.phrase, ["classifier"], best.phrase_sureness
    if same and best.probability >= AGREE_MIN:
        confidence = combine(confidence, max(d.score for d in same))
        evidence.append("detector")
        if best.animal and _unseen_rival(best, labels):
            phrase = "an animal"  # the detector's dog is any animal COCO has no class for: it backs no species
    elif best.animal and animals and best.probability >= AGREE_MIN:
        rival = max(animals, key=lambda d: d.score)
        if coco is None or best.probability >= STRONG:
            # An animal the detector has no class for (a squirrel), or a classifier sure enough to overrule
            # the detector's guess (a tabby cat it calls a dog): the detector still sees an animal there.
            bonus = rival.score / 2 if coco is None else 0.0
            if coco is None and confidence < NAME_MIN:
                phrase = "an animal"
            confidence = combine(confidence, bonus) * (1.0 if coco is None else 1.0 - rival.score / 4)
        else:  # they agree it is an animal, not which one: say only that
            phrase, confidence = "an animal", combine(confidence, rival.score) * (1.0 - rival.score / 2)
        evidence.append("detector")
    else:
        family = COCO_VEHICLES if coco in COCO_VEHICLES else frozenset()
        rivals = [d.score for d in boxes if d.label in family and d.label != coco and d.area >= CONFLICT_AREA]
        others = [d.score for d in boxes if d.label != "person" and d.score >= OBJECT_MIN and d.label != coco]
        if rivals:
            confidence *= 1.0 - max(rivals) / 2  # the detector sees another vehicle there
        elif others and coco is None:
            confidence *= 1.0 - max(others) / 2  # the detector sees something the classifier does not name
        elif coco is not None:
            confidence *= UNSEEN_DISCOUNT
        if best.animal and best.probability < STRONG:
            confidence *= NO_ANIMAL_DISCOUNT
        # With nothing else to go on, the noun is only as sure as its lead over the next one (a night bridge the
        # classifier splits between "pier" and "bridge" is neither for sure).
        confidence *= 1.0 - next((lb.probability for lb in labels if lb is not best and lb.kind in KINDS), 0.0)
        if texture:
            confidence *= TEXTURE_DISCOUNT
    if best.kind == "scene":
        return Subject(phrase, "scene", round(confidence, 3), tuple(evidence))
    where = max(same, key=lambda d: d.area) if same else None
    return Subject(
        phrase,
        "animal" if best.animal else "thing",
        round(confidence, 3),
        tuple(evidence),
        placement=placement(*where.centre) if where else "",
        noun=(coco or "") if phrase == best.phrase else "",
    )


def _unseen_rival(best: Label, labels: Sequence[Label]) -> Label | None:
    """Another animal the classifier finds at least half as likely as `best`, of a kind the detector has no
    class for (a rabbit beside "dog"): the detector cannot tell the two apart."""
    return next(
        (
            lb
            for lb in labels
            if lb is not best and lb.animal and lb.noun not in COCO_OF_NOUN and lb.probability >= best.probability / 2
        ),
        None,
    )


def _coarse(hypernyms: Sequence[Hypernym], boxes: Sequence[Detection], texture: bool) -> Subject | None:
    """The most specific hypernym whose summed probability, checked against the detections as a classifier
    noun is, reaches COARSE_MIN; else the surest one (below it). A detector class under the hypernym backs it
    (the detector's horse backs the classifier's "an animal"); a detected object outside it that the hierarchy
    places elsewhere rules it out (a detected horse rules out "a dog"); one the hierarchy does not place, or an
    animal hypernym the detector sees no animal for, lowers it, as for a finer noun."""
    if texture:
        return None  # a frame filled with texture spreads the classifier's guesses: their sums look sure
    sure = [d for d in boxes if d.score >= OBJECT_MIN]
    placed = frozenset().union(*(h.coco for h in hypernyms)) if hypernyms else frozenset()
    # A sure animal box: a weak one is no evidence (the detector takes dandelion clocks for birds at 0.48).
    animal_seen = any(d.label in COCO_ANIMALS and d.score >= OBJECT_MIN for d in boxes)
    best = None
    for h in hypernyms:  # most specific first
        backing = [d for d in sure if d.label in h.coco]
        if any(d.label in placed and d.label not in h.coco and d.area >= CONFLICT_AREA for d in sure):
            continue
        if h.animal and not animal_seen:
            continue  # summed over hundreds of animal classes, guesses on leaves and petals add up
        evidence = ("classifier",)
        if backing and h.probability >= AGREE_MIN:
            confidence = combine(h.probability, max(d.score for d in backing))
            evidence = ("classifier", "detector")
        else:
            confidence = h.probability
            others = [d.score for d in sure if d.label != "person" and d.label not in h.coco]
            if others:
                confidence *= 1.0 - max(others) / 2
            elif h.coco:
                confidence *= UNSEEN_DISCOUNT
        where = max(backing, key=lambda d: d.area) if backing else None
        subject = Subject(
            h.phrase,
            "scene" if h.kind == "scene" else "animal" if h.animal else "thing",
            round(confidence, 3),
            evidence,
            placement=placement(*where.centre) if where else "",
            noun=next(iter(h.coco)) if len(h.coco) == 1 else "",
            coarse=True,
        )
        if subject.confidence >= COARSE_MIN:
            return subject
        if best is None or subject.confidence > best.confidence:
            best = subject
    return best


def _scene(places: Sequence[Place], hypernyms: Sequence[Hypernym]) -> Subject | None:
    """The scene classifier's most probable place, backed by the ImageNet classifier's hypernym of its group
    where that reaches AGREE_MIN (noisy-OR, as any two independent signals: Places365's "a canyon" at 0.83 and
    ImageNet's "a landscape" at 0.19 give 0.86); a place of plants is named only with that backing."""
    if not places:
        return None
    best = places[0]
    backing = next((h.probability for h in hypernyms if h.phrase == SCENE_BACKING.get(best.group)), 0.0)
    if backing < AGREE_MIN:
        if best.group in BACKING_NEEDED:
            return None
        backing = 0.0
    evidence = ("scene", "classifier") if backing else ("scene",)
    return Subject(best.phrase, "scene", round(combine(best.probability, backing), 3), evidence, placement="")


# -- geometry --------------------------------------------------------------------------------------------
def placement(x: float, y: float) -> str:
    """Where a point of the frame is, in words: "left", "upper center", "lower right"…"""
    across = "left" if x < 0.4 else "right" if x > 0.6 else "center"
    up = "upper " if y < 0.35 else "lower " if y > 0.65 else ""
    return up + across


def _inside(face: Face, box: Detection) -> bool:
    cx, cy = face.x + face.w / 2, face.y + face.h / 2
    return box.x <= cx <= box.x + box.w and box.y <= cy <= box.y + box.h


def _overlaps(a: Detection, b: Detection) -> bool:
    ix = max(0.0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0.0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    return ix * iy >= 0.5 * a.area


def describe_unnamed(
    subject: Subject, labels: Sequence[Label], detections: Sequence[Detection], tones: Tones, layout: Layout
) -> Subject:
    """When nothing can be named: what is plainly visible, in words that cannot name a wrong thing
    ("a gray texture filling the frame", "a black silhouette of an animal"); else the subject unchanged. A
    withheld subject stays as it is: the models saw a thing there, so the frame is not just a texture."""
    if subject.kind != "none":
        return subject
    colour = tones.colours[0][0] if tones.colours else "gray"
    if layout.silhouette:
        animal = (labels and labels[0].animal and labels[0].probability >= NAME_MIN) or any(
            d.label in COCO_ANIMALS and d.score >= PERSON_MIN for d in detections
        )
        phrase = "a black silhouette of an animal" if animal else "a black silhouette on a light background"
        return Subject(phrase, "silhouette", subject.confidence, subject.evidence, placement=subject.placement)
    if layout.starfield:
        return Subject("small points of light on a black background", "starfield", subject.confidence, subject.evidence)
    # Not a texture where the detector or the classifier sees an object it knows (a plant before a patterned
    # cloth), nor where the classifier sees printed matter (a page of small print).
    objects_seen = any(d.score >= OBJECT_MIN and d.area >= OBJECT_AREA for d in detections) or any(
        lb.noun in COCO_OF_NOUN and lb.probability >= OBJECT_HINT for lb in labels
    )
    printed = sum(lb.probability for lb in labels if lb.noun in PRINTED) >= AGREE_MIN
    if layout.texture and not objects_seen and not printed:
        return Subject(f"a {colour} texture filling the frame", "texture", subject.confidence, subject.evidence)
    return subject
