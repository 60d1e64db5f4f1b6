"""The WordNet hypernyms of the ImageNet classes (imagenet_hierarchy.txt, made by tools/imagenet_hierarchy.py)
and how the classifier's probabilities add up over them (imagenet.hypernyms). Fast: no models."""

from __future__ import annotations

import numpy as np

from tailorset.captioners import imagenet

DOGS = range(151, 269)  # ImageNet-1k's 118 dog breeds, Chihuahua to Mexican hairless
TABBY, PERSIAN, LION = 281, 283, 291
HORSE_CART, SPORTS_CAR = 603, 817
JELLYFISH = 107  # a "vague" class: the classifier's fallback on textures


def spread(probabilities: dict[int, float]) -> np.ndarray:
    p = np.zeros(1000)
    for index, value in probabilities.items():
        p[index] = value
    return p


def by_phrase(probabilities: dict[int, float]) -> dict[str, imagenet.Hypernym]:
    return {h.phrase: h for h in imagenet.hypernyms(spread(probabilities))}


def test_the_breeds_add_up_to_a_dog_and_every_animal_to_an_animal():
    found = by_phrase({i: 0.5 / len(DOGS) for i in DOGS} | {TABBY: 0.2, LION: 0.1})
    assert found["a dog"].probability == np.float64(0.5).round(4)
    assert found["a mammal"].probability == found["an animal"].probability == 0.8
    assert found["a dog"].coco == {"dog"} and found["a dog"].animal
    assert "horse" in found["an animal"].coco and "car" not in found["an animal"].coco


def test_the_most_specific_hypernym_comes_first():
    phrases = [h.phrase for h in imagenet.hypernyms(spread({TABBY: 0.3, PERSIAN: 0.3}))]
    assert phrases[0] == "a cat" and phrases.index("a cat") < phrases.index("a mammal") < phrases.index("an animal")
    sizes = [h.size for h in imagenet.hypernyms(spread({TABBY: 0.3, PERSIAN: 0.3}))]
    assert sizes == sorted(sizes)


def test_a_sports_car_and_a_horse_cart_are_vehicles_but_only_one_is_a_car():
    found = by_phrase({SPORTS_CAR: 0.3, HORSE_CART: 0.3})
    assert found["a vehicle"].probability == 0.6 and found["a car"].probability == 0.3
    assert {"car", "bus", "boat", "airplane"} <= found["a vehicle"].coco
    assert not found["a vehicle"].animal


def test_hypernyms_below_the_floor_are_left_out():
    assert imagenet.hypernyms(spread({TABBY: 0.04})) == ()
    assert [h.phrase for h in imagenet.hypernyms(spread({TABBY: 0.04}), floor=0.01)][:1] == ["a cat"]


def test_vague_classes_count_towards_no_hypernym():
    """On a star field the classifier guesses flatworm and jellyfish: that is no animal."""
    assert imagenet.hypernyms(spread({JELLYFISH: 0.9})) == ()


def test_the_generated_file_places_every_nameable_hypernym():
    """Each line names classes; each class index is a real one; the tool's header says where it came from."""
    lines = imagenet._text("imagenet_hierarchy.txt")
    header = [
        line
        for line in (imagenet.resources.files(imagenet.__package__) / "imagenet_hierarchy.txt").read_text().splitlines()
        if line.startswith("#")
    ]
    assert "tools/imagenet_hierarchy.py" in header[0] and "WordNet 3.0" in header[0]
    nodes = imagenet._nodes()
    assert len(nodes) == len(lines) and all(node.indices for node in nodes)
    assert all(0 <= i < 1000 for node in nodes for i in node.indices)


VALLEY, CLIFF, HEADLAND = 979, 972, 976  # three classes of the caption noun "landscape" (imagenet_groups.txt)


def test_a_finer_phrase_carries_its_own_probability():
    """The noun sums its classes; a finer phrase ("a valley") keeps what its own classes hold, so the fusion does
    not name it on its siblings' share."""
    (found, *_) = imagenet.labels(spread({VALLEY: 0.40, CLIFF: 0.10, HEADLAND: 0.06}))
    assert (found.phrase, found.noun) == ("a valley", "landscape")
    assert abs(found.probability - 0.56) < 1e-9
    assert abs(found.phrase_sureness - 0.40) < 1e-9
    (even, *_) = imagenet.labels(spread({VALLEY: 0.2, CLIFF: 0.2, HEADLAND: 0.16}))
    assert even.phrase == "a landscape" and even.phrase_probability is None  # no finer phrase: the whole noun
    (single, *_) = imagenet.labels(spread({TABBY: 0.7}))
    assert single.phrase == "a tabby cat" and abs(single.phrase_sureness - 0.7) < 1e-9


AIRLINER, WARPLANE, WING = 404, 895, 908


def test_a_wing_is_a_view_from_an_airplane_not_an_airplane():
    """ImageNet's "wing" photos are taken from an airplane's window: the coast below one was "an airplane" (0.98;
    split blind3 of bench/caption_eval.toml). They show an aerial view; airliners and warplanes are airplanes."""
    (view, *_) = imagenet.labels(spread({WING: 0.96}))
    assert (view.phrase, view.kind) == ("an aerial view", "scene")
    (plane, *_) = imagenet.labels(spread({AIRLINER: 0.4, WARPLANE: 0.3, WING: 0.2}))
    assert plane.phrase == "an airplane" and abs(plane.probability - 0.7) < 1e-9
