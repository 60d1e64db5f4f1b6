"""/tailored-gen/projects"""

from fastapi import APIRouter, Response

from tailorset.api.body_limit import ApiRoute
from tailorset.api.deps import Org, PathId, Svc
from tailorset.api.present import Presenter
from tailorset.api.responses import errors
from tailorset.schemas import ProjectCreate, ProjectOut, ProjectUpdate
from tailorset.services import projects

router = APIRouter(prefix="/tailored-gen/projects", tags=["Projects"], route_class=ApiRoute)


@router.post("", status_code=201, response_model=ProjectOut, responses=errors(400), summary="Create Project")
async def create_project(body: ProjectCreate, org: Org, services: Svc):
    return Presenter.project(await projects.create(services, org, body.model_dump()))


@router.get("", response_model=list[ProjectOut], responses=errors(), summary="Get Projects")
async def list_projects(org: Org, services: Svc):
    return [Presenter.project(p) for p in await projects.list_all(services, org)]


@router.get("/{project_id}", response_model=ProjectOut, responses=errors(400, 404, 410), summary="Get Project")
async def get_project(project_id: PathId, org: Org, services: Svc):
    return Presenter.project(await projects.get(services, org, project_id))


@router.put("/{project_id}", response_model=ProjectOut, responses=errors(400, 404, 410), summary="Update Project")
async def update_project(project_id: PathId, body: ProjectUpdate, org: Org, services: Svc):
    return Presenter.project(await projects.change(services, org, project_id, body.model_dump(exclude_unset=True)))


@router.delete(
    "/{project_id}", status_code=204, responses=errors(400, 404, 410), summary="Delete Project",
    description="Deletes the project with all its datasets and images.",
)  # fmt: skip
async def delete_project(project_id: PathId, org: Org, services: Svc):
    await projects.delete(services, org, project_id)
    return Response(status_code=204)
