"""Image URLs: `/files/{key}?sig=…`, signed with a key kept in the database.

A signed URL works without the api_token header, as Bria's pre-signed storage URLs do, and
cannot be forged or guessed for another file. It stays the same for the life of the file."""

from __future__ import annotations

import hmac


class UrlSigner:
    def __init__(self, key: str):
        self._key = key.encode()

    def signature(self, file_key: str) -> str:
        return hmac.digest(self._key, file_key.encode(), "sha256").hex()[:32]  # one C call: two per image body

    def verify(self, file_key: str, signature: str) -> bool:
        # Bytes: compare_digest refuses str with non-ASCII characters, and a URL may carry any.
        return hmac.compare_digest(self.signature(file_key).encode(), signature.encode())

    def url(self, base_url: str, file_key: str) -> str:
        return f"{base_url.rstrip('/')}/files/{file_key}?sig={self.signature(file_key)}"
