"""Datasets: create, list, get with images, update, complete (and the freeze), clone, delete."""

from tests.support import download, every_storage, photo, stored_keys


def test_create_starts_a_draft_with_a_default_prefix(api):
    project = api.project(project_name="Cats", ip_medium="photography")
    response = api.post("/tailored-gen/datasets", json={"project_id": project["id"], "name": "v1"})
    assert response.status_code == 201
    body = response.json()
    expected = {
        "project_id": project["id"], "name": "v1", "training_version": "max", "caption_prefix": "A photo of",
        "visual_schema": None, "status": "draft", "captions_update_status": "empty", "upload_type": "basic",
        "images_count": 0,
    }  # fmt: skip
    assert {k: body[k] for k in expected} == expected


def test_a_fibo_dataset_has_no_prefix_and_locks_its_project(api):
    project = api.project()
    fibo = api.dataset(project["id"], training_version="fibo")
    assert fibo["caption_prefix"] is None and fibo["training_version"] == "fibo"
    assert api.get(f"/tailored-gen/projects/{project['id']}").json()["training_version"] == "fibo"

    response = api.post(
        "/tailored-gen/datasets", json={"project_id": project["id"], "name": "x", "training_version": "max"}
    )
    assert response.status_code == 409
    assert "locked to fibo" in response.json()["error"]
    # Legacy versions mix freely inside a legacy project.
    legacy = api.project(training_version="light")
    assert api.dataset(legacy["id"], training_version="2.3")["training_version"] == "2.3"


def test_create_needs_a_live_project_of_ones_own(api, other_api):
    assert api.post("/tailored-gen/datasets", json={"project_id": 12345, "name": "x"}).status_code == 404
    theirs = other_api.project()
    assert api.post("/tailored-gen/datasets", json={"project_id": theirs["id"], "name": "x"}).status_code == 404
    response = api.post("/tailored-gen/datasets", json={"project_id": "1", "name": "x"})
    assert response.status_code == 400 and "project_id" in response.json()["error"]


def test_lists(api):
    project = api.project()
    a, b = api.dataset(project["id"], name="a"), api.dataset(project["id"], name="b")
    other = api.dataset(name="c")
    api.upload(a["id"])
    listed = api.get("/tailored-gen/datasets").json()
    assert [(d["name"], d["images_count"]) for d in listed] == [("a", 1), ("b", 0), ("c", 0)]
    by_project = api.get(f"/tailored-gen/projects/{project['id']}/datasets").json()
    assert [d["id"] for d in by_project] == [a["id"], b["id"]]
    assert other["id"] not in [d["id"] for d in by_project]


def test_get_includes_images_up_to_max_images(api):
    dataset = api.dataset()
    uploaded = [api.upload(dataset["id"], name) for name in ("chelsea.png", "coffee.png", "astronaut.png")]
    body = api.get(f"/tailored-gen/datasets/{dataset['id']}").json()
    assert body["images_count"] == 3
    assert [i["id"] for i in body["images"]] == [i["id"] for i in uploaded]
    assert body["images"][0]["upload_source_url"] is None
    assert body["images"][0]["caption"] == uploaded[0]["caption"]
    two = api.get(f"/tailored-gen/datasets/{dataset['id']}", params={"max_images": 2}).json()
    assert len(two["images"]) == 2 and two["images_count"] == 3
    response = api.get(f"/tailored-gen/datasets/{dataset['id']}", params={"max_images": 201})
    assert response.status_code == 400 and "max_images" in response.json()["error"]


def test_update_name_and_prefix(api):
    dataset = api.dataset()
    response = api.put(
        f"/tailored-gen/datasets/{dataset['id']}", json={"name": "renamed", "caption_prefix": "sks style"}
    )
    assert response.status_code == 200
    assert response.json()["name"] == "renamed" and response.json()["caption_prefix"] == "sks style"
    image = api.upload(dataset["id"])
    assert image["caption"].startswith("sks style, ")


def test_fields_belong_to_their_training_family(api):
    legacy, fibo = api.dataset(), api.dataset(training_version="fibo")
    response = api.put(f"/tailored-gen/datasets/{fibo['id']}", json={"caption_prefix": "x"})
    assert response.status_code == 400 and "caption_prefix applies only to legacy" in response.json()["error"]
    response = api.put(f"/tailored-gen/datasets/{legacy['id']}", json={"visual_schema": '{"style": "flat"}'})
    assert response.status_code == 400 and "visual_schema applies only to FIBO" in response.json()["error"]


def test_visual_schema_must_be_a_json_object(api):
    fibo = api.dataset(training_version="fibo")
    response = api.put(f"/tailored-gen/datasets/{fibo['id']}", json={"visual_schema": '{"style": "flat",'})
    assert response.status_code == 400 and "visual_schema" in response.json()["error"]
    response = api.put(
        f"/tailored-gen/datasets/{fibo['id']}", json={"visual_schema": '{"style": "flat", "colors": "red"}'}
    )
    assert response.status_code == 200
    assert response.json()["visual_schema"] == '{"style":"flat","colors":"red"}'


def test_completion_needs_enough_images_and_freezes_the_dataset(api):
    dataset = api.dataset()
    url = f"/tailored-gen/datasets/{dataset['id']}"
    response = api.put(url, json={"status": "completed"})
    assert response.status_code == 409 and "needs at least 1" in response.json()["error"]
    image = api.upload(dataset["id"])

    response = api.put(url, json={"status": "completed"})
    assert response.status_code == 200 and response.json()["status"] == "completed"

    frozen = [
        api.put(url, json={"caption_prefix": "new"}),
        api.put(url, json={"status": "draft"}),
        api.post(f"{url}/images", json={"file": "aGVsbG8="}),
        api.delete(f"{url}/images/{image['id']}"),
        api.put(f"{url}/images/{image['id']}", json={"caption": "edited"}),
    ]
    assert [r.status_code for r in frozen] == [409] * 5
    assert all("completed" in r.json()["error"] for r in frozen)
    assert api.get(f"{url}/images/{image['id']}").json() == image
    assert api.put(url, json={"status": "completed"}).status_code == 200  # idempotent


def test_a_fibo_dataset_needs_five_images(api):
    dataset = api.dataset(training_version="fibo")
    for _ in range(4):
        api.upload(dataset["id"])
    response = api.put(f"/tailored-gen/datasets/{dataset['id']}", json={"status": "completed"})
    assert response.status_code == 409 and "needs at least 5" in response.json()["error"]
    api.upload(dataset["id"])
    assert api.put(f"/tailored-gen/datasets/{dataset['id']}", json={"status": "completed"}).status_code == 200


@every_storage
def test_clone_is_a_draft_copy_with_images_captions_and_sources(api):
    dataset = api.dataset()
    first, second = api.upload(dataset["id"], "chelsea.png"), api.upload(dataset["id"], "coffee.png")
    url = f"/tailored-gen/datasets/{dataset['id']}"
    api.put(f"{url}/images/{first['id']}", json={"caption": "a cat, edited by hand"})
    api.put(url, json={"status": "completed"})

    response = api.post(f"{url}/clone")
    assert response.status_code == 201
    clone = response.json()
    assert clone["status"] == "draft" and clone["name"] == "Copy of Set" and clone["id"] != dataset["id"]
    assert clone["images_count"] == 2 and clone["caption_prefix"] == dataset["caption_prefix"]
    assert [(i["caption"], i["caption_source"]) for i in clone["images"]] == [
        ("a cat, edited by hand", "manual"),
        (second["caption"], "automatic"),
    ]
    # The clone is editable and independent of its completed source.
    clone_image = clone["images"][0]
    edit = api.put(f"/tailored-gen/datasets/{clone['id']}/images/{clone_image['id']}", json={"caption": "changed"})
    assert edit.status_code == 200
    assert api.get(f"{url}/images/{first['id']}").json()["caption"] == "a cat, edited by hand"
    named = api.post(f"{url}/clone", json={"name": "v2"}).json()
    assert named["name"] == "v2"


@every_storage
def test_clone_shares_files_until_the_last_user_is_deleted(api, client, settings):
    dataset = api.dataset()
    image = api.upload(dataset["id"])
    clone = api.post(f"/tailored-gen/datasets/{dataset['id']}/clone").json()
    assert api.delete(f"/tailored-gen/datasets/{dataset['id']}").status_code == 204
    clone_image = clone["images"][0]
    assert download(client, clone_image["image_url"]).content == photo("chelsea.png")
    assert download(client, clone_image["thumbnail_url"]).status_code == 200
    assert api.delete(f"/tailored-gen/datasets/{clone['id']}/images/{clone_image['id']}").status_code == 204
    assert download(client, image["image_url"]).status_code == 404
    assert stored_keys(settings) == []


def test_delete_leaves_tombstones(api):
    dataset = api.dataset()
    image = api.upload(dataset["id"])
    url = f"/tailored-gen/datasets/{dataset['id']}"
    assert api.delete(url).status_code == 204
    for response in (api.get(url), api.get(f"{url}/images"), api.get(f"{url}/images/{image['id']}"), api.delete(url)):
        assert response.status_code == 410
        assert "was deleted" in response.json()["error"]
    assert api.get("/tailored-gen/datasets/99999").status_code == 404
