"""The local captioner on real photos: recognisable captions, prefixes, FIBO validity, determinism."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from tailorset.captioners import phrasing, weights
from tailorset.captioners.base import CaptionContext, Captioner
from tailorset.captioners.fusion import Subject
from tests.captioners import captioner_support as support

# What a caption must mention for each photo (any of the words, as whole words).
EXPECTED = {
    "astronaut.png": ("person", "woman"),
    "coffee.png": ("espresso", "coffee", "cup"),
    "chelsea.png": ("cat",),
    "motorcycle_left.png": ("motorbike", "motorcycle", "moped", "scooter"),
    "rocket.jpg": ("rocket", "missile"),
    "camera.png": ("person", "man", "tripod", "camera"),
}
LEGACY = CaptionContext(training_version="max", caption_prefix="sks style")
FIBO = CaptionContext(training_version="fibo")


@pytest.fixture(scope="module")
def signals(captioner, photos):
    return {name: captioner.describe(image) for name, image in photos.items()}


def mentions(text: str, words: tuple[str, ...]) -> bool:
    return any(re.search(rf"\b{word}\b", text, re.IGNORECASE) for word in words)


def test_is_a_captioner(captioner):
    assert isinstance(captioner, Captioner)
    assert captioner.name == "local"


@pytest.mark.parametrize("name", EXPECTED)
def test_legacy_caption_names_the_subject(captioner, photos, name):
    caption = captioner.caption(photos[name], LEGACY).text
    assert mentions(caption, EXPECTED[name]), caption


def test_people_are_found_by_their_faces(signals):
    assert signals["astronaut.png"].subject.kind == "person"
    assert signals["camera.png"].subject.kind == "person"
    for name in ("coffee.png", "chelsea.png", "motorcycle_left.png", "rocket.jpg"):
        assert signals[name].faces == (), name


def test_a_withheld_subject_is_in_the_signals_not_in_the_caption(signals):
    """A guess below fusion.CAPTION_MIN teaches a model nothing right three times in four: the caption leaves it
    out, and the stored signals keep it for whoever reviews the caption."""
    named = signals["rocket.jpg"]
    doubtful = replace(named, subject=Subject("", "withheld", 0.55, ("classifier",), guess="a rocket"), objects=())
    evidence = phrasing.evidence(doubtful, wants_json=True)
    assert (evidence["subject"], evidence["kind"], evidence["guess"], evidence["named"]) == (
        None, "withheld", "a rocket", [],
    )  # fmt: skip
    assert "guess" not in phrasing.evidence(named, wants_json=False)
    for text in (phrasing.legacy_caption(doubtful, "sks"), json.dumps(phrasing.fibo_caption(doubtful, {}))):
        assert not mentions(text, ("rocket", "missile")), text
    assert phrasing.fibo_caption(doubtful, {})["aesthetics"]["composition"].startswith("no single dominant subject")


def test_black_and_white_is_detected(captioner, photos, signals):
    for name, signal in signals.items():
        assert signal.tones.monochrome == (name == "camera.png"), name
    assert "black and white" in captioner.caption(photos["camera.png"], LEGACY).text
    assert "black and white" not in captioner.caption(photos["coffee.png"], LEGACY).text


def test_dark_photo_says_so(captioner, photos):
    assert "dark" in captioner.caption(photos["rocket.jpg"], LEGACY).text


@pytest.mark.parametrize("name", EXPECTED)
def test_prefix_styles_are_continued_once(captioner, photos, name):
    image = photos[name]
    tagged = captioner.caption(image, CaptionContext(caption_prefix="sks style")).text
    assert tagged.startswith("sks style, a ")
    assert tagged.count("sks style") == 1
    sentence = captioner.caption(image, CaptionContext(caption_prefix="A photo of")).text
    assert sentence.startswith("A photo of ")
    assert sentence.lower().count("photo of") == 1, sentence
    bare = captioner.caption(image, CaptionContext()).text
    assert re.match(r"A (black and white )?photo", bare), bare
    assert tagged.removeprefix("sks style, ").lower() == bare.lower()


@pytest.mark.parametrize(
    "prefix, start",
    [
        ("sks style ", "sks style, a photo of a tabby cat, "),
        ("sks style,", "sks style, a photo of a tabby cat, "),
        ("  ", "A photo of a tabby cat, "),
        ("a photo", "a photo of a tabby cat, "),
        ("An image of", "An image of a tabby cat, "),
        ("sks cat with", "sks cat with a tabby cat, "),
        ("A photo of a tabby cat", "A photo of a tabby cat, brown"),
    ],
)
def test_prefix_variants(captioner, photos, prefix, start):
    caption = captioner.caption(photos["chelsea.png"], CaptionContext(caption_prefix=prefix)).text
    assert caption.startswith(start), caption
    assert caption.lower().count("tabby cat") == 1


def test_articles(captioner, photos):
    caption = captioner.caption(photos["coffee.png"], CaptionContext()).text
    assert "a cup of espresso" in caption
    assert not re.search(r"\ba [aeiou]", caption), caption


@pytest.mark.parametrize("name", EXPECTED)
def test_fibo_caption_validates_and_mentions_the_subject(captioner, photos, validator, name):
    text = captioner.caption(photos[name], FIBO).text
    caption = json.loads(text)
    validator.validate(caption)
    order = validator.schema["x-fibo-canonicalKeyOrder"]
    assert list(caption) == [key for key in order if key in caption]
    assert text == json.dumps(caption, separators=(",", ":"), ensure_ascii=True)
    assert mentions(caption["short_description"], EXPECTED[name]), caption["short_description"]
    assert mentions(caption["objects"][0]["description"] + caption["short_description"], EXPECTED[name])
    assert caption["style_medium"] == "photograph"
    for key in ("background_setting", "lighting", "aesthetics", "context", "photographic_characteristics"):
        assert caption[key]


def test_fibo_caption_needs_no_repair_by_the_service(captioner, photos):
    fibo = pytest.importorskip("tailorset.fibo")
    for image in photos.values():
        text = captioner.caption(image, FIBO).text
        result = fibo.check_caption(text)
        assert result.valid and result.caption == text
        assert not result.corrections and not result.warnings


def test_fibo_black_and_white(captioner, photos):
    caption = json.loads(captioner.caption(photos["camera.png"], FIBO).text)
    assert caption["aesthetics"]["color_scheme"].startswith("black and white")


def test_visual_schema_guidance(captioner, photos, validator):
    schema = json.dumps(
        {
            "style": "soft watercolor illustration",
            "purpose": "Children's book pages",
            "colors": ["pastel pink", "mint"],
            "aesthetics": {"mood": "whimsical"},
            "unrelated": "ignored",
        }
    )
    caption = json.loads(captioner.caption(photos["chelsea.png"], CaptionContext("fibo", visual_schema=schema)).text)
    validator.validate(caption)
    assert caption["style_medium"] == "soft watercolor illustration"
    assert caption["artistic_style"] == "soft watercolor illustration"
    assert caption["context"].startswith("Children's book pages. ")
    assert caption["aesthetics"]["color_scheme"].endswith("dataset palette: pastel pink, mint")
    assert caption["aesthetics"]["mood_atmosphere"] == "whimsical"
    assert "ignored" not in json.dumps(caption)


@pytest.mark.parametrize("schema", ["not json", "[1, 2]", "", '{"style": null}'])
def test_unusable_visual_schema_is_ignored(captioner, photos, validator, schema):
    plain = captioner.caption(photos["coffee.png"], FIBO).text
    assert captioner.caption(photos["coffee.png"], CaptionContext("fibo", visual_schema=schema)).text == plain


def test_deterministic(captioner, photos, signals):
    other = support.new_captioner(captioner.cache_dir)
    for name in ("astronaut.png", "chelsea.png", "camera.png"):
        assert captioner.describe(photos[name]) == signals[name]
        assert other.describe(photos[name].copy()) == signals[name]
        assert captioner.caption(photos[name], FIBO).text == captioner.caption(photos[name], FIBO).text


def test_thread_safe(captioner, photos):
    jobs = [(image, context) for image, context in zip(photos.values(), [LEGACY, FIBO] * 3, strict=True)]
    sequential = [captioner.caption(image, context).text for image, context in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda job: captioner.caption(*job).text, jobs))
    assert parallel == sequential


def test_describe_exposes_signals(photos, signals):
    signals = signals["chelsea.png"]
    assert signals.labels[0].noun == "cat"
    assert signals.labels[0].probability > 0.5
    assert signals.subject.phrase == "a tabby cat"
    assert signals.orientation == "landscape"
    assert (signals.width, signals.height) == photos["chelsea.png"].size
    assert signals.tones.colours and all(0 < share <= 1 for _, share in signals.tones.colours)
    assert 0 <= signals.salient_point[0] <= 1 and 0 <= signals.salient_point[1] <= 1


def test_suggest_prefix(captioner, photos):
    cat = photos["chelsea.png"]
    assert captioner.suggest_prefix([cat, cat.transpose(0), cat.rotate(3)]) == "A photo of a tabby cat"
    assert captioner.suggest_prefix(list(photos.values())) == "A photo of"
    camera = photos["camera.png"]
    assert captioner.suggest_prefix([camera]) == "A black and white photo of a person"
    # The suggested prefix reads well in front of the dataset's captions.
    caption = captioner.caption(cat, CaptionContext(caption_prefix="A photo of a tabby cat")).text
    assert caption.startswith("A photo of a tabby cat, ") and caption.count("tabby cat") == 1


def test_suggest_visual_schema(captioner, photos):
    text = captioner.suggest_visual_schema(list(photos.values()))
    schema = json.loads(text)
    assert text == json.dumps(schema, separators=(",", ":"))
    assert schema["style_medium"] == "photograph"
    assert {"colors", "lighting", "composition", "subject"} <= set(schema)
    assert all(isinstance(value, str) and value for value in schema.values())


def test_every_caption_carries_its_confidence_and_signals(captioner, photos, signals):
    for name, image in photos.items():
        for context in (LEGACY, FIBO):
            answer = captioner.caption(image, context)
            assert 0.0 <= answer.confidence <= 1.0, name
            assert answer.confidence == signals[name].subject.confidence
            named = signals[name].subject.kind in ("person", "animal", "thing", "scene")
            assert (answer.confidence >= 0.5) == named, name
            assert answer.signals["subject"] == (signals[name].subject.phrase or None)
            assert json.loads(json.dumps(answer.signals)) == answer.signals  # storable as it is
    cat = captioner.caption(photos["chelsea.png"], LEGACY)
    assert cat.signals["evidence"] == ["classifier", "detector"] and cat.confidence >= 0.8
    assert cat.signals["classifier"][0][0] == "a tabby cat"
    assert "cat" in [d[0] for d in cat.signals["detector"]]


def test_fibo_objects_come_from_the_detector_with_location_and_size(captioner, photos, signals):
    caption = json.loads(captioner.caption(photos["motorcycle_left.png"], FIBO).text)
    [bike] = [o for o in caption["objects"] if "motorbike" in o["description"].lower()]
    box = next(d for d in signals["motorcycle_left.png"].detections if d.label == "motorcycle")
    assert bike["relative_size"] == ("large within frame" if box.area >= 0.4 else "medium-sized")
    assert bike["location"].endswith("of the frame")
    astronaut = json.loads(captioner.caption(photos["astronaut.png"], FIBO).text)
    assert astronaut["objects"][0]["description"] == "A person." and astronaut["objects"][0]["location"]


# -- the scene classifier (Places365): asked only where a place could be named -------------------------------
def test_the_scene_classifier_is_installed_and_loaded(captioner):
    assert weights.installed(weights.PLACES365) is not None, "the README's setup runs `tailorset models fetch`"
    assert captioner.scene_path.is_file()


def test_a_named_thing_leaves_the_scene_classifier_unasked(signals):
    for name in ("chelsea.png", "coffee.png", "astronaut.png"):
        assert signals[name].places == (), name
        assert "scene" not in phrasing.evidence(signals[name], wants_json=False)


def test_a_frame_with_no_thing_in_it_is_shown_to_the_scene_classifier(captioner, photos):
    """Dusk sky between the towers of rocket.jpg, cut out of it: no thing to name, so the scene classifier is
    asked. It ranks the sky first, but a plain dark frame leaves it too unsure (0.11) to be named."""
    sky = photos["rocket.jpg"].crop((210, 0, 430, 110))
    found = captioner.describe(sky)
    assert found.places and found.places[0].phrase == "the sky", found.places
    assert found.places[0].probability < 0.5 and found.subject.phrase == ""
    assert phrasing.evidence(found, wants_json=False)["scene"][0][0] == "the sky"
    # Had it been sure, the place is the subject of both captions and the FIBO caption's background.
    sure = replace(found, subject=Subject("the sky", "scene", 0.9, ("scene",)))
    assert "a photo of the sky" in phrasing.legacy_caption(sure, "sks style")
    assert phrasing.fibo_caption(sure, {})["background_setting"].startswith("The sky.")


def test_without_its_weights_the_captioner_names_no_place_and_says_why(model_dir, photos, monkeypatch, caplog):
    monkeypatch.setenv(weights.PLACES365.env, str(model_dir / "not-fetched.pth.tar"))
    rocket = photos["rocket.jpg"]
    sky = rocket.crop((210, 0, 430, 110))
    with caplog.at_level("WARNING", logger="tailorset.captioners.local"):
        bare = support.new_captioner(model_dir)
    assert "tailorset models fetch" in caplog.text
    found = bare.describe(sky)
    assert found.places == () and found.subject.kind != "scene"
    assert bare.caption(rocket, LEGACY).text  # everything else still captions


def test_damaged_scene_weights_leave_the_rest_of_the_captioner_working(tmp_path, photos, monkeypatch, caplog):
    """The scene classifier is optional: weights that are not the ones expected are refused when its model is
    built, the log says so, and everything else still captions."""
    damaged = tmp_path / "places.pth.tar"
    damaged.write_bytes(b"not the Places365 weights")
    monkeypatch.setenv(weights.PLACES365.env, str(damaged))
    with caplog.at_level("ERROR", logger="tailorset.captioners.local"):
        captioner = support.new_captioner(tmp_path / "models")
    assert "not the Places365 weights expected" in caplog.text
    sky = photos["rocket.jpg"].crop((210, 0, 430, 110))
    assert captioner.describe(sky).places == ()
    assert "cat" in captioner.caption(photos["chelsea.png"], LEGACY).text
