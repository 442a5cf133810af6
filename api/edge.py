"""Checks every request passes before the app reads it: body size, signing headers, query.

FastAPI reads a body before the dependencies that authenticate the caller, so these checks
look at nothing but the request line and headers:

- a body larger than its path's limit is refused with 413, from `Content-Length` before a
  byte is read, or, for a chunked body, as soon as the bytes received pass the limit;
- a query naming a parameter twice is refused with 422 (see `repeated_query_names`), as is a
  NUL character in the path or the query (all three in `EdgeMiddleware`);
- a provider route (`SignedRoute`) refuses a request without the four signature headers
  with 401 before its body is read, so an anonymous client never makes it buffer anything.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qsl

from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import FieldError, SignatureInvalid, problem_response
from api.settings import ApiSettings
from api.signing import SignatureRejected, signing_headers


class BodyTooLarge(HTTPException):
    """A request body that passed its limit while it was being received."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large(limit))


def _too_large(limit: int) -> str:
    return f"the request body is larger than this route accepts ({limit} bytes)"


def body_limit(settings: ApiSettings, path: str) -> int:
    """The largest body `path` accepts: the longest matching prefix's limit, else the default."""
    matches = [prefix for prefix in settings.max_body_bytes_by_path if path.startswith(prefix)]
    if not matches:
        return settings.max_body_bytes
    return settings.max_body_bytes_by_path[max(matches, key=len)]


def repeated_query_names(query_string: bytes) -> list[str]:
    """Names sent more than once in a query.

    Every query parameter of this API is a single value, and FastAPI keeps the last one
    sent while a provider signature sorts the pairs: `limit=1&limit=3` signed and sent as
    `limit=3&limit=1` would verify with another meaning. Refusing repeated names is simpler
    and safer than signing their order, since no reading of the query can then differ.
    """
    seen: set[str] = set()
    repeated: list[str] = []
    for name, _ in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    return repeated


def _nul_fields(scope: Scope) -> list[str]:
    fields = ["path"] if "\x00" in scope.get("path", "") else []
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            fields.append(f"query.{name.replace(chr(0), '%00')}")
    return fields


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class EdgeMiddleware:
    """Refuses oversized, unsigned (provider) and ambiguous requests before the app sees them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The state is built by the lifespan, after the middleware stack.
        settings: ApiSettings = scope["app"].state.streamflow.api
        request = Request(scope)
        refusal = _refusal(scope, request, settings)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        limit = body_limit(settings, scope.get("path", ""))
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted_receive, send)


def _refusal(scope: Scope, request: Request, settings: ApiSettings) -> ASGIApp | None:
    nul = _nul_fields(scope)
    if nul:
        return problem_response(
            request,
            422,
            f"{', '.join(nul)}: must not contain a NUL character (%00)",
            errors=[FieldError(field=f, message="must not contain a NUL character") for f in nul],
        )
    path: str = scope.get("path", "")
    limit = body_limit(settings, path)
    length = _content_length(scope)
    if length is not None and length > limit:
        return problem_response(request, 413, _too_large(limit))
    repeated = repeated_query_names(bytes(scope.get("query_string", b"")))
    if repeated:
        return problem_response(
            request,
            422,
            "; ".join(f"query.{name}: sent more than once; send it once" for name in repeated),
            errors=[
                FieldError(field=f"query.{name}", message="sent more than once; send it once")
                for name in repeated
            ],
        )
    return None


class SignedRoute(APIRoute):
    """A provider route: a request without the signature headers is refused (401) before its
    body is read; the full check (`api.deps`) follows once the body is in."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def signed_only(request: Request) -> Response:
            try:
                signing_headers(request.headers)
            except SignatureRejected as rejection:
                raise SignatureInvalid(rejection) from None
            return await handler(request)

        return signed_only
