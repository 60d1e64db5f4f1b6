"""The published OpenAPI document describes every endpoint and the status codes it really gives."""


def test_openapi_documents_every_endpoint(client):
    doc = client.get("/openapi.json").json()
    operations = {(method.upper(), path) for path, item in doc["paths"].items() for method in item}
    expected = {
        ("POST", "/tailored-gen/projects"), ("GET", "/tailored-gen/projects"),
        ("GET", "/tailored-gen/projects/{project_id}"), ("PUT", "/tailored-gen/projects/{project_id}"),
        ("DELETE", "/tailored-gen/projects/{project_id}"),
        ("POST", "/tailored-gen/datasets"), ("GET", "/tailored-gen/datasets"),
        ("GET", "/tailored-gen/projects/{project_id}/datasets"), ("GET", "/tailored-gen/datasets/{dataset_id}"),
        ("PUT", "/tailored-gen/datasets/{dataset_id}"), ("DELETE", "/tailored-gen/datasets/{dataset_id}"),
        ("POST", "/tailored-gen/datasets/{dataset_id}/clone"),
        ("POST", "/tailored-gen/datasets/{dataset_id}/images"), ("GET", "/tailored-gen/datasets/{dataset_id}/images"),
        ("GET", "/tailored-gen/datasets/{dataset_id}/images/{image_id}"),
        ("PUT", "/tailored-gen/datasets/{dataset_id}/images/{image_id}"),
        ("DELETE", "/tailored-gen/datasets/{dataset_id}/images/{image_id}"),
        ("POST", "/tailored-gen/datasets/{dataset_id}/images/bulk-upload"),
        ("GET", "/tailored-gen/datasets/{dataset_id}/images/bulk-upload/status"),
        ("GET", "/tailored-gen/datasets/{dataset_id}/export"),
    }  # fmt: skip
    assert expected <= operations
    assert [server["url"] for server in doc["servers"]] == ["/", "/v1", "/v2"]
    assert doc["components"]["securitySchemes"]["APIKeyHeader"] == {
        "type": "apiKey", "in": "header", "name": "api_token",
        "description": "Your organization's API token (`tailorset token create`).",
    }  # fmt: skip


def test_update_image_caption_documents_the_spec(client):
    operation = client.get("/openapi.json").json()["paths"]["/tailored-gen/datasets/{dataset_id}/images/{image_id}"][
        "put"
    ]
    assert set(operation["responses"]) == {"200", "400", "401", "404", "409", "410", "429", "500"}
    assert operation["responses"]["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert "CaptionUpdate" in str(body)


def test_no_endpoint_documents_fastapis_422(client):
    """Validation errors are 400 here; a documented 422 means an image_url (or zip_url) that could not be fetched."""
    doc = client.get("/openapi.json").json()
    with_422 = set()
    for path, item in doc["paths"].items():
        for operation in item.values():
            for code, response in operation["responses"].items():
                if int(code) >= 400 and path.startswith("/tailored-gen/"):
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/ErrorBody"
                    }
            if "422" in operation["responses"]:
                with_422.add(path)
    assert with_422 == {
        "/tailored-gen/datasets/{dataset_id}/images",
        "/tailored-gen/datasets/{dataset_id}/images/bulk-upload",
        "/tailored-gen/generate_prefix",
        "/tailored-gen/generate_visual_schema",
        "/tailored-gen/refine_structured_prompt",  # its context_images may be URLs
    }
    assert "HTTPValidationError" not in doc["components"]["schemas"]
