"""RFC 9457 problem+json for every error; no stack trace or SQL ever reaches a client."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.signing import SignatureRejected
from models.cache.rate_limit import RateLimitDecision
from pipelines.access.service import Forbidden, Unauthenticated
from pipelines.errors import Conflict, InvalidInput, NotFound, StreamflowError

log = structlog.get_logger()


class RateLimited(StreamflowError):
    """Too many requests; carries the decision for the response headers."""

    def __init__(self, decision: RateLimitDecision, kind: str) -> None:
        super().__init__(
            f"rate limit of {decision.limit} requests per window exceeded; "
            f"retry after {max(1, round(decision.retry_after_seconds))} s"
        )
        self.decision = decision
        self.kind = kind


class SignatureInvalid(StreamflowError):
    """A provider request whose HMAC signature does not authenticate it."""

    def __init__(self, rejection: SignatureRejected) -> None:
        super().__init__(rejection.detail)
        self.code = str(rejection.code)


class ReplayCheckUnavailable(StreamflowError):
    """Replay protection cannot be checked (Redis down); signed requests fail closed."""


class Busy(StreamflowError):
    """An expensive read that cannot be computed now (every computation slot is taken, or
    another process has been computing it too long); the client retries after a while."""

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class PredictionFailed(StreamflowError):
    """The model version behind an agent type failed to answer (logged with the request id)."""


PROBLEM_JSON = "application/problem+json"


class FieldError(BaseModel):
    """One invalid field: where it is and what is wrong with it."""

    field: str = Field(examples=["query.limit"])
    message: str = Field(examples=["Input should be less than or equal to 200"])
    pointer: str | None = Field(
        default=None,
        description="JSON pointer to the field in the request body, for errors found by services.",
        examples=["#/batch_size"],
    )


POINTERS: dict[str, str] = {}
"""Domain field → JSON pointer where the API spells the field differently."""


def field_errors(error: StreamflowError) -> list[FieldError] | None:
    """The field a domain error names, as API clients address it."""
    if error.field is None:
        return None
    pointer = POINTERS.get(error.field, f"#/{error.field}")
    return [FieldError(field=error.field, pointer=pointer, message=str(error))]


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(
        examples=["/problems/not-found"], description="Stable URI of the problem kind."
    )
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["evaluation run 3f2a… not found"])
    request_id: str | None = Field(default=None, examples=["8c1d0e6f5b0a4e37a1c9e0d2b7f41a5e"])
    errors: list[FieldError] | None = None


KINDS: dict[type[Exception], tuple[int, str, str]] = {
    NotFound: (404, "not-found", "Not found"),
    InvalidInput: (422, "invalid-input", "Invalid input"),
    Conflict: (409, "conflict", "Conflict"),
    Unauthenticated: (401, "unauthenticated", "Unauthenticated"),
    Forbidden: (403, "forbidden", "Forbidden"),
    RateLimited: (429, "rate-limited", "Too many requests"),
    SignatureInvalid: (401, "invalid-signature", "Invalid request signature"),
    ReplayCheckUnavailable: (503, "replay-protection-unavailable", "Service unavailable"),
    Busy: (503, "busy", "Service unavailable"),
    PredictionFailed: (502, "prediction-failed", "Bad gateway"),
}

STATUS_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthenticated", "Unauthenticated"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("invalid-input", "Invalid input"),
    429: ("rate-limited", "Too many requests"),
    500: ("internal-error", "Internal error"),
    502: ("prediction-failed", "Bad gateway"),
    503: ("unavailable", "Service unavailable"),
}


def problem_response(
    request: Request,
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A problem+json response carrying the request id."""
    default_slug, default_title = STATUS_SLUGS.get(status, ("error", "Error"))
    request_id = getattr(request.state, "request_id", None)
    body = Problem(
        type=f"/problems/{slug or default_slug}",
        title=title or default_title,
        status=status,
        detail=detail,
        request_id=request_id,
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting problem bodies for these statuses."""
    return {
        status: {
            "model": Problem,
            "description": STATUS_SLUGS.get(status, ("", "Error"))[1],
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def rate_limit_headers(decision: RateLimitDecision, window_seconds: int = 60) -> dict[str, str]:
    """`RateLimit` / `RateLimit-Policy` (IETF draft) and, when refused, `Retry-After`."""
    reset = max(0, round(decision.reset_after_seconds))
    headers = {
        "RateLimit-Policy": f'"default";q={decision.limit};w={window_seconds}',
        "RateLimit": f'"default";r={max(0, decision.remaining)};t={reset}',
    }
    if not decision.allowed:
        headers["Retry-After"] = str(max(1, round(decision.retry_after_seconds)))
    return headers


def _headers_for(error: Exception) -> dict[str, str] | None:
    if isinstance(error, RateLimited):
        return rate_limit_headers(error.decision)
    if isinstance(error, Unauthenticated):
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(error, ReplayCheckUnavailable):
        return {"Retry-After": "5"}
    if isinstance(error, Busy):
        return {"Retry-After": str(max(1, error.retry_after_seconds))}
    return None


def install_error_handlers(app: FastAPI) -> None:
    """Map domain errors, validation errors and anything unexpected to problem+json."""

    async def domain_error(request: Request, error: Exception) -> JSONResponse:
        for kind, (status, slug, title) in KINDS.items():
            if isinstance(error, kind):
                headers = _headers_for(error)
                return problem_response(
                    request,
                    status,
                    str(error),
                    slug=slug,
                    title=title,
                    errors=field_errors(error) if isinstance(error, StreamflowError) else None,
                    headers=headers,
                )
        return problem_response(request, 400, str(error))

    async def validation_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        fields = [
            FieldError(
                field=".".join(str(p) for p in item.get("loc", ())),
                message=str(item.get("msg", "")),
            )
            for item in error.errors()
        ]
        detail = "; ".join(f"{f.field}: {f.message}" for f in fields) or "the request is invalid"
        return problem_response(request, 422, detail, errors=fields)

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        headers = dict(error.headers) if error.headers else None
        return problem_response(request, error.status_code, str(error.detail), headers=headers)

    async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
        log.exception("request.failed", error_type=type(error).__name__)
        request_id = getattr(request.state, "request_id", None)
        return problem_response(
            request,
            500,
            f"an unexpected error occurred; quote request id {request_id} when reporting it",
        )

    app.add_exception_handler(StreamflowError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
