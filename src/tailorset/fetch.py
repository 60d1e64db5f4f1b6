"""Downloading an upload's `image_url` (or a bulk upload's `zip_url`) without letting it reach inside our network.

Every hop (the URL and each redirect) is resolved here, every address it resolves to must be
public (or in the operator's allowed networks), and the connection goes to the address that was
checked, so a DNS answer that changes between check and connect (rebinding) cannot slip through.
The whole download has one deadline and a size cap; anything else is a 422 that says why."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import SplitResult, urljoin, urlsplit, urlunsplit

import anyio
import httpx
import idna

from tailorset.domain.errors import Invalid, TooLarge, Unprocessable

MAX_REDIRECTS = 5
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# IPv6 forms that carry an IPv4 address in their last 32 bits; the IPv4 address is judged too. (IPv4-mapped
# ::ffff:0:0/96, 6to4 and Teredo have their own properties below.)
EMBEDDING_IPV4 = [
    ipaddress.ip_network("::/96"),  # IPv4-compatible (deprecated), e.g. ::127.0.0.1
    ipaddress.ip_network("::ffff:0:0:0/96"),  # SIIT's IPv4-translated, e.g. ::ffff:0:a9fe:a9fe
    ipaddress.ip_network("64:ff9b::/96"),  # NAT64's well-known prefix
    ipaddress.ip_network("64:ff9b:1::/48"),  # NAT64 for local use (RFC 8215)
]
# Never global whatever it embeds (RFC 8215; Python 3.11's is_global does not know it yet).
LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")


def parse_networks(text: str) -> list[Network]:
    """ "10.1.0.0/16, 192.168.5.7" → networks (TAILORSET_IMAGE_URL_ALLOWED_NETWORKS)."""
    return [ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()]


def _embedded(address: Address) -> list[Address]:
    """The address and any IPv4 address tunnelled inside it (compatible, mapped, SIIT, 6to4, Teredo, NAT64)."""
    found = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            found.append(address.ipv4_mapped)
        if address.sixtofour:
            found.append(address.sixtofour)
        if address.teredo:
            found.extend(address.teredo)
        if any(address in network for network in EMBEDDING_IPV4):
            found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def _is_public(address: Address) -> bool:
    return address.is_global and address not in LOCAL_NAT64


def is_allowed(address: Address, allowed: Sequence[Network] = ()) -> bool:
    """Whether a fetch may connect to `address`: it, and every IPv4 address it embeds, is public or allowed."""
    return all(_is_public(a) or any(a in network for network in allowed) for a in _embedded(address))


async def _checked_address(host: str, port: int, allowed: Sequence[Network], what: str) -> Address:
    """The first address `host` resolves to, once every one of them is allowed."""
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise Unprocessable(f"{what} host {host!r} could not be resolved.") from None
    addresses = [ipaddress.ip_address(sockaddr[0].split("%")[0]) for *_, sockaddr in infos]
    if not addresses or not all(is_allowed(address, allowed) for address in addresses):
        raise Unprocessable(f"{what} host {host!r} resolves to a private address, which is not allowed.")
    return addresses[0]


def _split(url: str, what: str) -> tuple[SplitResult, int]:
    """An absolute http(s) URL's parts and its port, or a 4xx that says what is wrong with it."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. "http://[::1": an IPv6 host without its closing bracket
        raise Invalid(f"{what} is not a valid URL: its host cannot be parsed.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Unprocessable(f"{what} must be an absolute http or https URL.")
    try:  # as resolving and httpx encode it (IDNA 2008); e.g. a label over 63 characters cannot be
        parts.hostname.isascii() or idna.encode(parts.hostname, uts46=True)
    except idna.IDNAError:
        raise Invalid(f"{what} has a host name that is not a valid domain name.") from None
    try:
        return parts, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise Unprocessable(f"{what} has an invalid port.") from None


async def check_url(url: str, *, allow_private: bool = False, allowed: Sequence[Network] = (), what: str) -> None:
    """Refuse, before anything is queued, a URL that is not absolute http(s) or whose host is not allowed.
    `download` checks every hop again when it runs."""
    parts, port = _split(url, what)
    if not allow_private:
        await _checked_address(parts.hostname, port, allowed, what)


async def download(
    url: str, consume: Callable[[bytes], Awaitable[None]], *, max_bytes: int, timeout: float,
    total_timeout: float | None = None, allow_private: bool = False, allowed: Sequence[Network] = (),
    what: str = "image_url",
) -> None:  # fmt: skip
    """Hand the body to `consume` chunk by chunk as it arrives. `timeout` bounds each network step, and
    `total_timeout` (default: `timeout`) the whole download — resolving, redirects, a slow trickle of bytes
    and `consume` included."""
    deadline = total_timeout or timeout
    try:
        with anyio.fail_after(deadline):
            await _download(url, consume, max_bytes, timeout, allow_private, allowed, what)
    except TimeoutError:
        raise Unprocessable(f"{what} did not answer within {deadline:g} seconds.") from None
    except httpx.HTTPError as exc:
        raise Unprocessable(f"{what} could not be fetched ({type(exc).__name__}).") from None


async def _download(url, consume, max_bytes, timeout, allow_private, allowed, what) -> None:
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            parts, port = _split(url, what)
            target, headers, extensions = url, {"Accept-Encoding": "identity"}, {}
            if not allow_private:
                address = await _checked_address(parts.hostname, port, allowed, what)
                host = f"[{address}]" if address.version == 6 else str(address)
                target = urlunsplit((parts.scheme, f"{host}:{port}", parts.path or "/", parts.query, ""))
                headers["Host"] = parts.netloc.rpartition("@")[2]
                extensions["sni_hostname"] = parts.hostname  # TLS still checks the certificate for the name
            async with client.stream("GET", target, headers=headers, extensions=extensions) as response:
                if response.is_redirect and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                if response.status_code != 200:
                    raise Unprocessable(f"{what} answered HTTP {response.status_code}, not 200.")
                encoding = response.headers.get("content-encoding", "identity").strip().lower()
                if encoding != "identity":  # a compressed body could inflate past any size cap
                    raise Unprocessable(f"{what} answered with Content-Encoding {encoding}; only plain files.")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise TooLarge(f"{what} is {int(declared):,} bytes; the limit is {max_bytes:,} bytes.")
                size = 0
                async for chunk in response.aiter_raw():
                    size += len(chunk)
                    if size > max_bytes:
                        raise TooLarge(f"{what} is larger than the limit of {max_bytes:,} bytes.")
                    await consume(chunk)
                return
    raise Unprocessable(f"{what} redirected more than {MAX_REDIRECTS} times.")


async def fetch(
    url: str, *, max_bytes: int, timeout: float, allow_private: bool = False, allowed: Sequence[Network] = ()
) -> bytes:
    """The whole body of an `image_url`, under one deadline."""
    chunks: list[bytes] = []

    async def keep(chunk: bytes) -> None:
        chunks.append(chunk)

    await download(url, keep, max_bytes=max_bytes, timeout=timeout, allow_private=allow_private, allowed=allowed)
    return b"".join(chunks)


def allowed_networks(settings) -> list[Network]:
    return parse_networks(settings.image_url_allowed_networks)


async def fetch_image_url(settings, url: str) -> bytes:
    """`fetch` with the deployment's limits and network policy (tailorset.config.Settings)."""
    return await fetch(
        url,
        max_bytes=settings.max_upload_bytes,
        timeout=settings.fetch_timeout_seconds,
        allow_private=settings.allow_private_image_urls,
        allowed=allowed_networks(settings),
    )
