"""The error responses the OpenAPI document lists for each route (the bodies themselves: api/errors.py)."""

from __future__ import annotations

from tailorset.schemas import ErrorBody

ERROR_DESCRIPTIONS = {
    400: "The request is malformed; the message names the field.",
    401: "The api_token header is missing or not valid.",
    404: "No such resource in your organization.",
    409: "The resource's state forbids this, e.g. the dataset is completed.",
    410: "The resource existed and was deleted.",
    412: "The image is too small.",
    413: "The image (or the ZIP) is larger than the limit.",
    415: "The image is not a JPEG, PNG or WebP.",
    422: "The image_url (or zip_url) could not be fetched.",
    429: "Too many requests; see Retry-After.",
    500: "Internal error; nothing was changed.",
    501: "The configured captioner cannot do this; the message names the one to configure.",
}


def errors(*codes: int) -> dict:
    """OpenAPI `responses` for these status codes plus those every authenticated route can give."""
    return {
        code: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[code]} for code in sorted({*codes, 401, 429, 500})
    }
