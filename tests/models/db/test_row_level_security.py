"""Row-level security on PostgreSQL, proved from plain SQL as the API's logins run it.

Tenant B's session (the tenant login after presenting B's key) must not read, insert, update or
delete tenant A's rows, nor write the provider's shared rows; it must not forge a scope, leave
row-level security with `RESET ROLE` or change the schema. The API never runs these statements:
they are what an attacker with the login's SQL session would try.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from models.db import tables  # noqa: F401 - registers the tables on the metadata
from models.db.base import Base
from models.db.engine import make_engine
from models.db.migrate import (
    SchemaNotMigrated,
    alembic_config,
    current_revision,
    ensure_schema,
    upgrade,
)
from tests.conftest import (
    PLATFORM_LOGIN,
    TENANT_LOGIN,
    TemplateCache,
    as_login,
    ensure_test_logins,
    fresh_database_url,
    migrated_database_url,
)

NOW = datetime.now(UTC)
INSUFFICIENT_PRIVILEGE = "42501"


@dataclass(frozen=True)
class Seeded:
    """Ids of the rows the tests aim at, and the keys that open each tenant's scope."""

    url: str
    ids: dict[str, Any]
    key_a: str
    key_b: str
    revoked_key_b: str


def _key(prefix: str) -> tuple[str, str]:
    plaintext = f"sf_{prefix}_{uuid.uuid4().hex}{uuid.uuid4().hex}"
    return plaintext, hashlib.sha256(plaintext.encode()).hexdigest()


def _seed(url: str) -> Seeded:
    """Provider P with a shared dataset; tenants A and B, each with keys and rows (as the owner)."""
    ids: dict[str, Any] = {name: uuid.uuid4() for name in ("p", "a", "b")}
    ids |= {
        name: uuid.uuid4()
        for name in ("ds_p", "ds_a", "ds_b", "v_p", "v_a", "run_a", "run_b", "n_all", "n_a", "n_b")
    }
    ids |= {"key_a_id": uuid.uuid4(), "key_b_id": uuid.uuid4(), "rec_a": uuid.uuid4()}
    ids |= {name: uuid.uuid4() for name in ("ep_a", "ep_b", "sec_a", "sec_b", "job_a", "job_b")}
    ids |= {
        name: uuid.uuid4()
        for name in ("dom_a", "dom_b", "cert_a", "cert_b", "try_a", "try_b", "acme")
    }
    key_a, hash_a = _key(uuid.uuid4().hex[:12])
    key_b, hash_b = _key(uuid.uuid4().hex[:12])
    revoked_b, hash_revoked_b = _key(uuid.uuid4().hex[:12])
    statements: list[tuple[str, tuple[Any, ...]]] = [
        (
            "INSERT INTO organizations (id, slug, name, kind, status, created_at) VALUES "
            "(%s, %s, 'P', 'provider', 'active', now()), (%s, %s, 'A', 'tenant', 'active', now()),"
            " (%s, %s, 'B', 'tenant', 'active', now())",
            (ids["p"], f"p-{ids['p']}", ids["a"], f"a-{ids['a']}", ids["b"], f"b-{ids['b']}"),
        ),
        (
            "INSERT INTO api_keys (id, organization_id, name, prefix, key_hash, scopes, created_at,"
            " revoked_at) VALUES (%s, %s, 'k', %s, %s, '[\"results:read\"]', now(), NULL),"
            " (%s, %s, 'k', %s, %s, '[\"results:read\"]', now(), NULL),"
            " (gen_random_uuid(), %s, 'k', %s, %s, '[]', now(), now())",
            (
                ids["key_a_id"],
                ids["a"],
                key_a.split("_")[1],
                hash_a,
                ids["key_b_id"],
                ids["b"],
                key_b.split("_")[1],
                hash_b,
                ids["b"],
                revoked_b.split("_")[1],
                hash_revoked_b,
            ),
        ),
        (
            "INSERT INTO golden_datasets (id, organization_id, name, task, created_at) VALUES "
            "(%s, %s, 'shared', 'text_generation', now()), (%s, %s, 'a', 'text_generation', now()),"
            " (%s, %s, 'b', 'text_generation', now())",
            (ids["ds_p"], ids["p"], ids["ds_a"], ids["a"], ids["ds_b"], ids["b"]),
        ),
        (
            "INSERT INTO golden_dataset_versions (id, golden_dataset_id, version, content_hash,"
            " row_count, storage_path, source_filename, slice_counts, created_at) VALUES "
            "(%s, %s, 1, repeat('p', 64), 1, 'shared.parquet', 'p.csv', '{}', now()),"
            " (%s, %s, 1, repeat('a', 64), 1, 'a.parquet', 'a.csv', '{}', now())",
            (ids["v_p"], ids["ds_p"], ids["v_a"], ids["ds_a"]),
        ),
        (
            "INSERT INTO evaluation_runs (id, organization_id, golden_dataset_version_id, task,"
            " agent_type, subject_key, config, config_hash, status, batch_size, batch_count,"
            " example_count, created_at) VALUES "
            "(%s, %s, %s, 'text_generation', 'summarizer', 's', '{}', 'h', 'completed', 1, 1, 1,"
            " now()), (%s, %s, %s, 'text_generation', 'summarizer', 's', '{}', 'h', 'completed',"
            " 1, 1, 1, now())",
            (ids["run_a"], ids["a"], ids["v_a"], ids["run_b"], ids["b"], ids["v_p"]),
        ),
        (
            "INSERT INTO evaluation_example_scores (run_id, example_id, batch_index, slice,"
            " prediction, scores) VALUES (%s, 'e1', 0, '', 'a secret', '{}'),"
            " (%s, 'e1', 0, '', 'b', '{}')",
            (ids["run_a"], ids["run_b"]),
        ),
        (
            "INSERT INTO evaluation_metrics (run_id, slice, name, value, ci_low, ci_high, n) "
            "VALUES (%s, '', 'exact_match', 1, 1, 1, 1), (%s, '', 'exact_match', 0, 0, 0, 1)",
            (ids["run_a"], ids["run_b"]),
        ),
        (
            "INSERT INTO system_notices (id, title, body, severity, audience, starts_at,"
            " created_at, updated_at) VALUES (%s, 'all', 'b', 'info', 'all', now(), now(), now()),"
            " (%s, 'for a', 'b', 'info', 'listed', now(), now(), now()),"
            " (%s, 'for b', 'b', 'info', 'listed', now(), now(), now())",
            (ids["n_all"], ids["n_a"], ids["n_b"]),
        ),
        (
            "INSERT INTO system_notice_audiences (notice_id, organization_id) VALUES (%s, %s),"
            " (%s, %s)",
            (ids["n_a"], ids["a"], ids["n_b"], ids["b"]),
        ),
        (
            "INSERT INTO notice_acknowledgements (notice_id, organization_id, actor,"
            " acknowledged_at) VALUES (%s, %s, 'a', now()), (%s, %s, 'b', now())",
            (ids["n_all"], ids["a"], ids["n_b"], ids["b"]),
        ),
        (
            "INSERT INTO idempotency_records (id, scope, organization_id, key, request_hash,"
            " status_code, response_body, created_at) VALUES "
            "(%s, 'a', %s, 'k', repeat('0', 64), 201, '{}', now()),"
            " (gen_random_uuid(), 'b', %s, 'k', repeat('0', 64), 201, '{}', now()),"
            " (gen_random_uuid(), 'provider', NULL, 'k', repeat('0', 64), 201, '{}', now())",
            (ids["rec_a"], ids["a"], ids["b"]),
        ),
        (
            "INSERT INTO audit_log (occurred_at, actor, organization_id, action, target_type,"
            " target_id, details) VALUES (now(), 'a', %s, 'x', 't', '1', '{}'),"
            " (now(), 'b', %s, 'x', 't', '2', '{}'),"
            " (now(), 'provider', NULL, 'x', 't', '3', '{}')",
            (ids["a"], ids["b"]),
        ),
        (
            "INSERT INTO webhook_endpoints (id, organization_id, url, description, event_types,"
            " status, created_at) VALUES (%s, %s, 'https://a.example/hook', '', '[]', 'active',"
            " now()), (%s, %s, 'https://b.example/hook', '', '[]', 'active', now())",
            (ids["ep_a"], ids["a"], ids["ep_b"], ids["b"]),
        ),
        (
            "INSERT INTO webhook_secrets (id, endpoint_id, organization_id, secret, created_at)"
            " VALUES (%s, %s, %s, 'whsec_a', now()), (%s, %s, %s, 'whsec_b', now())",
            (ids["sec_a"], ids["ep_a"], ids["a"], ids["sec_b"], ids["ep_b"], ids["b"]),
        ),
        (
            "INSERT INTO jobs (id, organization_id, kind, status, payload, idempotency_key,"
            " webhook_endpoint_id, attempts, max_attempts, next_attempt_at, result, created_at,"
            " updated_at) VALUES (%s, %s, 'webhook', 'succeeded', '{}', 'k', %s, 1, 10, now(),"
            " '{}', now(), now()), (%s, %s, 'webhook', 'succeeded', '{}', 'k', %s, 1, 10, now(),"
            " '{}', now(), now())",
            (ids["job_a"], ids["a"], ids["ep_a"], ids["job_b"], ids["b"], ids["ep_b"]),
        ),
        (
            "INSERT INTO job_attempts (job_id, organization_id, number, lease_owner, started_at,"
            " finished_at, outcome, status_code) VALUES (%s, %s, 1, 'd', now(), now(),"
            " 'succeeded', 204), (%s, %s, 1, 'd', now(), now(), 'succeeded', 204)",
            (ids["job_a"], ids["a"], ids["job_b"], ids["b"]),
        ),
        (
            "INSERT INTO job_artifacts (job_id, name, organization_id, media_type, content,"
            " created_at) VALUES (%s, 'report.html', %s, 'text/html', 'a secret', now()),"
            " (%s, 'report.html', %s, 'text/html', 'b', now())",
            (ids["job_a"], ids["a"], ids["job_b"], ids["b"]),
        ),
        (
            "INSERT INTO domains (id, organization_id, hostname, unicode_hostname,"
            " verification_token, status, ownership_found, routing_found, checks,"
            " unavailable_streak, verified_at, created_at, updated_at) VALUES "
            "(%s, %s, 'a.example', 'a.example', 'ta', 'verified', '[]', '[]', 1, 0, now(), now(),"
            " now()), (%s, %s, 'b.example', 'b.example', 'tb', 'pending', '[]', '[]', 0, 0, NULL,"
            " now(), now())",
            (ids["dom_a"], ids["a"], ids["dom_b"], ids["b"]),
        ),
        (
            "INSERT INTO acme_accounts (id, directory_url, key_encrypted, created_at, updated_at)"
            " VALUES (%s, 'https://ca.example/dir', 'sealed account key', now(), now())",
            (ids["acme"],),
        ),
        (
            "INSERT INTO certificates (id, organization_id, domain_id, hostnames, status,"
            " acme_account_id, key_encrypted, failures, consecutive_failures, created_at,"
            " updated_at) VALUES (%s, %s, %s, '[\"a.example\"]', 'valid', %s, 'sealed a', 0, 0,"
            " now(), now()), (%s, %s, %s, '[\"b.example\"]', 'valid', %s, 'sealed b', 0, 0, now(),"
            " now())",
            (
                ids["cert_a"],
                ids["a"],
                ids["dom_a"],
                ids["acme"],
                ids["cert_b"],
                ids["b"],
                ids["dom_b"],
                ids["acme"],
            ),
        ),
        (
            "INSERT INTO certificate_attempts (id, organization_id, certificate_id, kind, status,"
            " claimed_by, lease_until, started_at, retries) VALUES "
            "(%s, %s, %s, 'issue', 'succeeded', 'w', now(), now(), 0),"
            " (%s, %s, %s, 'issue', 'failed', 'w', now(), now(), 0)",
            (ids["try_a"], ids["a"], ids["cert_a"], ids["try_b"], ids["b"], ids["cert_b"]),
        ),
        (
            "INSERT INTO http01_challenges (token, key_authorization, hostname, expires_at)"
            " VALUES ('tok', 'tok.thumbprint', 'a.example', now() + interval '1 hour')",
            (),
        ),
        (
            "INSERT INTO tenant_profitability (organization_id, period_kind, period_start,"
            " currency, events, tokens_in, tokens_out, requests, subscription_micros,"
            " overage_micros, gross_revenue_micros, discount_micros, revenue_micros,"
            " ai_cost_micros, infra_cost_micros, margin_micros, margin_bps, adoption_numerator,"
            " adoption_denominator, discount_bps, unpriced_events, ai_cost_breakdown,"
            " explanation, computed_at) SELECT o, 'month', DATE '2026-03-01', 'EUR', 1, 1, 1, 1,"
            " 5, 0, 5, 0, 5, 2, 1, 2, 4000, 0, 0, 0, 0, '[]', '{}', now()"
            " FROM unnest(ARRAY[%s, %s]::uuid[]) AS o",
            (ids["a"], ids["b"]),
        ),
        (
            "INSERT INTO evaluation_comparisons (id, organization_id, run_a_id, run_b_id,"
            " document_version, document, reason, computed_at) VALUES"
            " (gen_random_uuid(), %s, %s, %s, 'v', '{\"n\": 1}', 'champion', now()),"
            " (gen_random_uuid(), %s, %s, %s, 'v', '{\"n\": 1}', 'champion', now())",
            (ids["a"], ids["run_a"], ids["run_a"], ids["b"], ids["run_b"], ids["run_b"]),
        ),
        (
            "INSERT INTO traffic_log (request_id, organization_id, agent_type, role,"
            " model_version, input_hash, input_text, output_text, input_chars, output_chars,"
            " latency_ms, created_at) VALUES ('req-a', %s, 'intent', 'served', 'm@1',"
            " repeat('a', 64), 'a secret', 'x', 8, 1, 1.0, now()), ('req-b', %s, 'intent',"
            " 'served', 'm@1', repeat('b', 64), 'b', 'x', 1, 1, 1.0, now())",
            (ids["a"], ids["b"]),
        ),
        (
            "INSERT INTO feedback (id, request_id, organization_id, agent_type, kind, value,"
            " created_by, created_at, updated_at) VALUES (gen_random_uuid(), 'req-a', %s,"
            " 'intent', 'label', 'refund', 'a', now(), now()), (gen_random_uuid(), 'req-b', %s,"
            " 'intent', 'label', 'refund', 'b', now(), now())",
            (ids["a"], ids["b"]),
        ),
    ]
    with psycopg.connect(_plain(url), autocommit=False) as connection:
        for statement, params in statements:
            connection.execute(statement, params)  # type: ignore[arg-type]
    return Seeded(url, ids, key_a, key_b, revoked_b)


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture(scope="module")
def seeded(
    migrated_templates: TemplateCache, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seeded]:
    """One migrated PostgreSQL database with the rows below, shared by the module's tests (each
    test works inside a transaction it rolls back)."""
    folder = tmp_path_factory.mktemp("rls")
    with migrated_database_url(migrated_templates, "postgresql", folder) as url:
        yield _seed(url)


@pytest.fixture
def tenant(seeded: Seeded) -> Iterator[psycopg.Connection[Any]]:
    """A connection of the API's tenant login, in a transaction rolled back afterwards."""
    with psycopg.connect(_plain(as_login(seeded.url, TENANT_LOGIN))) as connection:
        yield connection
        connection.rollback()


@pytest.fixture
def tenant_b(seeded: Seeded, tenant: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """The tenant login in B's scope, opened as the API opens it: by presenting B's key."""
    assert _enter(tenant, seeded.key_b) == "ok"
    return tenant


def _enter(connection: psycopg.Connection[Any], key: str) -> str:
    row = connection.execute("SELECT streamflow_enter_tenant(%s)", (key,)).fetchone()
    assert row is not None
    return str(row[0])


def _count(connection: psycopg.Connection[Any], query: str, params: dict[str, Any]) -> int:
    row = connection.execute(query, params).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return int(row[0])


def _refused(connection: psycopg.Connection[Any], statement: str, params: dict[str, Any]) -> str:
    """How the statement was stopped: `denied` (an error) or `no rows`; fails if it did
    anything. Runs in a savepoint so the transaction goes on."""
    try:
        with connection.transaction():
            cursor = connection.execute(statement, params)  # type: ignore[arg-type]
            changed = cursor.rowcount
    except psycopg.errors.InsufficientPrivilege:
        return "denied"
    assert changed == 0, f"{statement!r} changed {changed} row(s)"
    return "no rows"


@dataclass(frozen=True)
class Case:
    """Statements tenant B must not get through, on one table.

    `others` selects rows B must not see (tenant A's, or the platform's own), `own` rows B
    sees; `shared` selects the provider's rows B may read and never write; `shared_update` is
    one more write B must not get through (on shared rows, or changing what its own rows are).
    """

    table: str
    others: str
    own: str
    insert: str
    update: str
    delete: str
    shared: str | None = None
    shared_update: str | None = None


CASES = [
    Case(
        "organizations",
        others="id = %(a)s",
        own="id = %(b)s",
        insert="INSERT INTO organizations (id, slug, name, kind, status, created_at) VALUES "
        "(gen_random_uuid(), 'evil', 'Evil', 'provider', 'active', now())",
        update="UPDATE organizations SET status = 'suspended' WHERE id = %(a)s",
        delete="DELETE FROM organizations WHERE id = %(a)s",
        shared="id = %(p)s",
        shared_update="UPDATE organizations SET kind = 'provider' WHERE id = %(b)s",
    ),
    Case(
        "api_keys",
        others="organization_id = %(a)s",
        own="organization_id = %(b)s",
        insert="INSERT INTO api_keys (id, organization_id, name, prefix, key_hash, scopes,"
        " created_at) VALUES (gen_random_uuid(), %(b)s, 'k', 'evil', repeat('0', 64), '[]', now())",
        update="UPDATE api_keys SET revoked_at = now() WHERE organization_id = %(a)s",
        delete="DELETE FROM api_keys WHERE organization_id = %(a)s",
        shared_update="UPDATE api_keys SET scopes = '[\"keys:write\"]' WHERE id = %(key_b_id)s",
    ),
    Case(
        "audit_log",
        others="organization_id = %(a)s OR organization_id IS NULL",
        own="organization_id = %(b)s",
        insert="INSERT INTO audit_log (occurred_at, actor, organization_id, action, target_type,"
        " target_id, details) VALUES (now(), 'b', %(a)s, 'x', 't', '1', '{}')",
        update="UPDATE audit_log SET actor = 'b' WHERE organization_id = %(a)s",
        delete="DELETE FROM audit_log WHERE organization_id = %(a)s",
        # Append-only, even for B's own entries.
        shared_update="UPDATE audit_log SET action = 'nothing' WHERE organization_id = %(b)s",
    ),
    Case(
        "golden_datasets",
        others="organization_id = %(a)s",
        own="organization_id = %(b)s",
        insert="INSERT INTO golden_datasets (id, organization_id, name, task, created_at) VALUES "
        "(gen_random_uuid(), %(p)s, 'evil', 'text_generation', now())",
        update="UPDATE golden_datasets SET name = 'x' WHERE organization_id = %(a)s",
        delete="DELETE FROM golden_datasets WHERE organization_id = %(a)s",
        shared="organization_id = %(p)s",
        shared_update="UPDATE golden_datasets SET name = 'evil' WHERE organization_id = %(p)s",
    ),
    Case(
        "golden_dataset_versions",
        others="golden_dataset_id = %(ds_a)s",
        own="golden_dataset_id = %(ds_p)s",
        insert="INSERT INTO golden_dataset_versions (id, golden_dataset_id, version, content_hash,"
        " row_count, storage_path, source_filename, slice_counts, created_at) VALUES "
        "(gen_random_uuid(), %(ds_p)s, 2, repeat('e', 64), 1, '/evil.parquet', 'e.csv', '{}',"
        " now())",
        update="UPDATE golden_dataset_versions SET row_count = 0"
        " WHERE golden_dataset_id = %(ds_a)s",
        delete="DELETE FROM golden_dataset_versions WHERE golden_dataset_id = %(ds_a)s",
        shared="golden_dataset_id = %(ds_p)s",
        shared_update="UPDATE golden_dataset_versions SET storage_path = '/evil.parquet'"
        " WHERE golden_dataset_id = %(ds_p)s",
    ),
    Case(
        "evaluation_runs",
        others="organization_id = %(a)s",
        own="organization_id = %(b)s",
        insert="INSERT INTO evaluation_runs (id, organization_id, golden_dataset_version_id, task,"
        " agent_type, subject_key, config, config_hash, status, batch_size, batch_count,"
        " example_count, created_at) VALUES (gen_random_uuid(), %(a)s, %(v_p)s,"
        " 'text_generation', 'summarizer', 's', '{}', 'h', 'pending', 1, 0, 0, now())",
        update="UPDATE evaluation_runs SET status = 'failed' WHERE organization_id = %(a)s",
        delete="DELETE FROM evaluation_runs WHERE organization_id = %(a)s",
        # Moving its own run to A is refused too (the write rule checks the new row).
        shared_update="UPDATE evaluation_runs SET organization_id = %(a)s WHERE id = %(run_b)s",
    ),
    Case(
        "evaluation_example_scores",
        others="run_id = %(run_a)s",
        own="run_id = %(run_b)s",
        insert="INSERT INTO evaluation_example_scores (run_id, example_id, batch_index, slice,"
        " prediction, scores) VALUES (%(run_a)s, 'evil', 0, '', 'x', '{}')",
        update="UPDATE evaluation_example_scores SET prediction = 'x' WHERE run_id = %(run_a)s",
        delete="DELETE FROM evaluation_example_scores WHERE run_id = %(run_a)s",
        shared_update="UPDATE evaluation_example_scores SET run_id = %(run_a)s"
        " WHERE run_id = %(run_b)s",
    ),
    Case(
        "evaluation_metrics",
        others="run_id = %(run_a)s",
        own="run_id = %(run_b)s",
        insert="INSERT INTO evaluation_metrics (run_id, slice, name, value, ci_low, ci_high, n)"
        " VALUES (%(run_a)s, '', 'evil', 0, 0, 0, 1)",
        update="UPDATE evaluation_metrics SET value = 0 WHERE run_id = %(run_a)s",
        delete="DELETE FROM evaluation_metrics WHERE run_id = %(run_a)s",
        shared_update="UPDATE evaluation_metrics SET run_id = %(run_a)s WHERE run_id = %(run_b)s",
    ),
    Case(
        "system_notices",
        others="id = %(n_a)s",
        own="id = %(n_all)s",
        insert="INSERT INTO system_notices (id, title, body, severity, audience, starts_at,"
        " created_at, updated_at) VALUES (gen_random_uuid(), 'evil', 'b', 'critical', 'all',"
        " now(), now(), now())",
        update="UPDATE system_notices SET title = 'x' WHERE id = %(n_a)s",
        delete="DELETE FROM system_notices WHERE id = %(n_a)s",
        shared="id = %(n_all)s",
        shared_update="UPDATE system_notices SET title = 'evil' WHERE id = %(n_all)s",
    ),
    Case(
        "system_notice_audiences",
        others="organization_id = %(a)s",
        own="organization_id = %(b)s",
        insert="INSERT INTO system_notice_audiences (notice_id, organization_id) VALUES"
        " (%(n_a)s, %(b)s)",
        update="UPDATE system_notice_audiences SET organization_id = %(b)s"
        " WHERE organization_id = %(a)s",
        delete="DELETE FROM system_notice_audiences WHERE organization_id = %(a)s",
    ),
    Case(
        "notice_acknowledgements",
        others="organization_id = %(a)s",
        own="organization_id = %(b)s",
        insert="INSERT INTO notice_acknowledgements (notice_id, organization_id, actor,"
        " acknowledged_at) VALUES (%(n_all)s, %(a)s, 'b', now())",
        update="UPDATE notice_acknowledgements SET actor = 'b' WHERE organization_id = %(a)s",
        delete="DELETE FROM notice_acknowledgements WHERE organization_id = %(a)s",
        # A notice not addressed to B cannot be acknowledged by it.
        shared_update="INSERT INTO notice_acknowledgements (notice_id, organization_id, actor,"
        " acknowledged_at) VALUES (%(n_a)s, %(b)s, 'b', now())",
    ),
    Case(
        "idempotency_records",
        others="organization_id = %(a)s OR organization_id IS NULL",
        own="organization_id = %(b)s",
        insert="INSERT INTO idempotency_records (id, scope, organization_id, key, request_hash,"
        " status_code, response_body, created_at) VALUES (gen_random_uuid(), 'a', %(a)s, 'evil',"
        " repeat('0', 64), 201, '{}', now())",
        update="UPDATE idempotency_records SET response_body = 'x' WHERE organization_id = %(a)s"
        " OR organization_id IS NULL",
        delete="DELETE FROM idempotency_records WHERE organization_id = %(a)s"
        " OR organization_id IS NULL",
    ),
    Case(
        "webhook_endpoints",
        others="organization_id = %(a)s",
        own="organization_id = %(b)s",
        insert="INSERT INTO webhook_endpoints (id, organization_id, url, description, event_types,"
        " status, created_at) VALUES (gen_random_uuid(), %(a)s, 'https://evil.example', '', '[]',"
        " 'active', now())",
        update="UPDATE webhook_endpoints SET status = 'disabled' WHERE organization_id = %(a)s",
        delete="DELETE FROM webhook_endpoints WHERE organization_id = %(a)s",
        # Its own endpoint keeps its URL: a tenant disables an endpoint and registers another.
        shared_update="UPDATE webhook_endpoints SET url = 'https://evil.example'"
        " WHERE id = %(ep_b)s",
    ),
    Case(
        "webhook_secrets",
        others="organization_id = %(a)s",
        own="organization_id = %(b)s",
        # B's own row, on A's endpoint.
        insert="INSERT INTO webhook_secrets (id, endpoint_id, organization_id, secret,"
        " created_at) VALUES (gen_random_uuid(), %(ep_a)s, %(b)s, 'whsec_evil', now())",
        update="UPDATE webhook_secrets SET expires_at = now() WHERE organization_id = %(a)s",
        delete="DELETE FROM webhook_secrets WHERE organization_id = %(a)s",
        shared_update="UPDATE webhook_secrets SET secret = 'whsec_evil' WHERE id = %(sec_b)s",
    ),
    Case(
        "jobs",
        others="organization_id = %(a)s",
        own="organization_id = %(b)s",
        insert="INSERT INTO jobs (id, organization_id, kind, status, payload, idempotency_key,"
        " attempts, max_attempts, next_attempt_at, result, created_at, updated_at) VALUES"
        " (gen_random_uuid(), %(a)s, 'report', 'queued', '{}', 'evil', 0, 5, now(), '{}', now(),"
        " now())",
        update="UPDATE jobs SET status = 'queued' WHERE organization_id = %(a)s",
        delete="DELETE FROM jobs WHERE organization_id = %(a)s",
        # Only the dispatcher changes a job, B's own included.
        shared_update="UPDATE jobs SET status = 'queued', attempts = 0 WHERE id = %(job_b)s",
    ),
    Case(
        "job_attempts",
        others="organization_id = %(a)s",
        own="organization_id = %(b)s",
        insert="INSERT INTO job_attempts (job_id, organization_id, number, lease_owner,"
        " started_at, finished_at, outcome) VALUES (%(job_a)s, %(a)s, 2, 'evil', now(), now(),"
        " 'succeeded')",
        update="UPDATE job_attempts SET outcome = 'failed' WHERE organization_id = %(a)s",
        delete="DELETE FROM job_attempts WHERE organization_id = %(a)s",
        # Read-only for B, its own attempts included.
        shared_update="INSERT INTO job_attempts (job_id, organization_id, number, lease_owner,"
        " started_at, finished_at, outcome) VALUES (%(job_b)s, %(b)s, 2, 'evil', now(), now(),"
        " 'succeeded')",
    ),
    Case(
        "job_artifacts",
        others="organization_id = %(a)s",
        own="organization_id = %(b)s",
        insert="INSERT INTO job_artifacts (job_id, name, organization_id, media_type, content,"
        " created_at) VALUES (%(job_a)s, 'evil.html', %(a)s, 'text/html', 'x', now())",
        update="UPDATE job_artifacts SET content = 'x' WHERE organization_id = %(a)s",
        delete="DELETE FROM job_artifacts WHERE organization_id = %(a)s",
        # Read-only for B, its own reports included.
        shared_update="UPDATE job_artifacts SET content = 'forged' WHERE job_id = %(job_b)s",
    ),
    Case(
        "domains",
        others="organization_id = %(a)s",
        own="organization_id = %(b)s",
        insert="INSERT INTO domains (id, organization_id, hostname, unicode_hostname,"
        " verification_token, status, ownership_found, routing_found, checks, unavailable_streak,"
        " created_at, updated_at) VALUES (gen_random_uuid(), %(a)s, 'evil.example',"
        " 'evil.example', 'x', 'pending', '[]', '[]', 0, 0, now(), now())",
        update="UPDATE domains SET verification_token = 'x' WHERE organization_id = %(a)s",
        delete="DELETE FROM domains WHERE organization_id = %(a)s",
        # Only a check (run by the platform) verifies a claim.
        shared_update="UPDATE domains SET status = 'verified', verified_at = now()"
        " WHERE id = %(dom_b)s",
    ),
    Case(
        "certificates",
        others="organization_id = %(a)s",
        own="organization_id = %(b)s",
        insert="INSERT INTO certificates (id, organization_id, domain_id, hostnames, status,"
        " failures, consecutive_failures, created_at, updated_at) VALUES (gen_random_uuid(),"
        " %(b)s, %(dom_b)s, '[]', 'valid', 0, 0, now(), now())",
        update="UPDATE certificates SET status = 'revoked' WHERE organization_id = %(a)s",
        delete="DELETE FROM certificates WHERE organization_id = %(a)s",
        shared_update="UPDATE certificates SET not_after = now() WHERE id = %(cert_b)s",
    ),
    Case(
        "certificate_attempts",
        others="organization_id = %(a)s",
        own="organization_id = %(b)s",
        insert="INSERT INTO certificate_attempts (id, organization_id, certificate_id, kind,"
        " status, claimed_by, lease_until, started_at, retries) VALUES (gen_random_uuid(),"
        " %(b)s, %(cert_b)s, 'issue', 'running', 'evil', now(), now(), 0)",
        update="UPDATE certificate_attempts SET error = 'x' WHERE organization_id = %(a)s",
        delete="DELETE FROM certificate_attempts WHERE organization_id = %(a)s",
        shared_update="UPDATE certificate_attempts SET status = 'abandoned' WHERE id = %(try_b)s",
    ),
    Case(
        "tenant_profitability",
        others="organization_id = %(a)s",
        own="organization_id = %(b)s",
        insert="INSERT INTO tenant_profitability (organization_id, period_kind, period_start,"
        " currency, events, tokens_in, tokens_out, requests, subscription_micros, overage_micros,"
        " gross_revenue_micros, discount_micros, revenue_micros, ai_cost_micros,"
        " infra_cost_micros, margin_micros, adoption_numerator, adoption_denominator,"
        " discount_bps, unpriced_events, ai_cost_breakdown, explanation, computed_at) VALUES"
        " (%(b)s, 'day', DATE '2026-03-02', 'EUR', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,"
        " 0, '[]', '{}', now())",
        update="UPDATE tenant_profitability SET discount_micros = 0 WHERE organization_id = %(a)s",
        delete="DELETE FROM tenant_profitability WHERE organization_id = %(a)s",
        # Its own figures are the rollup's: a discount granted to itself is refused.
        shared_update="UPDATE tenant_profitability SET discount_bps = 10000"
        " WHERE organization_id = %(b)s",
    ),
    Case(
        "evaluation_comparisons",
        others="organization_id = %(a)s",
        own="organization_id = %(b)s",
        insert="INSERT INTO evaluation_comparisons (id, organization_id, run_a_id, run_b_id,"
        " document_version, document, reason, computed_at) VALUES (gen_random_uuid(), %(b)s,"
        " %(run_b)s, %(run_b)s, 'w', '{}', 'champion', now())",
        update="UPDATE evaluation_comparisons SET document = '{}' WHERE organization_id = %(a)s",
        delete="DELETE FROM evaluation_comparisons WHERE organization_id = %(a)s",
        # The platform computes them: B cannot rewrite its own either.
        shared_update="UPDATE evaluation_comparisons SET document = '{}'"
        " WHERE organization_id = %(b)s",
    ),
    Case(
        "traffic_log",
        others="organization_id = %(a)s",
        own="organization_id = %(b)s",
        # Read-only for B: the platform records what was served.
        insert="INSERT INTO traffic_log (request_id, organization_id, agent_type, role,"
        " model_version, input_hash, input_text, input_chars, output_chars, latency_ms,"
        " created_at) VALUES ('evil', %(b)s, 'intent', 'served', 'm@1', repeat('e', 64), 'x', 1,"
        " 0, 0, now())",
        update="UPDATE traffic_log SET output_text = 'x' WHERE organization_id = %(a)s",
        delete="DELETE FROM traffic_log WHERE organization_id = %(a)s",
        shared_update="UPDATE traffic_log SET output_text = 'forged' WHERE request_id = 'req-b'",
    ),
    Case(
        "feedback",
        others="organization_id = %(a)s",
        own="organization_id = %(b)s",
        # Feedback on A's request, filed as B's own.
        insert="INSERT INTO feedback (id, request_id, organization_id, agent_type, kind, value,"
        " created_by, created_at, updated_at) VALUES (gen_random_uuid(), 'req-a', %(b)s,"
        " 'intent', 'rating', '1', 'b', now(), now())",
        update="UPDATE feedback SET value = 'x' WHERE organization_id = %(a)s",
        delete="DELETE FROM feedback WHERE organization_id = %(a)s",
        shared_update="UPDATE feedback SET organization_id = %(a)s WHERE request_id = 'req-b'",
    ),
]


PLATFORM_ONLY = {
    "provider_users": "INSERT INTO provider_users (id, email, name, role, password_hash,"
    " created_at) VALUES (gen_random_uuid(), 'evil@b.example', 'e', 'admin', 'x', now())",
    "dashboard_sessions": "INSERT INTO dashboard_sessions (token_hash, organization_id,"
    " csrf_token, created_at, expires_at) VALUES (repeat('e', 64), %(a)s, 'c', now(),"
    " now() + interval '1 day')",
    "acme_accounts": "INSERT INTO acme_accounts (id, directory_url, key_encrypted, created_at,"
    " updated_at) VALUES (gen_random_uuid(), 'https://evil.example/dir', 'k', now(), now())",
    "http01_challenges": "INSERT INTO http01_challenges (token, key_authorization, hostname,"
    " expires_at) VALUES ('evil', 'evil.x', 'a.example', now() + interval '1 hour')",
    "usage_events": "INSERT INTO usage_events (event_id, organization_id, occurred_at,"
    " tokens_in, tokens_out, requests) VALUES ('evil', %(b)s, now(), 0, 0, 0)",
    "tenant_plans": "INSERT INTO tenant_plans (id, organization_id, effective_from, currency,"
    " monthly_fee_micros, included_tokens, overage_micros_per_1k_tokens, created_by, created_at)"
    " VALUES (gen_random_uuid(), %(b)s, DATE '2026-01-01', 'EUR', 0, 0, 0, 'b', now())",
    "ai_cost_rates": "INSERT INTO ai_cost_rates (id, model_version, effective_from, currency,"
    " micros_per_1k_tokens_in, micros_per_1k_tokens_out, micros_per_request, created_by,"
    " created_at) VALUES (gen_random_uuid(), 'm@1', DATE '2026-01-01', 'EUR', 0, 0, 0, 'b',"
    " now())",
    "infrastructure_cost_rules": "INSERT INTO infrastructure_cost_rules (id, effective_from,"
    " currency, micros_per_request, micros_per_1k_tokens, micros_per_tenant_month, created_by,"
    " created_at) VALUES (gen_random_uuid(), DATE '2026-01-01', 'EUR', 0, 0, 0, 'b', now())",
    "adoption_tier_schedules": "INSERT INTO adoption_tier_schedules (id, effective_from, basis,"
    " tiers, created_by, created_at) VALUES (gen_random_uuid(), DATE '2026-01-01', 'jobs',"
    " '[]', 'b', now())",
    "experiments": "INSERT INTO experiments (id, agent_type, kind, status, champion_version,"
    " challenger_version, sample_rate, traffic_split, split_key, salt, mde,"
    " planned_sample_size, plan, description, created_by, created_at, updated_at) VALUES"
    " (gen_random_uuid(), 'intent', 'ab', 'running', 'm@1', 'm@2', 1, 1, 'tenant', 's', 0.1,"
    " 1, '{}', '', 'b', now(), now())",
    "profitability_dirty_periods": "INSERT INTO profitability_dirty_periods (organization_id,"
    " month, marked_at) VALUES (%(a)s, DATE '2026-03-01', now())",
    "profitability_dirty_days": "INSERT INTO profitability_dirty_days (organization_id, day,"
    " marked_at) VALUES (%(a)s, DATE '2026-03-02', now())",
    "profitability_day_usage": "INSERT INTO profitability_day_usage (organization_id, day,"
    " events, tokens_in, tokens_out, requests, cost_thousandths, unpriced_events, jobs, ai_jobs,"
    " users, ai_users, breakdown) VALUES (%(b)s, DATE '2026-03-02', 0, 0, 0, 0, 0, 0, 0, 0, 0,"
    " 0, '[]')",
    "profitability_month_usage": "INSERT INTO profitability_month_usage (organization_id, month,"
    " events, tokens_in, tokens_out, requests, cost_thousandths, unpriced_events, jobs, ai_jobs,"
    " users, ai_users) VALUES (%(b)s, DATE '2026-03-01', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)",
    "profitability_month_combos": "INSERT INTO profitability_month_combos (organization_id,"
    " month, agent_type, model_version, events, tokens_in, tokens_out, requests, cost,"
    " unpriced_events) VALUES (%(b)s, DATE '2026-03-01', 'evil', 'm@1', 0, 0, 0, 0, 0, 0)",
    "profitability_month_keys": "INSERT INTO profitability_month_keys (organization_id, month,"
    " kind, key, ai) VALUES (%(b)s, DATE '2026-03-01', 'j', 'evil', true)",
    "promotion_gates": "INSERT INTO promotion_gates (id, agent_type, version, config,"
    " created_by, created_at) VALUES (gen_random_uuid(), 'evil', 1, '{}', 'b', now())",
    "promotion_decisions": "INSERT INTO promotion_decisions (id, agent_type, outcome, reason,"
    " model_name, champion_version, challenger_version, window_start, window_end, n,"
    " gate_config, evidence, actor, created_at) VALUES (gen_random_uuid(), 'evil', 'promote',"
    " 'x', 'm', '1', '2', now(), now(), 0, '{}', '{}', 'b', now())",
    "drift_reports": "INSERT INTO drift_reports (id, agent_type, window_start, window_end,"
    " n_current, n_reference, drift_share, threshold, drifted, drifted_columns, created_at)"
    " VALUES (gen_random_uuid(), 'evil', now(), now(), 0, 0, 0, 0.5, false, '[]', now())",
}
"""Tables only the platform reads or writes (no tenant policy, no grant), with a write to try."""


def test_every_table_is_covered_here_and_protected_in_the_database(seeded: Seeded) -> None:
    """Each table of the models has a case below (or is the platform's only), FORCE row-level
    security, a platform policy and separate tenant policies; a table added without them fails
    here."""
    covered = [c.table for c in CASES] + list(PLATFORM_ONLY)
    assert sorted(covered) == sorted(Base.metadata.tables)
    with psycopg.connect(_plain(seeded.url)) as connection:
        rows = connection.execute(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,"
            " array_agg(p.polname ORDER BY p.polname) FROM pg_class c"
            " LEFT JOIN pg_policy p ON p.polrelid = c.oid"
            " WHERE c.relname = ANY(%s) AND c.relnamespace = 'public'::regnamespace"
            " GROUP BY 1, 2, 3",
            (list(Base.metadata.tables),),
        ).fetchall()
    for table, enabled, forced, policies in rows:
        assert enabled, table
        assert forced, table
        assert f"{table}_platform" in policies, table
        if table in PLATFORM_ONLY:
            assert policies == [f"{table}_platform"], table
            continue
        assert f"{table}_tenant_select" in policies, table
        assert not {f"{table}_read", f"{table}_insert"} & set(policies), table


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.table)
class TestTenantBOnEachTable:
    def test_reads_its_own_rows_and_not_the_others(
        self, case: Case, seeded: Seeded, tenant: psycopg.Connection[Any]
    ) -> None:
        others = f"SELECT count(*) FROM {case.table} WHERE {case.others}"
        own = f"SELECT count(*) FROM {case.table} WHERE {case.own}"
        assert _count(tenant, others, seeded.ids) == 0, "no scope, no rows"
        assert _count(tenant, own, seeded.ids) == 0, "no scope, no rows"
        assert _enter(tenant, seeded.key_b) == "ok"
        assert _count(tenant, others, seeded.ids) == 0
        assert _count(tenant, own, seeded.ids) >= 1
        if case.shared is not None:
            shared = f"SELECT count(*) FROM {case.table} WHERE {case.shared}"
            assert _count(tenant, shared, seeded.ids) >= 1

    def test_cannot_insert_update_or_delete_others_rows(
        self, case: Case, seeded: Seeded, tenant_b: psycopg.Connection[Any]
    ) -> None:
        _refused(tenant_b, case.insert, seeded.ids)
        _refused(tenant_b, case.update, seeded.ids)
        _refused(tenant_b, case.delete, seeded.ids)
        if case.shared_update is not None:
            _refused(tenant_b, case.shared_update, seeded.ids)
        # A's rows are all still there (as the platform sees them).
        platform = as_login(seeded.url, PLATFORM_LOGIN)
        with psycopg.connect(_plain(platform)) as connection:
            assert (
                _count(
                    connection, f"SELECT count(*) FROM {case.table} WHERE {case.others}", seeded.ids
                )
                >= 1
            )


def _tenant_job(
    kind: str,
    endpoint: str,
    *,
    status: str = "queued",
    attempts: int = 0,
    lease_owner: str = "NULL",
) -> str:
    """A job B queues for itself, as the report, AI task and replay routes do."""
    return (
        "INSERT INTO jobs (id, organization_id, kind, status, payload, idempotency_key,"
        " webhook_endpoint_id, attempts, max_attempts, next_attempt_at, lease_owner, result,"
        f" created_at, updated_at) VALUES (gen_random_uuid(), %(b)s, '{kind}', '{status}', '{{}}',"
        f" gen_random_uuid()::text, {endpoint}, {attempts}, 5, now(), {lease_owner}, '{{}}', now(),"
        " now())"
    )


class TestTenantWrites:
    def test_writes_within_its_own_organisation_pass(
        self, seeded: Seeded, tenant_b: psycopg.Connection[Any]
    ) -> None:
        """The rules are not a blanket refusal: B writes what its requests write."""
        ids = seeded.ids
        statements = [
            "UPDATE api_keys SET revoked_at = now(), last_used_at = now() WHERE id = %(key_b_id)s",
            "INSERT INTO audit_log (occurred_at, actor, organization_id, action, target_type,"
            " target_id, details) VALUES (now(), 'b', %(b)s, 'x', 't', '9', '{}')",
            "INSERT INTO notice_acknowledgements (notice_id, organization_id, actor,"
            " acknowledged_at) VALUES (%(n_all)s, %(b)s, 'b', now())",
            "INSERT INTO idempotency_records (id, scope, organization_id, key, request_hash,"
            " status_code, response_body, created_at) VALUES (gen_random_uuid(), 'b', %(b)s,"
            " 'k2', repeat('0', 64), 201, '{}', now())",
            "UPDATE evaluation_runs SET status = 'failed' WHERE id = %(run_b)s",
            # Registering an endpoint, rotating its secret, queueing a report and a replay,
            # disabling the endpoint: what the webhook, report and AI task routes write.
            "INSERT INTO webhook_endpoints (id, organization_id, url, description, event_types,"
            " status, created_at) VALUES (gen_random_uuid(), %(b)s, 'https://b.example/2', '',"
            " '[]', 'active', now())",
            "UPDATE webhook_secrets SET expires_at = now() + interval '1 day' WHERE id = %(sec_b)s",
            "INSERT INTO webhook_secrets (id, endpoint_id, organization_id, secret, created_at)"
            " VALUES (gen_random_uuid(), %(ep_b)s, %(b)s, 'whsec_new', now())",
            _tenant_job("report", "NULL"),
            _tenant_job("webhook", "%(ep_b)s"),
            "UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = 'b',"
            " disabled_at = now() WHERE id = %(ep_b)s",
            "INSERT INTO domains (id, organization_id, hostname, unicode_hostname,"
            " verification_token, status, ownership_found, routing_found, checks,"
            " unavailable_streak, created_at, updated_at) VALUES (gen_random_uuid(), %(b)s,"
            " 'new.b.example', 'new.b.example', 't', 'pending', '[]', '[]', 0, 0, now(), now())",
            "DELETE FROM domains WHERE id = %(dom_b)s",
        ]
        for statement in statements:
            assert tenant_b.execute(statement, ids).rowcount == 1, statement  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "statement",
        [
            _tenant_job("email", "NULL"),
            _tenant_job("webhook", "%(ep_a)s"),
            _tenant_job("report", "NULL", status="succeeded"),
            _tenant_job("report", "NULL", attempts=3),
            _tenant_job("report", "NULL", lease_owner="'evil'"),
        ],
        ids=["e-mail", "to-A's-endpoint", "already-succeeded", "already-attempted", "leased"],
    )
    def test_it_queues_only_new_jobs_its_requests_queue(
        self, statement: str, seeded: Seeded, tenant_b: psycopg.Connection[Any]
    ) -> None:
        """Reports, AI tasks and webhooks to its own endpoints, never attempted; e-mail is the
        platform's (it goes to the address the platform keeps)."""
        assert _refused(tenant_b, statement, seeded.ids) == "denied"

    def test_its_notification_email_is_the_platforms_to_set(
        self, seeded: Seeded, tenant_b: psycopg.Connection[Any]
    ) -> None:
        statement = (
            "UPDATE organizations SET notification_email = 'evil@example.com' WHERE id = %(b)s"
        )
        assert _refused(tenant_b, statement, seeded.ids) == "denied"

    def test_its_own_key_keeps_its_scopes_hash_and_organisation(
        self, seeded: Seeded, tenant_b: psycopg.Connection[Any]
    ) -> None:
        for column, value in (
            ("scopes", '["keys:write"]'),
            ("key_hash", "0" * 64),
            ("expires_at", None),
            ("organization_id", seeded.ids["a"]),
        ):
            statement = f"UPDATE api_keys SET {column} = %(value)s WHERE id = %(key_b_id)s"
            params = seeded.ids | {"value": value}
            assert _refused(tenant_b, statement, params) == "denied", column


class TestDomainsAndCertificates:
    def test_a_claim_cannot_arrive_verified(
        self, seeded: Seeded, tenant_b: psycopg.Connection[Any]
    ) -> None:
        """A tenant claims a hostname as pending; only the platform's check verifies it."""
        for status, verified_at in (("verified", "now()"), ("pending", "now()")):
            statement = (
                "INSERT INTO domains (id, organization_id, hostname, unicode_hostname,"
                " verification_token, status, ownership_found, routing_found, checks,"
                " unavailable_streak, verified_at, created_at, updated_at) VALUES"
                " (gen_random_uuid(), %(b)s, 'forged.example', 'forged.example', 't',"
                f" '{status}', '[]', '[]', 0, 0, {verified_at}, now(), now())"
            )
            assert _refused(tenant_b, statement, seeded.ids) == "denied", status

    def test_private_keys_are_out_of_the_tenants_reach(
        self, seeded: Seeded, tenant_b: psycopg.Connection[Any]
    ) -> None:
        """Even its own certificate's sealed key, and any ACME account key; the rest it reads."""
        own = "SELECT count(*) FROM certificates WHERE id = %(cert_b)s"
        assert _count(tenant_b, own, seeded.ids) == 1
        for statement in (
            "SELECT key_encrypted FROM certificates WHERE id = %(cert_b)s",
            "SELECT * FROM certificates",
            "SELECT key_encrypted FROM acme_accounts",
        ):
            assert _refused(tenant_b, statement, seeded.ids) == "denied", statement


class TestScopeCannotBeForged:
    def test_setting_the_variables_by_hand_opens_nothing(
        self, seeded: Seeded, tenant: psycopg.Connection[Any]
    ) -> None:
        a = str(seeded.ids["a"])
        for name, value in (
            ("streamflow.tenant", a),
            ("streamflow.org_id", a),
            ("streamflow.scope", "system"),
            ("streamflow.scope", "authenticate"),
        ):
            tenant.execute("SELECT set_config(%s, %s, true)", (name, value))
        assert _count(tenant, "SELECT count(*) FROM organizations", {}) == 0
        assert _count(tenant, "SELECT count(*) FROM api_keys", {}) == 0

    def test_a_proof_opens_only_its_own_organisation_and_transaction(
        self, seeded: Seeded, tenant: psycopg.Connection[Any]
    ) -> None:
        a = str(seeded.ids["a"])
        assert _enter(tenant, seeded.key_b) == "ok"
        row = tenant.execute("SELECT current_setting('streamflow.tenant_proof')").fetchone()
        assert row is not None
        proof = row[0]
        tenant.execute("SELECT set_config('streamflow.tenant', %s, true)", (a,))
        assert _count(tenant, "SELECT count(*) FROM organizations WHERE kind = 'tenant'", {}) == 0
        tenant.rollback()
        # The same proof in the next transaction, even for B, opens nothing.
        tenant.execute("SELECT set_config('streamflow.tenant', %s, true)", (str(seeded.ids["b"]),))
        tenant.execute("SELECT set_config('streamflow.tenant_proof', %s, true)", (proof,))
        assert _count(tenant, "SELECT count(*) FROM organizations", {}) == 0

    def test_unknown_revoked_or_mangled_keys_open_nothing(
        self, seeded: Seeded, tenant: psycopg.Connection[Any]
    ) -> None:
        assert _enter(tenant, seeded.revoked_key_b) == "revoked"
        assert _enter(tenant, seeded.key_b + "x") == "unknown"
        assert _enter(tenant, "sf__") == "unknown"
        assert _count(tenant, "SELECT count(*) FROM api_keys", {}) == 0
        # Entering a valid scope and then a refused one leaves no scope behind.
        assert _enter(tenant, seeded.key_b) == "ok"
        assert _enter(tenant, "nonsense") == "unknown"
        assert _count(tenant, "SELECT count(*) FROM api_keys", {}) == 0

    @pytest.mark.parametrize(
        "statement",
        [
            "SET ROLE streamflow_system",
            "SET ROLE postgres",
            "SET SESSION AUTHORIZATION postgres",
            "SELECT streamflow_scope_proof('00000000-0000-0000-0000-000000000000')",
            "SELECT * FROM streamflow_row_scope_secret",
            "SELECT set_config('role', 'streamflow_system', false)",
        ],
    )
    def test_privileged_roles_and_the_secret_are_out_of_reach(
        self, statement: str, tenant: psycopg.Connection[Any]
    ) -> None:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            tenant.execute(statement)  # type: ignore[arg-type]

    def test_reset_role_stays_within_row_level_security(
        self, seeded: Seeded, tenant: psycopg.Connection[Any]
    ) -> None:
        tenant.execute("SET ROLE streamflow_app")
        tenant.execute("RESET ROLE")
        tenant.execute("SET SESSION AUTHORIZATION DEFAULT")
        row = tenant.execute("SELECT current_user, session_user").fetchone()
        assert row == (TENANT_LOGIN, TENANT_LOGIN)
        owner = tenant.execute(
            "SELECT pg_has_role(current_user, tableowner, 'MEMBER') OR rolsuper OR rolbypassrls"
            " FROM pg_tables, pg_roles WHERE tablename = 'api_keys' AND rolname = current_user"
        ).fetchone()
        assert owner == (False,)
        assert _count(tenant, "SELECT count(*) FROM api_keys", {}) == 0


class TestNoSchemaChanges:
    @pytest.mark.parametrize(
        "statement",
        [
            "CREATE TABLE public.evil (id int)",
            "ALTER TABLE api_keys DISABLE ROW LEVEL SECURITY",
            "ALTER TABLE api_keys NO FORCE ROW LEVEL SECURITY",
            "DROP POLICY api_keys_tenant_select ON api_keys",
            "CREATE POLICY evil ON api_keys FOR SELECT TO streamflow_app USING (true)",
            "ALTER TABLE organizations ADD COLUMN evil int",
            "CREATE OR REPLACE FUNCTION streamflow_tenant() RETURNS uuid LANGUAGE sql"
            " AS 'SELECT NULL::uuid'",
            "TRUNCATE audit_log",
            "UPDATE alembic_version SET version_num = 'evil'",
            "DROP TABLE evaluation_runs",
        ],
    )
    @pytest.mark.parametrize("login", [TENANT_LOGIN, PLATFORM_LOGIN])
    def test_the_apis_logins_cannot_change_the_schema(
        self, login: str, statement: str, seeded: Seeded
    ) -> None:
        with (
            psycopg.connect(_plain(as_login(seeded.url, login))) as connection,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            connection.execute(statement)  # type: ignore[arg-type]


def test_the_platform_login_acts_for_every_organisation(seeded: Seeded) -> None:
    with psycopg.connect(_plain(as_login(seeded.url, PLATFORM_LOGIN))) as connection:
        slugs = _count(
            connection,
            "SELECT count(*) FROM organizations WHERE id = ANY(%(all)s)",
            {"all": [seeded.ids["p"], seeded.ids["a"], seeded.ids["b"]]},
        )
        assert slugs == 3
        updated = connection.execute(
            "UPDATE golden_dataset_versions SET storage_path = storage_path WHERE id = %s",
            (seeded.ids["v_p"],),
        ).rowcount
        assert updated == 1
        connection.rollback()


def test_only_the_owners_login_migrates(tmp_path: Path) -> None:
    """A schema behind the code: the API's logins refuse to start with one line naming the fix;
    the owner's URL migrates it, after which they start (and the migration reverses)."""
    ensure_test_logins()
    with fresh_database_url("postgresql", tmp_path) as url:
        owner = make_engine(url)
        tenant = make_engine(as_login(url, TENANT_LOGIN))
        platform = make_engine(as_login(url, PLATFORM_LOGIN))
        try:
            upgrade(owner, "0002")
            for login in (tenant, platform):
                with pytest.raises(SchemaNotMigrated, match="STREAMFLOW_DATABASE_MIGRATION_URL"):
                    ensure_schema(login)
            ensure_schema(platform, migration_url=url)
            head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
            assert current_revision(owner) == head
            ensure_schema(tenant)
            ensure_schema(platform)
            command.downgrade(alembic_config(url), "0002")
            assert not _has_table(owner, "streamflow_row_scope_secret")
            upgrade(owner)
            assert _has_table(owner, "streamflow_row_scope_secret")
        finally:
            for engine in (owner, tenant, platform):
                engine.dispose()


def _has_table(engine: Engine, name: str) -> bool:
    return inspect(engine).has_table(name)


def test_a_key_past_its_expiry_opens_nothing(seeded: Seeded) -> None:
    """The database reads expiry with its own clock, whatever the application thinks."""
    key, digest = _key(uuid.uuid4().hex[:12])
    with psycopg.connect(_plain(seeded.url)) as owner:
        owner.execute(
            "INSERT INTO api_keys (id, organization_id, name, prefix, key_hash, scopes,"
            " created_at, expires_at) VALUES (gen_random_uuid(), %s, 'k', %s, %s, '[]', now(),"
            " %s)",
            (seeded.ids["b"], key.split("_")[1], digest, NOW - timedelta(seconds=1)),
        )
    with psycopg.connect(_plain(as_login(seeded.url, TENANT_LOGIN))) as connection:
        assert _enter(connection, key) == "expired"
        assert _count(connection, "SELECT count(*) FROM api_keys", {}) == 0


@pytest.mark.parametrize("table", sorted(PLATFORM_ONLY))
def test_platform_only_tables_are_closed_to_tenants(
    table: str, seeded: Seeded, tenant_b: psycopg.Connection[Any]
) -> None:
    """Provider users and browser sessions: a tenant in its own scope neither reads nor writes."""
    assert _refused(tenant_b, f"SELECT count(*) FROM {table}", seeded.ids) == "denied"
    assert _refused(tenant_b, PLATFORM_ONLY[table], seeded.ids) == "denied"


def test_a_dashboard_session_opens_its_tenants_scope_only(seeded: Seeded) -> None:
    """The tenant login presents a session cookie instead of a key: its tenant's rows only,
    and nothing for an unknown or expired session."""
    live, expired = uuid.uuid4().hex, uuid.uuid4().hex
    with psycopg.connect(_plain(seeded.url)) as owner:
        for token, ends in ((live, "now() + interval '1 hour'"), (expired, "now()")):
            owner.execute(
                "INSERT INTO dashboard_sessions (token_hash, organization_id, csrf_token,"
                f" created_at, expires_at) VALUES (%s, %s, 'c', now(), {ends})",
                (hashlib.sha256(token.encode()).hexdigest(), seeded.ids["b"]),
            )
    runs = "SELECT count(*) FROM evaluation_runs WHERE organization_id = %(x)s"
    with psycopg.connect(_plain(as_login(seeded.url, TENANT_LOGIN))) as tenant:
        for token, verdict in (("not-a-session", "unknown"), (expired, "expired")):
            row = tenant.execute("SELECT streamflow_enter_dashboard_session(%s)", (token,))
            assert row.fetchone() == (verdict,)
            assert _count(tenant, runs, {"x": seeded.ids["b"]}) == 0
        row = tenant.execute("SELECT streamflow_enter_dashboard_session(%s)", (live,))
        assert row.fetchone() == ("ok",)
        assert _count(tenant, runs, {"x": seeded.ids["b"]}) == 1
        assert _count(tenant, runs, {"x": seeded.ids["a"]}) == 0
        tenant.rollback()


def test_a_revoked_key_stays_revoked(seeded: Seeded, tenant_b: psycopg.Connection[Any]) -> None:
    """B revokes and uses its live keys, but cannot bring a revoked key back."""
    unrevoke = (
        "UPDATE api_keys SET revoked_at = NULL"
        " WHERE organization_id = %(b)s AND revoked_at IS NOT NULL"
    )
    assert _refused(tenant_b, unrevoke, seeded.ids) == "no rows"
    revoke = "UPDATE api_keys SET revoked_at = now(), last_used_at = now() WHERE id = %(key_b_id)s"
    assert tenant_b.execute(revoke, seeded.ids).rowcount == 1


def test_a_tenant_reads_its_usage_and_discount_but_no_costs_or_margins(
    seeded: Seeded, tenant_b: psycopg.Connection[Any]
) -> None:
    """Of its own profitability rows, B reads usage and the discount explanation only."""
    visible = (
        "SELECT count(*) FROM tenant_profitability WHERE organization_id = %(b)s"
        " AND events = 1 AND discount_bps = 0 AND explanation IS NOT NULL"
    )
    assert _count(tenant_b, visible, seeded.ids) == 1
    for column in ("ai_cost_micros", "infra_cost_micros", "margin_micros", "ai_cost_breakdown"):
        statement = f"SELECT {column} FROM tenant_profitability WHERE organization_id = %(b)s"
        assert _refused(tenant_b, statement, seeded.ids) == "denied", column
