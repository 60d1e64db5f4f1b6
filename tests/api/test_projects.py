"""Projects: POST, GET list, GET one, PUT, DELETE."""

from tests.support import every_storage, stored_keys


def test_create_returns_the_project(api):
    response = api.post(
        "/tailored-gen/projects",
        json={"project_name": "Mascot", "ip_medium": "illustration", "ip_type": "defined_character",
              "ip_name": "Zed", "ip_description": "a green fox", "project_description": "our fox"},
    )  # fmt: skip
    assert response.status_code == 201
    body = response.json()
    assert body["project_name"] == "Mascot" and body["ip_name"] == "Zed" and body["status"] == "active"
    assert body["training_version"] is None
    assert isinstance(body["id"], int) and body["created_at"].endswith("Z")


def test_create_validates_fields_and_names_them(api):
    cases = [
        ({"ip_medium": "photography", "ip_type": "other"}, "project_name is required."),
        ({"project_name": "x", "ip_medium": "video", "ip_type": "other"}, "ip_medium must be"),
        ({"project_name": "x", "ip_medium": "photography", "ip_type": "icons"}, "only with ip_medium 'illustration'"),
        ({"project_name": "x", "ip_medium": "illustration", "ip_type": "defined_character", "ip_description": "d"},
         "ip_name is required"),
        ({"project_name": 5, "ip_medium": "photography", "ip_type": "other"}, "project_name must be a valid string"),
        ({"project_name": "x", "ip_medium": "photography", "ip_type": "other", "training_version": "v9"},
         "training_version must be"),
    ]  # fmt: skip
    for body, message in cases:
        response = api.post("/tailored-gen/projects", json=body)
        assert response.status_code == 400, body
        assert message in response.json()["error"], response.json()
    assert api.get("/tailored-gen/projects").json() == []


def test_malformed_json_is_a_400(api):
    response = api.post("/tailored-gen/projects", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"error": "The request body is not valid JSON."}


def test_list_get_update(api):
    first, second = api.project(project_name="A"), api.project(project_name="B")
    assert [p["project_name"] for p in api.get("/tailored-gen/projects").json()] == ["A", "B"]
    assert api.get(f"/tailored-gen/projects/{second['id']}").json() == second

    response = api.put(f"/tailored-gen/projects/{first['id']}", json={"project_name": "A2", "ip_description": "d"})
    assert response.status_code == 200
    updated = response.json()
    assert updated["project_name"] == "A2" and updated["ip_description"] == "d"
    assert updated["created_at"] == first["created_at"] and updated["updated_at"] > first["updated_at"]

    response = api.put(f"/tailored-gen/projects/{first['id']}", json={"ip_medium": "illustration"})
    assert response.status_code == 400
    assert response.json()["error"] == "ip_medium cannot be changed after the project is created."


@every_storage
def test_delete_removes_everything_under_it_and_leaves_a_tombstone(api, settings):
    dataset = api.dataset()
    api.upload(dataset["id"])
    project_id = dataset["project_id"]
    assert api.delete(f"/tailored-gen/projects/{project_id}").status_code == 204
    assert api.get(f"/tailored-gen/projects/{project_id}").status_code == 410
    assert api.get(f"/tailored-gen/datasets/{dataset['id']}").status_code == 410
    assert api.delete(f"/tailored-gen/projects/{project_id}").status_code == 410
    assert api.get("/tailored-gen/projects").json() == []
    assert api.get("/tailored-gen/datasets").json() == []
    assert api.get("/tailored-gen/projects/999").status_code == 404
    assert stored_keys(settings) == []  # its image files are gone
