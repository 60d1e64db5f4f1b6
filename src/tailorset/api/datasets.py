"""/tailored-gen/datasets and /tailored-gen/projects/{project_id}/datasets"""

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, Response

from tailorset.api.body_limit import ApiRoute
from tailorset.api.deps import Include, Org, PathId, Svc, Who
from tailorset.api.present import Presenter
from tailorset.api.responses import errors
from tailorset.domain import lifecycle
from tailorset.schemas import DatasetClone, DatasetCreate, DatasetOut, DatasetUpdate, DatasetWithImagesOut
from tailorset.services import datasets, review

router = APIRouter(prefix="/tailored-gen", tags=["Datasets"], route_class=ApiRoute)


@router.post(
    "/datasets", status_code=201, response_model=DatasetOut, responses=errors(400, 404, 409, 410),
    summary="Create Dataset",
    description="Creates a draft dataset. Legacy datasets get a default caption_prefix from their project; "
    "409 if the project is locked to the other training family (FIBO vs legacy).",
)  # fmt: skip
async def create_dataset(body: DatasetCreate, org: Org, services: Svc, request: Request):
    return Presenter(request).dataset(await datasets.create(services, org, body.model_dump()))


@router.get("/datasets", response_model=list[DatasetOut], responses=errors(), summary="Get Datasets")
async def list_datasets(org: Org, services: Svc, request: Request):
    present = Presenter(request)
    return [present.dataset(view) for view in await datasets.list_all(services, org)]


@router.get(
    "/projects/{project_id}/datasets", response_model=list[DatasetOut], responses=errors(400, 404, 410),
    summary="Get Datasets by Project",
)  # fmt: skip
async def list_project_datasets(project_id: PathId, org: Org, services: Svc, request: Request):
    present = Presenter(request)
    return [present.dataset(view) for view in await datasets.list_all(services, org, project_id)]


@router.get(
    "/datasets/{dataset_id}", response_model=DatasetWithImagesOut, response_model_exclude_unset=True,
    responses=errors(400, 404, 410),
    summary="Get Dataset by ID",
)  # fmt: skip
async def get_dataset(
    dataset_id: PathId,
    org: Org,
    services: Svc,
    request: Request,
    max_images: Annotated[int, Query(ge=1, le=200, description="How many images to include.")] = 200,
    include: Include = frozenset(),
):
    present = Presenter(request, include)
    return present.response(present.dataset(await datasets.get(services, org, dataset_id, max_images)))


# Completing is never refused for want of review (Bria does not refuse it); these headers say what was left.
REVIEW_HEADERS = {
    "X-Unreviewed-Captions": {
        "description": 'With `"status": "completed"`: how many automatic captions nobody reviewed (tailorset).',
        "schema": {"type": "integer"},
    },
    "X-Flagged-Images": {
        "description": 'With `"status": "completed"`: how many images are flagged for attention (tailorset).',
        "schema": {"type": "integer"},
    },
}


@router.put(
    "/datasets/{dataset_id}", response_model=DatasetOut,
    responses={200: {"description": "The dataset.", "headers": REVIEW_HEADERS}, **errors(400, 404, 409, 410)},
    summary="Update Dataset",
    description="Rename, set caption_prefix (legacy) or visual_schema (FIBO) while draft, or complete it with "
    '`{"status": "completed"}` (needs ≥ 1 image, ≥ 5 for FIBO). A completed dataset is frozen: 409. Completing '
    "answers with the headers X-Unreviewed-Captions and X-Flagged-Images (the body stays Bria's).",
)  # fmt: skip
async def update_dataset(
    dataset_id: PathId, body: DatasetUpdate, org: Org, services: Svc, request: Request, response: Response
):
    view = await datasets.change(services, org, dataset_id, body.model_dump(exclude_unset=True))
    if body.status == lifecycle.COMPLETED:
        counts = await review.counts(services, org, dataset_id)
        response.headers["X-Unreviewed-Captions"] = str(counts["unreviewed_automatic"])
        response.headers["X-Flagged-Images"] = str(counts["flagged"])
    return Presenter(request).dataset(view)


@router.delete("/datasets/{dataset_id}", status_code=204, responses=errors(400, 404, 410), summary="Delete Dataset")
async def delete_dataset(dataset_id: PathId, org: Org, services: Svc):
    await datasets.delete(services, org, dataset_id)
    return Response(status_code=204)


@router.post(
    "/datasets/{dataset_id}/clone", status_code=201, response_model=DatasetWithImagesOut,
    responses=errors(400, 404, 410), summary="Clone Dataset As Draft",
    description="A new draft dataset with the same settings, images, captions and caption sources.",
)  # fmt: skip
async def clone_dataset(
    dataset_id: PathId,
    caller: Who,
    services: Svc,
    request: Request,
    body: Annotated[DatasetClone | None, Body()] = None,
):
    view = await datasets.clone(services, caller.org_id, dataset_id, body.name if body else None, caller.actor)
    return Presenter(request).dataset(view)
