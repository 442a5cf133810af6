"""Settings of the API process (prefix `STREAMFLOW_`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.signing import check_secret

HIDDEN = "<hidden>"
"""What a settings error shows in place of the input it refused."""


class ApiSettings(BaseSettings):
    """Limits, paging and database login of the HTTP API."""

    model_config = SettingsConfigDict(env_prefix="STREAMFLOW_", extra="ignore")

    database_tenant_url: str | None = None
    """Database login of tenant requests (`/v1`), e.g. `postgresql+psycopg://streamflow_api@db/
    streamflow`: a member of `streamflow_app`, so row-level security holds each request to the
    organisation of its API key. Unset: tenant requests use `STREAMFLOW_DATABASE_URL` too (the
    embedded default; on PostgreSQL only the queries' own scoping then isolates tenants)."""
    rate_limit_per_minute: int = 600
    """Requests per minute per API key (or provider key id), for scopes not listed below."""
    rate_limits_per_minute: dict[str, int] = {"predict": 120, "results:read": 1200}
    """Per-scope limits per key, e.g. `{"predict": 120}` (JSON in the environment)."""
    rate_limit_per_address_per_minute: int = 300
    """Failed authentications per minute per client address (and requests to the unauthenticated
    probes); past it the address is refused before authentication. Requests that authenticate
    never count, so this never throttles a key below its own limit."""
    evaluation_deployment: str | None = None
    """Prefect deployment that runs evaluations started through the API, e.g.
    `evaluate-model-version/evaluations` (production); unset: the local worker's deployment when
    `streamflow worker` serves it, else a worker thread in this process."""
    evaluation_launcher: str = "flows.launcher:make_launcher"
    """Import string of the callable (taking the deployment name or None) that builds the
    launcher of evaluation flows; the API is handed it and never imports flow code."""
    auth_cache_seconds: float = 10.0
    """How long an authenticated API key is remembered in-process (0: ask the database always).
    Revocations through this process apply at once; other processes see them within this time."""
    max_body_bytes: int = Field(default=1_048_576, ge=0)
    """Largest request body accepted (bytes); larger ones get 413 before they are read."""
    max_body_bytes_by_path: dict[str, int] = {"/provider/v1/usage-events": 8 * 1_048_576}
    """Other body limits by path prefix, e.g. `{"/provider/v1/evaluations": 8388608}` (JSON in
    the environment); the longest matching prefix wins. Usage batches (up to 10,000 events)
    get 8 MiB by default."""
    metrics_enabled: bool = True
    """Serve `/metrics` (off: 404; scrape a process bound to an internal port instead)."""
    metrics_token: SecretStr | None = None
    """When set, `/metrics` requires `Authorization: Bearer <token>`."""
    page_size_default: int = 50
    page_size_max: int = 200
    cache_results: bool = True
    """Read-through cache of result reads (Redis when configured, else in-process)."""
    comparison_concurrency: int = Field(default=2, ge=1)
    """Comparisons one API process computes at once (each is seconds of CPU); a request for
    another uncached comparison beyond it gets 503 with `Retry-After`. Cached ones never wait."""
    comparison_wait_seconds: float = Field(default=60.0, ge=0)
    """How long a request waits for the same comparison being computed by another process
    before it gets 503 with `Retry-After` (identical requests in one process always share one
    computation)."""
    comparison_lock_seconds: float = Field(default=30.0, gt=0)
    """Lifetime of the Redis lock that makes one process compute a comparison for all; its
    holder extends it while computing, so a process that dies frees it after this time."""
    dashboard_session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    """How long a dashboard sign-in lasts."""
    dashboard_secure_cookies: bool = False
    """Mark the dashboard session cookie `Secure` (`__Host-` prefixed): set it behind HTTPS."""
    prefect_ui_url: str | None = "http://127.0.0.1:4200"
    """The Prefect UI the run pages link flow runs to (`STREAMFLOW_PREFECT_UI_URL`; default the
    local orchestrator's address, empty for no link)."""


class ProviderAuthSettings(BaseSettings):
    """Secrets of the HMAC-signed provider API; several keys are active at once to rotate them.

    The secrets live only in the environment or a secret file, never in the database, and
    never in an error: validation errors leave the input out (pydantic would echo it).
    """

    model_config = SettingsConfigDict(
        env_prefix="STREAMFLOW_", extra="ignore", hide_input_in_errors=True
    )

    provider_keys: dict[str, SecretStr] = Field(default_factory=dict)
    """Active keys as JSON `{"key-id": "secret", ...}`; secrets of at least 32 bytes."""
    provider_keys_file: Path | None = None
    """Secret file holding the same JSON; when set it replaces `STREAMFLOW_PROVIDER_KEYS`."""
    signature_tolerance_seconds: int = Field(default=300, ge=1, le=3600)
    """Largest accepted distance between a request's timestamp and the server clock."""

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as error:
            # Errors keep their input for programs (`errors()`); a secret must not ride along.
            raise ValidationError.from_exception_data(
                error.title,
                [
                    InitErrorDetails(
                        type=PydanticCustomError(detail["type"], detail["msg"]),
                        loc=detail["loc"],
                        input=HIDDEN,
                    )
                    for detail in error.errors()
                ],
                hide_input=True,
            ) from None

    @model_validator(mode="after")
    def _load_and_check_keys(self) -> ProviderAuthSettings:
        if self.provider_keys_file is not None:
            self.provider_keys = _read_provider_keys_file(self.provider_keys_file)
        for key_id, secret in self.provider_keys.items():
            check_secret(key_id, secret.get_secret_value().encode())
        return self

    def signing_keys(self) -> dict[str, bytes]:
        """Key id → secret bytes, the form `api.signing.verify` takes."""
        return {key_id: s.get_secret_value().encode() for key_id, s in self.provider_keys.items()}


def _read_provider_keys_file(path: Path) -> dict[str, SecretStr]:
    where = f"STREAMFLOW_PROVIDER_KEYS_FILE ({path})"
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"{where} cannot be read: {error.strerror}") from None
    except ValueError as error:
        raise ValueError(f"{where} is not valid JSON: {error}") from None
    if not isinstance(loaded, dict) or not all(
        isinstance(secret, str) for secret in loaded.values()
    ):
        raise ValueError(f'{where} must hold a JSON object {{"key-id": "secret", ...}}')
    return {key_id: SecretStr(secret) for key_id, secret in loaded.items()}
