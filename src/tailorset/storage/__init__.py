"""Where image files live. `Storage` is the seam; `LocalStorage` is the default backend, `S3Storage`
(boto3, imported only when configured) the one for several hosts."""

from __future__ import annotations

from tailorset.config import Settings
from tailorset.storage.base import ServesUrls, Storage
from tailorset.storage.local import LocalStorage

__all__ = ["Storage", "ServesUrls", "LocalStorage", "open_stores"]


async def open_stores(settings: Settings) -> dict[str, Storage]:
    """Every backend this process is configured for, by the name image rows record: `local` always
    (files written before a move to S3 stay readable), `s3` when a bucket is set."""
    stores: dict[str, Storage] = {"local": LocalStorage(settings.files_dir)}
    if settings.s3_bucket:
        from tailorset.storage.s3 import S3Storage

        s3 = S3Storage(
            settings.s3_bucket,
            prefix=settings.s3_prefix,
            endpoint_url=settings.s3_endpoint_url,
            public_endpoint_url=settings.s3_public_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            url_lifetime_seconds=settings.s3_url_lifetime_seconds,
        )
        await s3.ensure_bucket()
        stores["s3"] = s3
    if settings.storage not in stores:
        raise ValueError(f"TAILORSET_STORAGE={settings.storage} needs TAILORSET_S3_BUCKET (and its endpoint).")
    return stores
