"""Projects: create, read, update, delete (with everything under them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tailorset.db import repository as repo
from tailorset.db.models import Project, utcnow
from tailorset.domain.errors import Invalid
from tailorset.services import Services
from tailorset.services.files import delete_unreferenced

# Bria documents these project types as available only for illustrations.
ILLUSTRATION_ONLY = {"object_variants", "multi_object_set", "icons", "character_variants"}


def _check_ip_fields(ip_medium: str, ip_type: str, ip_name: str | None, ip_description: str | None) -> None:
    if ip_type in ILLUSTRATION_ONLY and ip_medium != "illustration":
        raise Invalid(f"ip_type {ip_type!r} is available only with ip_medium 'illustration'.")
    if ip_type == "defined_character" and not ip_name:
        raise Invalid("ip_name is required when ip_type is 'defined_character'.")
    if ip_type in ("defined_character", "object_variants") and not ip_description:
        raise Invalid(f"ip_description is required when ip_type is {ip_type!r}.")


async def create(services: Services, org_id: int, fields: Mapping[str, Any]) -> Project:
    """A new project from its fields (project_name, ip_medium, ip_type…, as validated by the API)."""
    _check_ip_fields(fields["ip_medium"], fields["ip_type"], fields.get("ip_name"), fields.get("ip_description"))
    async with services.db.write() as session:
        project = Project(organization_id=org_id, **fields)
        session.add(project)
    return project


async def get(services: Services, org_id: int, project_id: int) -> Project:
    async with services.db.read() as session:
        return await repo.get_project(session, org_id, project_id)


async def list_all(services: Services, org_id: int) -> Sequence[Project]:
    async with services.db.read() as session:
        return await repo.list_projects(session, org_id)


async def change(services: Services, org_id: int, project_id: int, changes: Mapping[str, Any]) -> Project:
    """Apply the fields the request set (an absent field is left alone)."""
    changes = dict(changes)  # ip_medium and ip_type are taken out below: the caller's mapping stays as it was
    for fixed in ("ip_medium", "ip_type"):
        if changes.pop(fixed, None) is not None:
            raise Invalid(f"{fixed} cannot be changed after the project is created.")
    if "project_name" in changes and changes["project_name"] is None:
        del changes["project_name"]  # as for a dataset's name: null leaves it as it is (a project needs one)
    async with services.db.write() as session:
        project = await repo.get_project(session, org_id, project_id, for_update=True)
        merged = {"ip_name": project.ip_name, "ip_description": project.ip_description, **changes}
        _check_ip_fields(project.ip_medium, project.ip_type, merged["ip_name"], merged["ip_description"])
        for name, value in changes.items():
            setattr(project, name, value)
        project.updated_at = utcnow()
    return project


async def delete(services: Services, org_id: int, project_id: int) -> None:
    """Tombstone the project, its datasets and their images; then remove files nobody uses."""
    now = utcnow()
    async with services.db.write() as session:
        project = await repo.get_project(session, org_id, project_id, for_update=True)
        project.deleted_at = now
        datasets = [d.id for d in await repo.list_datasets(session, org_id, project_id)]
        await repo.tombstone_datasets(session, datasets, now)
        files = await repo.tombstone_images(session, datasets, now)
        orphans = await repo.unreferenced(session, files)
    await delete_unreferenced(services, orphans)
