"""tailorset.client's types against the server's OpenAPI document: every field the client reads is one the
server documents, with a type the client can hold (a nullable field is Optional in the client, a date-time is
parsed to datetime…), and the values the client names are values the server sends. A field renamed or retyped
on one side only fails here, not in a user's script. No server runs: the document is built from the app."""

from __future__ import annotations

import dataclasses
import re
import typing

import pytest

from tailorset import client
from tailorset.app import create_app
from tailorset.config import Settings

# Each client type, and the response schema it is parsed from.
CLIENT_TYPES = {
    client.Image: "ImageOut",
    client.Dataset: "DatasetOut",
    client.BulkUploadStatus: "BulkUploadStatus",
    client.FailedImage: "FailedImage",
    client.SkippedFile: "SkippedFile",
}
SCALARS = {"int": ({"integer"}, None), "str": ({"string"}, None), "float": ({"number", "integer"}, None),
           "bool": ({"boolean"}, None), "datetime": ({"string"}, "date-time")}  # fmt: skip


@pytest.fixture(scope="module")
def openapi(tmp_path_factory):
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), embedded_worker=False, preload_captioner=False)
    return create_app(settings).openapi()


def _alternatives(prop: dict) -> tuple[list[dict], bool]:
    """The property's non-null schemas, and whether null is allowed."""
    options = prop.get("anyOf", [prop])
    return [o for o in options if o.get("type") != "null"], any(o.get("type") == "null" for o in options)


def problems(cls: type, schema_name: str, schemas: dict) -> list[str]:
    """What in the client type `cls` the schema does not back."""
    schema, found = schemas[schema_name], []
    refs = {name: kind for kind, name in CLIENT_TYPES.items()}
    for field in dataclasses.fields(cls):
        where = f"{cls.__name__}.{field.name}"
        prop = schema["properties"].get(field.name)
        if prop is None:
            found.append(f"{where}: not in {schema_name}")
            continue
        annotation = str(field.type)
        optional = annotation.endswith(" | None")
        base = annotation.removesuffix(" | None")
        options, nullable = _alternatives(prop)
        if nullable and not optional:
            found.append(f"{where}: the server may send null, the client's type is {annotation}")
        if field.name not in schema.get("required", []) and not optional and field.name not in _DEFAULTED[cls]:
            found.append(f"{where}: the server may leave it out, the client's type is {annotation}")
        if tuple_of := re.fullmatch(r"tuple\[(\w+), \.\.\.\]", base):
            item = tuple_of.group(1)
            ok = any(
                o.get("type") == "array"
                and getattr(refs.get(o["items"].get("$ref", "").rsplit("/", 1)[-1]), "__name__", None) == item
                for o in options
                if "items" in o
            )
        elif base in SCALARS:
            types, fmt = SCALARS[base]
            ok = any(o.get("type") in types and (fmt is None or o.get("format") == fmt) for o in options)
        else:
            ok = False
        if not ok:
            found.append(f"{where}: {annotation} cannot hold the server's {prop}")
    return found


# Fields the client fills in itself when a server (Bria's) leaves them out: BulkUploadStatus.from_body.
_DEFAULTED = {kind: () for kind in CLIENT_TYPES} | {client.BulkUploadStatus: ("total", "skipped")}


@pytest.mark.parametrize("cls", CLIENT_TYPES, ids=lambda cls: cls.__name__)
def test_every_field_the_client_reads_is_in_the_openapi_schema(cls, openapi):
    assert problems(cls, CLIENT_TYPES[cls], openapi["components"]["schemas"]) == []


def test_a_field_the_server_does_not_send_is_caught(openapi):
    """The check itself: a client type with a field the server lacks, and one typed too narrowly."""

    @dataclasses.dataclass(frozen=True)
    class Image:
        id: int
        colour: str
        caption: str  # the server sends null for an image without a caption

    found = problems(Image, "ImageOut", openapi["components"]["schemas"])
    assert [line.split(":")[0] for line in found] == ["Image.colour", "Image.caption"]


def test_the_bulk_upload_statuses_the_client_knows_are_the_servers(openapi):
    statuses = openapi["components"]["schemas"]["BulkUploadStatus"]["properties"]["status"]["enum"]
    finished = [s for s in statuses if client.BulkUploadStatus.from_body({"status": s}).finished]
    assert finished == ["completed", "failed"]  # what wait_for_bulk_upload stops at: the two that end a job


def test_the_export_formats_the_client_offers_are_the_servers(openapi):
    route = openapi["paths"]["/tailored-gen/datasets/{dataset_id}/export"]["get"]
    param = next(p for p in route["parameters"] if p["name"] == "format")
    options, _ = _alternatives(param["schema"])
    assert set(typing.get_args(client.ExportFormat)) == {value for o in options for value in o.get("enum", ())}
