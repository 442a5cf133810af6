"""Client side of the provider API's request signatures (scheme in `api.signing`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Mapping
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import httpx

from api.signing import (
    KEY_ID_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    check_secret,
    new_nonce,
    sign,
)

Params = Mapping[str, Any] | list[tuple[str, Any]] | str


def _secret_bytes(key_id: str, secret: bytes | str) -> bytes:
    raw = secret.encode() if isinstance(secret, str) else bytes(secret)
    check_secret(key_id, raw)
    return raw


def sign_request(
    key_id: str,
    secret: bytes | str,
    method: str,
    url: str,
    body: bytes = b"",
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The four signature headers for one request, for any HTTP library.

    `url` is the URL (absolute, or path and query) exactly as it will be sent, already
    percent-encoded; `body` is the exact body bytes. Sign again for every retry. Name each
    query parameter once: the server refuses a repeated one (422), since the canonical query's
    sorting would not bind which value counts.
    """
    if not url.isascii():
        raise ValueError(f"url {url!r} must be percent-encoded exactly as it will be sent")
    parts = urlsplit(url)
    timestamp = int(time.time()) if timestamp is None else timestamp
    nonce = new_nonce() if nonce is None else nonce
    signature = sign(
        _secret_bytes(key_id, secret),
        key_id=key_id,
        timestamp=timestamp,
        nonce=nonce,
        method=method,
        path=parts.path or "/",
        query=parts.query,
        body=body,
    )
    return {
        KEY_ID_HEADER: key_id,
        TIMESTAMP_HEADER: str(timestamp),
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: signature,
    }


class ProviderSigningAuth(httpx.Auth):
    """httpx authentication that signs each request's target and body bytes as sent.

    Works with `httpx.Client` and `httpx.AsyncClient`. Redirects are not re-signed, so leave
    `follow_redirects` off.
    """

    requires_request_body = True

    def __init__(
        self,
        key_id: str,
        secret: bytes | str,
        *,
        clock: Callable[[], float] = time.time,
        nonce_factory: Callable[[], str] = new_nonce,
    ) -> None:
        self._key_id = key_id
        self._secret = _secret_bytes(key_id, secret)
        self._clock = clock
        self._nonce_factory = nonce_factory

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the signature headers to the request, then send it."""
        headers = sign_request(
            self._key_id,
            self._secret,
            request.method,
            # raw_path is the request target as it goes on the wire: path and query.
            request.url.raw_path.decode("ascii"),
            request.content,
            timestamp=int(self._clock()),
            nonce=self._nonce_factory(),
        )
        request.headers.update(headers)
        yield request


class ProviderClient:
    """A synchronous provider API client that signs every request with one key."""

    def __init__(
        self,
        base_url: str,
        key_id: str,
        secret: bytes | str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key_id = key_id
        self._client = httpx.Client(
            base_url=base_url,
            auth=ProviderSigningAuth(key_id, secret, clock=clock),
            transport=transport,
            timeout=timeout,
            follow_redirects=False,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send a signed request; `path` is joined to the base URL."""
        return self._client.request(
            method, path, params=params, json=json, content=content, headers=headers
        )

    def get(
        self, path: str, *, params: Params | None = None, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """Send a signed GET."""
        return self.request("GET", path, params=params, headers=headers)

    def post(
        self,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send a signed POST with a JSON or raw body."""
        return self.request(
            "POST", path, params=params, json=json, content=content, headers=headers
        )

    def patch(
        self,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send a signed PATCH with a JSON or raw body."""
        return self.request(
            "PATCH", path, params=params, json=json, content=content, headers=headers
        )

    def delete(
        self,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send a signed DELETE, with a body if the endpoint takes one."""
        return self.request(
            "DELETE", path, params=params, json=json, content=content, headers=headers
        )

    def close(self) -> None:
        """Close the underlying connections."""
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
