"""Typed domain errors. The HTTP layer maps each type to one status code, in one table."""

from __future__ import annotations


class DomainError(Exception):
    """Base class. `message` is one sentence a client can show to a person."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Invalid(DomainError):
    """The request is malformed or breaks a rule about its own content (400)."""


class Unauthorized(DomainError):
    """No valid API token (401)."""


class NotFound(DomainError):
    """The resource does not exist, or belongs to another organization (404)."""


class Conflict(DomainError):
    """The resource's state forbids the operation, e.g. a completed dataset (409)."""


class Gone(DomainError):
    """The resource existed and was deleted (410)."""


class PreconditionFailed(DomainError):
    """The image is too small to train on (412)."""


class TooLarge(DomainError):
    """The upload is larger than the configured limit (413)."""


class UnsupportedMedia(DomainError):
    """The upload is not a JPEG, PNG or WebP image (415)."""


class Unprocessable(DomainError):
    """An image_url that cannot be fetched (422)."""


class NotSupported(DomainError):
    """The configured backend cannot do this; the message says which one can (501)."""


class RateLimited(DomainError):
    """Too many requests for this organization and endpoint (429)."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after
