"""Downloading an upload's `image_url` without letting it reach inside our network.

Every hop (the URL and each redirect) must resolve only to public addresses, the download is
capped in size and time, and anything else is a 422 that says why."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urljoin, urlsplit

import anyio
import httpx

from tailorset.domain.errors import TooLarge, Unprocessable

MAX_REDIRECTS = 5


async def _check_public(host: str, port: int) -> None:
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise Unprocessable(f"image_url host {host!r} could not be resolved.") from None
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0].split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if not address.is_global:
            raise Unprocessable(f"image_url host {host!r} resolves to a private address, which is not allowed.")


async def fetch(url: str, *, max_bytes: int, timeout: float, allow_private: bool = False) -> bytes:
    timeout_config = httpx.Timeout(timeout)
    async with httpx.AsyncClient(timeout=timeout_config, follow_redirects=False, trust_env=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise Unprocessable("image_url must be an absolute http or https URL.")
            if not allow_private:
                await _check_public(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
            try:
                with anyio.fail_after(timeout):
                    async with client.stream("GET", url) as response:
                        if response.is_redirect and "location" in response.headers:
                            url = urljoin(url, response.headers["location"])
                            continue
                        if response.status_code != 200:
                            raise Unprocessable(f"image_url answered HTTP {response.status_code}, not 200.")
                        declared = int(response.headers.get("content-length") or 0)
                        if declared > max_bytes:
                            raise TooLarge(f"image_url is {declared:,} bytes; the limit is {max_bytes:,} bytes.")
                        chunks, size = [], 0
                        async for chunk in response.aiter_bytes():
                            size += len(chunk)
                            if size > max_bytes:
                                raise TooLarge(f"image_url is larger than the limit of {max_bytes:,} bytes.")
                            chunks.append(chunk)
                        return b"".join(chunks)
            except TimeoutError:
                raise Unprocessable(f"image_url did not answer within {timeout:g} seconds.") from None
            except httpx.HTTPError as exc:
                raise Unprocessable(f"image_url could not be fetched ({type(exc).__name__}).") from None
    raise Unprocessable(f"image_url redirected more than {MAX_REDIRECTS} times.")
