"""Settings of custom domains and certificates (prefix `STREAMFLOW_`).

Read by flows and the API, which hand plain values to the services.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DomainSettings(BaseSettings):
    """DNS checks, the ACME CA and the DNS-01 provider."""

    model_config = SettingsConfigDict(env_prefix="STREAMFLOW_", extra="ignore")

    home: Path = Path(".streamflow")
    platform_domains: list[str] = Field(default_factory=list)
    """Names the platform owns (tenants may not claim them or names under them)."""
    dns_resolvers: list[str] = Field(default_factory=list)
    """Resolvers for ownership checks, `address` or `address:port`; empty: the system's."""
    dns_authoritative: list[str] = Field(default_factory=list)
    """Authoritative servers asked first, when given."""
    dns_timeout_seconds: float = Field(default=3.0, gt=0)
    domain_cname_targets: list[str] = Field(default_factory=list)
    """CNAME targets meaning a hostname points at the platform."""
    domain_addresses: list[str] = Field(default_factory=list)
    """A/AAAA addresses meaning a hostname points at the platform."""
    domain_check_interval_minutes: int = Field(default=360, ge=1)
    domain_grace_hours: float = Field(default=72, ge=0)
    acme_directory_url: str | None = None
    """ACME directory; unset: no certificates are ordered."""
    acme_ca_bundle: str | None = None
    """CA bundle to trust for the directory's TLS (Pebble's test CA)."""
    acme_contact: str | None = None
    acme_challenge: str = Field(default="dns-01", pattern="^(dns-01|http-01)$")
    acme_caa_identities: list[str] = Field(default_factory=list)
    """Issuer domains of the CA in CAA records (`letsencrypt.org`); checked before ordering."""
    acme_concurrency: int = Field(default=4, ge=1, le=64)
    acme_order_deadline_seconds: int = Field(default=300, ge=10)
    acme_renew_remaining_ratio: float = Field(default=1 / 3, gt=0, lt=1)
    acme_failure_budget: int = Field(default=5, ge=1)
    acme_failure_window_minutes: int = Field(default=60, ge=1)
    dns01_provider: str | None = Field(default=None, pattern="^(rfc2136|challtestsrv)$")
    challtestsrv_url: str | None = None
    rfc2136_server: str | None = None
    rfc2136_zone: str | None = None
    rfc2136_key_name: str | None = None
    rfc2136_key_secret: str | None = None
    rfc2136_key_algorithm: str = "hmac-sha256"
    secrets_key: str | None = None
    """Fernet key sealing ACME and certificate private keys; unset: a key file under home."""
    secrets_key_file: Path | None = None

    def resolved_secrets_key(self) -> str:
        """The sealing key: the setting, the key file, or a new key file under home."""
        if self.secrets_key:
            return self.secrets_key
        path = self.secrets_key_file or self.home / "secrets.key"
        if path.exists():
            return path.read_text().strip()
        from cryptography.fernet import Fernet

        path.parent.mkdir(parents=True, exist_ok=True)
        key = Fernet.generate_key().decode("ascii")
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(key)
        return key
