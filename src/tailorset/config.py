"""Every TAILORSET_* setting in one place."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SetupError(RuntimeError):
    """A setting names something that is not there or will not let us in (a database, a bucket): one sentence
    that says what and how to fix it, for the command line to print instead of a traceback."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TAILORSET_", extra="ignore")

    data_dir: Path = Field(
        Path("./tailorset-data"), description="The SQLite database, the image files and the model cache."
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; PostgreSQL e.g. postgresql://user@host/db. Default: SQLite in data_dir."
    )
    public_url: str | None = Field(
        None,
        description="Base URL clients reach the service at; image URLs are built from it. "
        "Default: taken from each request.",
    )
    captioner: str = Field("local", description="Captioner backend: local, openai or transformers.")
    captioner_model: str | None = Field(
        None, description="openai: the model name; transformers: the path of a local model directory."
    )
    openai_base_url: str = Field(
        "http://127.0.0.1:11434/v1", description="Any OpenAI-compatible endpoint: vLLM, Ollama, LM Studio, OpenAI."
    )
    openai_api_key: str | None = Field(None, description="Sent as a Bearer token, if set.")
    captioner_timeout_seconds: float = Field(60.0, description="Per request to a remote captioner.")
    captioner_max_retries: int = Field(3, description="Retries on timeouts, 429 and 5xx.")
    preload_captioner: bool = Field(
        True, description="Load the captioner's models in the background when the server starts, so that the "
        "first upload does not wait (the first start builds the classifier's ONNX model, 1–2 s)."
    )
    captioner_process: bool = Field(
        True, description="Run the local captioner in a child process of its own (Linux, macOS): its models "
        "(~200 MB) stay out of the server's memory, and a crash in them cannot take the server down. false: in the "
        "server process."
    )
    captioner_idle_seconds: float = Field(
        0, ge=0, description="Stop the captioner's process after this many seconds without a caption, giving its "
        "memory (~220 MB) back; the next caption starts it again (1–2 s). 0: keep it running."
    )
    model_dir: Path | None = Field(None, description="Where model files are cached. Default: data_dir/models.")
    redis_url: str | None = Field(
        None, description="Redis, to share rate limits between several server processes (one budget)."
    )
    rate_limit_default: str = Field("60/minute", description="Per organization and endpoint, for the default plan.")
    rate_limits_enabled: bool = Field(True, description="Answer 429 over the limits; false turns them off.")
    token_cache_seconds: float = Field(
        5.0, description="How long a process remembers a token lookup; a revoked token works at most this long."
    )

    max_upload_bytes: int = Field(25 * 1024 * 1024, description="Largest image accepted, in bytes.")
    max_image_pixels: int = Field(
        50_000_000, description="Largest decoded image (width × height) accepted: well above a camera's 24–45 MP."
    )
    min_image_side: int = Field(256, description="Smallest width or height accepted when increase_resolution.")
    training_image_side: int = Field(1024, description="Smallest side required when increase_resolution=false.")
    thumbnail_size: int = Field(256, description="Longest side of a thumbnail, in pixels.")
    max_caption_chars: int = Field(20_000, description="Longest caption accepted.")
    max_images_per_dataset: int = Field(200, description="Image limit of a basic dataset (Bria: 200).")
    max_images_per_advanced_dataset: int = Field(5000, description="Image limit of an advanced dataset (Bria: 5000).")
    max_zip_bytes: int = Field(5 * 1024**3, description="Largest ZIP a bulk upload accepts (Bria: 5 GB).")
    max_zip_entries: int = Field(10_000, description="Most files in a bulk upload's ZIP (images and .txt captions).")
    max_zip_uncompressed_bytes: int = Field(
        20 * 1024**3, description="Largest total a bulk upload's ZIP may unpack to, as its entries declare."
    )
    fetch_timeout_seconds: float = Field(15.0, description="Timeout for downloading an image_url.")
    allow_private_image_urls: bool = Field(
        False, description="Let image_url point at loopback/private addresses (off: SSRF protection)."
    )
    image_url_allowed_networks: str = Field(
        "", description="Private networks image_url may reach anyway, comma-separated, e.g. 10.8.0.0/16."
    )
    tombstone_retention_days: float = Field(
        30.0, description="How long a deleted dataset, image or project answers 410 Gone; 404 after that."
    )

    @field_validator("image_url_allowed_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        from tailorset.fetch import parse_networks

        parse_networks(value)  # a typo fails at start-up, not on the first upload
        return value

    storage: Literal["local", "s3"] = Field(
        "local", description="Where new image files go: local (under data_dir/files) or s3 (the bucket below)."
    )
    s3_bucket: str | None = Field(None, description="The S3 bucket; setting it makes the s3 backend available.")
    s3_prefix: str = Field("", description="A prefix for every key in the bucket, to share a bucket (e.g. prod/).")
    s3_endpoint_url: str | None = Field(
        None, description="An S3-compatible server (SeaweedFS, MinIO, R2…) as this process reaches it. Default: AWS."
    )
    s3_public_endpoint_url: str | None = Field(
        None, description="The endpoint clients reach for pre-signed image URLs. Default: s3_endpoint_url."
    )
    s3_region: str | None = Field(None, description="The bucket's region. Default: boto3's (AWS_REGION, ~/.aws).")
    s3_access_key_id: str | None = Field(None, description="Default: boto3's credential chain (AWS_*, IAM role…).")
    s3_secret_access_key: str | None = Field(None, description="Goes with s3_access_key_id.")
    s3_url_lifetime_seconds: int = Field(
        3600, ge=60, le=7 * 24 * 3600, description="How long a pre-signed image URL stays valid (S3 allows 7 days)."
    )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tailorset.db').resolve()}"

    log_level: str = Field("info", description="debug, info, warning or error.")
    log_format: str = Field("text", description="text, or json: one JSON object per line with the request id.")
    embedded_worker: bool = Field(True, description="Run background jobs inside the API process.")
    job_lease_seconds: float = Field(30.0, description="How long a worker may go silent before its job is retried.")
    jobs_per_organization: int = Field(
        1,
        ge=1,
        description="Jobs of one organization run at once, across all workers (each runs 2); raise it when many "
        "workers serve few organizations.",
    )

    @property
    def tombstone_retention(self) -> timedelta:
        return timedelta(days=self.tombstone_retention_days)

    @property
    def job_lease(self) -> timedelta:
        return timedelta(seconds=self.job_lease_seconds)

    @property
    def resolved_model_dir(self) -> Path:
        return self.model_dir or self.data_dir / "models"

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"


def _default(value) -> str:
    if value is None:
        return "unset"
    if value == "":
        return "empty"
    if isinstance(value, Path) and not value.is_absolute():
        return f"`./{value}`"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) and value >= 1024**2 and value % 1024**2 == 0:
        return f"{value // 1024**3} GiB" if value % 1024**3 == 0 else f"{value // 1024**2} MiB"
    if isinstance(value, float):
        return f"{value:g}"
    return f"`{value}`" if isinstance(value, str | Path) else str(value)


def settings_table() -> str:
    """The README's table of settings, made from this class (tests/test_readme_settings.py keeps them equal;
    `python -m tailorset.config` prints it)."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        cells = (f"`TAILORSET_{name.upper()}`", _default(field.default), field.description or "")
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
