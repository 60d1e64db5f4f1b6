"""Real concurrent requests, from threads, against a real `tailorset serve` socket, on both databases:
clients racing on one caption, and a dataset completed while caption updates are in flight."""

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import create_engine, text

from tailorset.db.engine import sync_url
from tests.conftest import make_database_url
from tests.servers import new_token, serve
from tests.support import photo


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(request, tmp_path_factory) -> str:
    return make_database_url(request, request.param, tmp_path_factory.mktemp("concurrency"))


@pytest.fixture(scope="module")
def http(database, tmp_path_factory, model_dir):
    """One server per database for the whole module (the tests use datasets of their own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAILORSET_")}
    env.update(
        TAILORSET_DATA_DIR=str(tmp_path_factory.mktemp("concurrency-data")), TAILORSET_DATABASE_URL=database,
        TAILORSET_MODEL_DIR=str(model_dir), TAILORSET_RATE_LIMIT_DEFAULT="100000/minute",
    )  # fmt: skip
    token = new_token(env, "acme")
    with serve(env) as server, httpx.Client(base_url=server.base + "/tailored-gen", headers={"api_token": token}) as c:
        yield c


def dataset_with_images(http: httpx.Client, count: int) -> tuple[int, list[int]]:
    project = http.post("/projects", json={"project_name": "P", "ip_medium": "photography", "ip_type": "other"})
    dataset = http.post("/datasets", json={"project_id": project.json()["id"], "name": "D"}).json()["id"]
    images = []
    for _ in range(count):
        uploaded = http.post(f"/datasets/{dataset}/images", files={"file": ("c.png", photo("chelsea.png"))}, timeout=60)
        assert uploaded.status_code == 201, uploaded.text
        images.append(uploaded.json()["id"])
    return dataset, images


def history(http: httpx.Client, dataset: int, image: int) -> list[str]:
    return [r["caption"] for r in http.get(f"/datasets/{dataset}/images/{image}/captions").json()]


def test_two_clients_updating_one_caption_at_once(http):
    dataset, (image,) = dataset_with_images(http, 1)
    url = f"/datasets/{dataset}/images/{image}"
    barrier = threading.Barrier(2)

    def edit(who: str, rounds: int = 10) -> list[httpx.Response]:
        with httpx.Client(base_url=http.base_url, headers=http.headers, timeout=60) as own:
            responses = []
            for n in range(rounds):
                barrier.wait()  # both requests leave together, every round
                responses.append(own.put(url, json={"caption": f"{who} {n}"}))
            return responses

    with ThreadPoolExecutor(2) as pool:
        results = dict(zip("ab", pool.map(edit, "ab"), strict=True))
    for who, responses in results.items():
        # Each client gets a consistent answer: its own caption, as stored.
        assert [r.status_code for r in responses] == [200] * 10
        assert [r.json()["caption"] for r in responses] == [f"{who} {n}" for n in range(10)]
    final = http.get(url).json()["caption"]
    assert final in ("a 9", "b 9")  # the stored state is one of theirs…
    revisions = history(http, dataset, image)
    assert revisions[-1] == final  # …the last one written, and no write was lost on the way
    assert sorted(revisions[1:]) == sorted(f"{who} {n}" for who in "ab" for n in range(10))


def test_no_caption_edit_lands_after_completion(http):
    dataset, images = dataset_with_images(http, 3)
    stop, completed = threading.Event(), threading.Event()
    answers: list[tuple[int, str, int]] = []  # (image, caption, status)

    def edit(worker: int) -> None:
        with httpx.Client(base_url=http.base_url, headers=http.headers, timeout=60) as own:
            n = 0
            while not stop.is_set():
                image, caption = images[(worker + n) % len(images)], f"w{worker} n{n}"
                response = own.put(f"/datasets/{dataset}/images/{image}", json={"caption": caption})
                answers.append((image, caption, response.status_code))
                n += 1

    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(edit, worker) for worker in range(6)]
        time.sleep(1.5)  # caption updates are in full flow…
        done = http.put(f"/datasets/{dataset}", json={"status": "completed"})
        completed.set()
        seen_at_completion = {image: history(http, dataset, image) for image in images}
        time.sleep(1.0)  # …and keep coming after the dataset is completed
        stop.set()
        for future in futures:
            future.result()

    assert done.status_code == 200, done.text
    statuses = {status for *_, status in answers}
    assert statuses == {200, 409}, statuses  # edits before completion, refusals after it, nothing else
    for image in images:
        revisions = history(http, dataset, image)
        assert revisions == seen_at_completion[image]  # nothing changed once completion had answered
        assert http.get(f"/datasets/{dataset}/images/{image}").json()["caption"] == revisions[-1]
        stored = set(revisions)
        for edited, caption, status in answers:
            if edited == image:
                assert (caption in stored) == (status == 200), (caption, status)  # a 409 changed nothing


def test_an_edit_waiting_on_a_completion_sees_it(http, database):
    """Completion holds the dataset row; a caption update arriving meanwhile waits, then answers 409.
    An update that checked the status before waiting (read, then write) would land after completion."""
    dataset, (image,) = dataset_with_images(http, 1)
    engine = create_engine(sync_url(database))
    outcome = {}
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # what any writer takes first on SQLite
        else:
            connection.execute(text("SELECT id FROM datasets WHERE id = :id FOR UPDATE"), {"id": dataset})
        editor = threading.Thread(
            target=lambda: outcome.update(
                response=http.put(f"/datasets/{dataset}/images/{image}", json={"caption": "late"}, timeout=60)
            )
        )
        editor.start()
        editor.join(timeout=1.5)
        assert editor.is_alive(), outcome  # the update waits for the completion in progress
        connection.execute(text("UPDATE datasets SET status = 'completed' WHERE id = :id"), {"id": dataset})
        connection.commit()
    editor.join(timeout=30)
    engine.dispose()
    assert outcome["response"].status_code == 409, outcome["response"].text
    assert "late" not in history(http, dataset, image)
