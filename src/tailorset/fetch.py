"""Downloading an upload's `image_url` (or a bulk upload's `zip_url`) without letting it reach inside
our network.

Every hop (the URL and each redirect) must resolve only to public addresses, the download is
capped in size and time, and anything else is a 422 that says why."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urljoin, urlsplit

import anyio
import httpx

from tailorset.domain.errors import TooLarge, Unprocessable

MAX_REDIRECTS = 5


async def _check_public(host: str, port: int, what: str) -> None:
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise Unprocessable(f"{what} host {host!r} could not be resolved.") from None
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0].split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if not address.is_global:
            raise Unprocessable(f"{what} host {host!r} resolves to a private address, which is not allowed.")


async def check_url(url: str, *, allow_private: bool = False, what: str = "image_url") -> None:
    """Refuse a URL that is not absolute http(s), or whose host is private, before fetching it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Unprocessable(f"{what} must be an absolute http or https URL.")
    if not allow_private:
        await _check_public(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), what)


async def download(
    url: str, consume: Callable[[bytes], Awaitable[None]], *, max_bytes: int, timeout: float,
    total_timeout: float | None = None, allow_private: bool = False, what: str = "image_url",
) -> None:  # fmt: skip
    """Hand the body to `consume` chunk by chunk as it arrives; `timeout` bounds each network step,
    `total_timeout` (default: `timeout`) the whole download, `consume` included."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            await check_url(url, allow_private=allow_private, what=what)
            try:
                with anyio.fail_after(total_timeout or timeout):
                    async with client.stream("GET", url) as response:
                        if response.is_redirect and "location" in response.headers:
                            url = urljoin(url, response.headers["location"])
                            continue
                        if response.status_code != 200:
                            raise Unprocessable(f"{what} answered HTTP {response.status_code}, not 200.")
                        declared = int(response.headers.get("content-length") or 0)
                        if declared > max_bytes:
                            raise TooLarge(f"{what} is {declared:,} bytes; the limit is {max_bytes:,} bytes.")
                        size = 0
                        async for chunk in response.aiter_bytes():
                            size += len(chunk)
                            if size > max_bytes:
                                raise TooLarge(f"{what} is larger than the limit of {max_bytes:,} bytes.")
                            await consume(chunk)
                        return
            except TimeoutError:
                raise Unprocessable(f"{what} did not answer within {total_timeout or timeout:g} seconds.") from None
            except httpx.HTTPError as exc:
                raise Unprocessable(f"{what} could not be fetched ({type(exc).__name__}).") from None
    raise Unprocessable(f"{what} redirected more than {MAX_REDIRECTS} times.")


async def fetch(url: str, *, max_bytes: int, timeout: float, allow_private: bool = False) -> bytes:
    chunks: list[bytes] = []

    async def keep(chunk: bytes) -> None:
        chunks.append(chunk)

    await download(url, keep, max_bytes=max_bytes, timeout=timeout, allow_private=allow_private)
    return b"".join(chunks)
