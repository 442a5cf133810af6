"""The enumerations stored in tables: one `StrEnum` each, used by CHECK constraints,
services and API schemas alike."""

from __future__ import annotations

from enum import StrEnum


class OrganizationKind(StrEnum):
    """The provider running the platform, or one of its tenants."""

    PROVIDER = "provider"
    TENANT = "tenant"


class OrganizationStatus(StrEnum):
    """Whether an organisation may act."""

    ACTIVE = "active"
    SUSPENDED = "suspended"


class RunStatus(StrEnum):
    """Where an evaluation run stands: created, claimed by its flow, then finished either way."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class Task(StrEnum):
    """What a golden dataset evaluates: picking a label, or producing text."""

    CLASSIFICATION = "classification"
    TEXT_GENERATION = "text_generation"


class ApiKeyScope(StrEnum):
    """What an API key may do."""

    RESULTS_READ = "results:read"
    PREDICT = "predict"
    DOMAINS_WRITE = "domains:write"
    NOTICES_WRITE = "notices:write"
    KEYS_WRITE = "keys:write"


class NoticeSeverity(StrEnum):
    """How urgent a system notice is."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class NoticeAudience(StrEnum):
    """Whom a system notice addresses: every tenant, or the listed ones."""

    ALL = "all"
    LISTED = "listed"


class PeriodKind(StrEnum):
    """The length of a profitability period: a UTC calendar day or month."""

    DAY = "day"
    MONTH = "month"


class AdoptionBasis(StrEnum):
    """How adoption of the AI features is measured for the discount tiers.

    `jobs`: share of a tenant's jobs (distinct job ids of its usage events) with at least one
    AI event; `users`: active AI users / active users (distinct end-user keys).
    """

    JOBS = "jobs"
    USERS = "users"


class ProviderRole(StrEnum):
    """What a provider user may do in the dashboards: everything, or read only."""

    ADMIN = "admin"
    ANALYST = "analyst"


def check_in(column: str, values: type[StrEnum]) -> str:
    """The SQL of a CHECK constraint keeping `column` to the enumeration's values."""
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"
