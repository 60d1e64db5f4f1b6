"""Objects in an S3 bucket: AWS, or any S3-compatible server (SeaweedFS, MinIO, Ceph, R2…).

boto3 blocks, so every call runs on a worker thread and the event loop never waits on the network.
Clients fetch files from the bucket directly, with pre-signed URLs."""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from urllib.parse import parse_qs, quote, urlsplit

import anyio

from tailorset.config import SetupError

CHUNK = 256 * 1024
# boto3 clients are thread-safe; give them as many connections as anyio has worker threads.
CONNECTIONS = 40
MAX_EXPIRY = 7 * 24 * 3600  # SigV4 pre-signed URLs live a week at most
MISSING = {"NoSuchKey", "404", "NotFound"}


class S3Storage:
    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        public_endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        url_lifetime_seconds: int = 3600,
    ):
        import boto3
        from botocore.config import Config

        self.bucket, self.prefix = bucket, prefix
        session = boto3.session.Session(
            aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key, region_name=region
        )
        config = Config(
            signature_version="s3v4",
            max_pool_connections=CONNECTIONS,
            retries={"mode": "standard", "max_attempts": 3},
            # S3-compatible servers are reached by one host name; AWS itself prefers bucket.host.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
        )
        self._client = session.client("s3", endpoint_url=endpoint_url, config=config)
        # Only asked once where clients reach the bucket, then let go (a boto3 client holds ~7 MB).
        public = self._client
        if public_endpoint_url and public_endpoint_url != endpoint_url:
            public = session.client("s3", endpoint_url=public_endpoint_url, config=config)
        credentials = session.get_credentials()
        if credentials is None:
            raise SetupError("No S3 credentials: set TAILORSET_S3_ACCESS_KEY_ID and TAILORSET_S3_SECRET_ACCESS_KEY.")
        self._presigner = Presigner(public, bucket, credentials.get_frozen_credentials, url_lifetime_seconds)

    async def _call(self, operation: str, **params):
        method = getattr(self._client, operation)
        try:
            return await anyio.to_thread.run_sync(functools.partial(method, Bucket=self.bucket, **params))
        except self._client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in MISSING:
                raise FileNotFoundError(params.get("Key", self.bucket)) from exc
            raise

    async def ensure_bucket(self) -> None:
        """Create the bucket on first start if it is missing (and we may); if it cannot be used, a SetupError
        that says why in one sentence."""
        from botocore.exceptions import BotoCoreError, ClientError

        where = f"The S3 bucket {self.bucket!r} at {self._client.meta.endpoint_url}"
        step = "reached"
        try:
            try:
                await self._call("head_bucket")
            except FileNotFoundError:
                step = "created"
                await self._call("create_bucket")
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "an error")
            if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden"):
                fix = "check TAILORSET_S3_ACCESS_KEY_ID and TAILORSET_S3_SECRET_ACCESS_KEY and what they may do"
            else:
                fix = "create it, or fix TAILORSET_S3_BUCKET"
            raise SetupError(f"{where} could not be {step} ({code}): {fix}.") from None
        except BotoCoreError as exc:
            raise SetupError(
                f"{where} could not be {step} ({exc}): start the S3 server, or fix TAILORSET_S3_ENDPOINT_URL."
            ) from None

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        # A PUT is atomic in S3: readers see the whole object or none. Objects never change.
        await self._call(
            "put_object", Key=self.prefix + key, Body=data, ContentType=content_type,
            CacheControl="private, max-age=31536000, immutable",
        )  # fmt: skip

    async def get(self, key: str) -> bytes:
        response = await self._call("get_object", Key=self.prefix + key)
        body = response["Body"]
        try:
            return await anyio.to_thread.run_sync(body.read)
        finally:
            body.close()

    async def stream(self, key: str) -> AsyncIterator[bytes]:
        body = (await self._call("get_object", Key=self.prefix + key))["Body"]
        try:
            while chunk := await anyio.to_thread.run_sync(body.read, CHUNK):
                yield chunk
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        await self._call("delete_object", Key=self.prefix + key)  # S3 answers 204 for a missing key too

    async def exists(self, key: str) -> bool:
        try:
            await self._call("head_object", Key=self.prefix + key)
        except FileNotFoundError:
            return False
        return True

    async def keys(self) -> AsyncIterator[str]:
        pages = iter(self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix))
        while page := await anyio.to_thread.run_sync(next, pages, None):
            for item in page.get("Contents", []):
                yield item["Key"][len(self.prefix) :]

    def url_for(self, key: str) -> str:
        return self._presigner.url(self.prefix + key)


class Presigner:
    """Pre-signed GET URLs (AWS Signature V4, query-string form), as botocore's generate_presigned_url
    makes them but ~50 times faster: botocore re-resolves the endpoint and re-derives the signing key
    for every URL (~0.7 ms each, 0.3 s for a page of 200 images and their thumbnails).

    The endpoint, addressing style and region are botocore's, learnt from one URL it signs. URLs are
    signed at the start of a window of a tenth of their lifetime and valid for lifetime + window, so
    the same file keeps the same URL for a while (browsers cache it) and every URL handed out is good
    for at least `lifetime` seconds."""

    def __init__(self, client, bucket: str, credentials: Callable, lifetime: int):
        probe = "tailorset-probe"
        parts = urlsplit(client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": probe}))
        self._origin, self._host = f"{parts.scheme}://{parts.netloc}", parts.netloc
        self._base_path = parts.path.removesuffix(probe)  # "/bucket/" (path style) or "/" (bucket.host)
        credential_scope = parse_qs(parts.query)["X-Amz-Credential"][0].split("/")
        self._region = credential_scope[2]
        self._credentials = credentials
        self.window = min(lifetime // 10, MAX_EXPIRY - lifetime)
        self.expires = lifetime + self.window
        self._keys: dict[tuple[str, str], bytes] = {}

    def url(self, key: str, now: float | None = None) -> str:
        now = time.time() if now is None else now
        signed_at = int(now) - int(now) % self.window if self.window else int(now)
        return self.sign(key, signed_at, self.expires)

    def sign(self, key: str, signed_at: int, expires: int) -> str:
        credentials = self._credentials()
        access_key, secret_key, token = credentials.access_key, credentials.secret_key, credentials.token
        moment = datetime.fromtimestamp(signed_at, UTC)
        amz_date, day = moment.strftime("%Y%m%dT%H%M%SZ"), moment.strftime("%Y%m%d")
        scope = f"{day}/{self._region}/s3/aws4_request"
        query = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": f"{access_key}/{scope}",
            "X-Amz-Date": amz_date,
            "X-Amz-Expires": str(expires),
            "X-Amz-SignedHeaders": "host",
        }
        if token:
            query["X-Amz-Security-Token"] = token
        query_string = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query.items()))
        path = quote(self._base_path + key, safe="/-_.~")
        canonical = f"GET\n{path}\n{query_string}\nhost:{self._host}\n\nhost\nUNSIGNED-PAYLOAD"
        to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._signing_key(secret_key, day), to_sign.encode(), hashlib.sha256).hexdigest()
        return f"{self._origin}{path}?{query_string}&X-Amz-Signature={signature}"

    def _signing_key(self, secret_key: str, day: str) -> bytes:
        """Derived once a day (four HMACs), not once per URL."""
        if (secret_key, day) not in self._keys:
            key = ("AWS4" + secret_key).encode()
            for part in (day, self._region, "s3", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys = {(secret_key, day): key}
        return self._keys[(secret_key, day)]
