"""The local captioner in a child process of its own (captioners/process.py, TAILORSET_CAPTIONER_PROCESS): the
captions the server's own process would write, its log in the server's, its models out of the server, and a
server that outlives the child's death (and a child that does not outlive the server's)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tailorset.captioners import CaptionContext, CaptionerError, process
from tests.servers import ServerProcess, new_token
from tests.support import photo, wait_until

LEGACY = CaptionContext("max", "sks style")
FIBO = CaptionContext("fibo")


@pytest.fixture
def child(model_dir):
    captioner = process.ProcessCaptioner(process.local_options(model_dir))
    yield captioner
    captioner.close()


def test_the_child_writes_the_captions_the_server_process_would(child, captioner, photos):
    """Same photos, same contexts: the same text, confidence and signals, including camera.png's greyscale pixels,
    which cross as RGB as the captioner itself would convert them."""
    for name, image in photos.items():
        for context in (LEGACY, FIBO):
            assert child.caption(image, context) == captioner.caption(image, context), name
    sample = list(photos.values())[:3]
    assert child.suggest_prefix(sample) == captioner.suggest_prefix(sample)
    assert child.suggest_visual_schema(sample) == captioner.suggest_visual_schema(sample)


def test_a_large_picture_crosses_in_bands_intact(child, captioner, photos):
    """A 4000 × 2700 picture is 32 MB of pixels, sent in eight bands; a band lost, repeated or out of order would
    move the colours, the salient point and the sharpness the signals measure."""
    cat = photos["chelsea.png"].convert("RGB").resize((4000, 2700))
    assert len(cat.tobytes()) > 7 * process.BAND_BYTES
    assert child.caption(cat, LEGACY) == captioner.caption(cat, LEGACY)


def test_the_child_logs_into_the_servers_log(model_dir, photos, caplog):
    """Without the scene weights the child's captioner warns at load: the warning is this process's record."""
    options = {**process.local_options(model_dir), "scene_weights": str(model_dir / "not-fetched.pth.tar")}
    bare = process.ProcessCaptioner(options)
    try:
        with caplog.at_level("WARNING", logger="tailorset.captioners.local"):
            bare.load()
        assert "tailorset models fetch" in caplog.text
        assert "cat" in bare.caption(photos["chelsea.png"], LEGACY).text
    finally:
        bare.close()


def test_a_captioner_error_in_the_child_is_a_captioner_error_here(tmp_path):
    not_a_directory = tmp_path / "models"
    not_a_directory.write_text("a file where the model directory should be")
    broken = process.ProcessCaptioner(process.local_options(not_a_directory))
    try:
        with pytest.raises(CaptionerError, match="could not build the classifier model"):
            broken.load()
    finally:
        broken.close()


def test_a_child_killed_while_idle_is_replaced_at_the_next_caption(child, photos):
    first = child.caption(photos["chelsea.png"], LEGACY)
    killed = child.pid
    os.kill(killed, signal.SIGKILL)
    wait_until(lambda: child.pid is None, 10, "the child is gone")
    assert child.caption(photos["chelsea.png"], LEGACY) == first
    assert child.pid not in (None, killed)


def test_a_child_killed_mid_caption_fails_that_caption_and_the_next_one_works(child, photos, caplog):
    child.load()
    stopped = child.pid
    os.kill(stopped, signal.SIGSTOP)  # the caption below is sent to a child that cannot answer it
    failed: list[str] = []

    def caption() -> None:
        with pytest.raises(CaptionerError) as raised:
            child.caption(photos["chelsea.png"], LEGACY)
        failed.append(str(raised.value))

    waiting = threading.Thread(target=caption)
    waiting.start()
    pipes = child._child.free  # the pipes no call is using: the caption took one once it is empty
    wait_until(lambda: pipes.qsize() < child.slots, 10, "the caption took a pipe")
    os.kill(stopped, signal.SIGKILL)
    waiting.join(30)
    assert failed == ["The captioner's process stopped (killed by signal 9) while it worked."]
    assert "the next caption starts another" in caplog.text
    assert "cat" in child.caption(photos["chelsea.png"], LEGACY).text
    assert child.pid != stopped


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return [int(child) for task in tasks for child in (task / "children").read_text().split()]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_server_holds_no_model_and_its_child_dies_with_it(env):
    """A real `tailorset serve`: its upload is captioned by its child, which alone maps ONNX Runtime and OpenCV;
    kill -9 the server and the child, its pipes closed, exits too."""
    headers = {"api_token": new_token(None, "acme")}
    server = ServerProcess()
    try:
        api = httpx.Client(base_url=server.base + "/tailored-gen", headers=headers, timeout=120)
        project = api.post("/projects", json={"project_name": "P", "ip_medium": "photography", "ip_type": "other"})
        dataset = api.post("/datasets", json={"project_id": project.json()["id"], "name": "D"}).json()["id"]
        uploaded = api.post(f"/datasets/{dataset}/images", files={"file": ("cat.png", photo("chelsea.png"))})
        assert uploaded.status_code == 201 and "cat" in uploaded.json()["caption"]
        pid = server.process.pid
        (child,) = _children(pid)
        assert b"tailorset.captioners.process" in Path(f"/proc/{child}/cmdline").read_bytes()
        assert "onnxruntime" in Path(f"/proc/{child}/maps").read_text()
        server_maps = Path(f"/proc/{pid}/maps").read_text()
        assert "onnxruntime" not in server_maps and "cv2" not in server_maps
        server.kill()
        wait_until(lambda: not Path(f"/proc/{child}").exists() or _zombie(child), 10, "the child exited")
    finally:
        server.stop()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_an_idle_child_is_stopped_and_the_next_caption_starts_another(model_dir, photos, caplog):
    """TAILORSET_CAPTIONER_IDLE_SECONDS: the child's memory is given back after that long without a caption; a
    caption under way (here one the child cannot answer yet: it is stopped) keeps it, however long it takes."""
    idle = process.ProcessCaptioner(process.local_options(model_dir), idle_seconds=1)
    try:
        first = idle.caption(photos["chelsea.png"], LEGACY)
        started = idle.pid
        caplog.set_level("INFO", logger="tailorset.captioners.process")
        wait_until(lambda: idle.pid is None, 20, "the idle child was stopped")
        # logged once the child has exited, a moment after it stopped being the one in use
        wait_until(lambda: "after 1 s without a caption" in caplog.text, 10, "the idle stop was logged")
        assert idle.caption(photos["chelsea.png"], LEGACY) == first
        busy = idle.pid
        assert busy not in (None, started)
        os.kill(busy, signal.SIGSTOP)
        answered: list = []
        waiting = threading.Thread(target=lambda: answered.append(idle.caption(photos["chelsea.png"], LEGACY)))
        waiting.start()
        time.sleep(3)  # three idle periods, with a caption under way
        assert idle.pid == busy
        os.kill(busy, signal.SIGCONT)
        waiting.join(30)
        assert answered == [first]
    finally:
        idle.close()
