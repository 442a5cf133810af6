"""row level security with roles: a verified tenant scope, a platform role, separate write rules

Revision ID: 0003_rls
Revises: 0002
Create Date: 2026-12-01 06:00:00.000000

PostgreSQL only (SQLite keeps the application's own scoping). Two NOLOGIN roles carry the
rules; logins are made members of one of them (see the README's production section):

- `streamflow_system` acts for the whole platform (flows, the CLI, the provider API): one
  permissive policy per table lets it do everything. Nothing the app role can run makes a
  session a member of it.
- `streamflow_app` serves tenant requests. Its policies trust only the organisation returned by
  `streamflow_tenant()`, which holds only when `streamflow_enter_tenant(api_key)` set it in the
  same transaction of the same backend: that function (SECURITY DEFINER, owned by the schema
  owner) checks the presented key against the stored hash and signs the scope with a secret the
  app role cannot read. Setting the variables by hand, in another transaction or for another
  organisation, yields no scope, so no rows.

Reads and writes have separate policies: a tenant reads the provider's shared datasets and
versions but writes only its own rows; it reads its own organisation (and the provider's) and
writes none; the audit log is append-only for it; notices and their audiences are read-only.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003_rls"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "streamflow_app"
PLATFORM_ROLE = "streamflow_system"
SECRET_TABLE = "streamflow_row_scope_secret"

TENANT = "(SELECT streamflow_tenant())"
OWN = f"organization_id = {TENANT}"
SCOPED = f"{TENANT} IS NOT NULL"
PROVIDER = "organization_id IN (SELECT o.id FROM organizations o WHERE o.kind = 'provider')"
OWN_DATASET = (
    f"golden_dataset_id IN (SELECT d.id FROM golden_datasets d WHERE d.organization_id = {TENANT})"
)
VISIBLE_VERSION = "golden_dataset_version_id IN (SELECT v.id FROM golden_dataset_versions v)"


def _own_run(table: str) -> str:
    return (
        f"EXISTS (SELECT 1 FROM evaluation_runs r WHERE r.id = {table}.run_id "
        f"AND r.organization_id = {TENANT})"
    )


def _visible_run(table: str) -> str:
    return f"EXISTS (SELECT 1 FROM evaluation_runs r WHERE r.id = {table}.run_id)"


# table → (select, insert, update, delete) conditions of the tenant role; None: no policy, so
# the tenant role may not do it. Subqueries on other tables see those tables through their own
# policies (a tenant's `evaluation_runs` are its own). Without a verified scope nothing is
# visible, shared rows included: a forgotten scope fails closed.
TENANT_POLICIES: dict[str, tuple[str | None, str | None, str | None, str | None]] = {
    "organizations": (f"id = {TENANT} OR ({SCOPED} AND kind = 'provider')", None, None, None),
    "api_keys": (OWN, None, OWN, None),
    "audit_log": (OWN, OWN, None, None),
    "golden_datasets": (f"{OWN} OR ({SCOPED} AND {PROVIDER})", OWN, OWN, OWN),
    "golden_dataset_versions": (
        "golden_dataset_id IN (SELECT d.id FROM golden_datasets d)",
        OWN_DATASET,
        None,
        OWN_DATASET,
    ),
    "evaluation_runs": (OWN, f"{OWN} AND {VISIBLE_VERSION}", f"{OWN} AND {VISIBLE_VERSION}", OWN),
    "evaluation_example_scores": (
        _visible_run("evaluation_example_scores"),
        _own_run("evaluation_example_scores"),
        _own_run("evaluation_example_scores"),
        _own_run("evaluation_example_scores"),
    ),
    "evaluation_metrics": (
        _visible_run("evaluation_metrics"),
        _own_run("evaluation_metrics"),
        _own_run("evaluation_metrics"),
        _own_run("evaluation_metrics"),
    ),
    "system_notices": (
        f"{SCOPED} AND (audience = 'all' OR EXISTS (SELECT 1 FROM system_notice_audiences a "
        "WHERE a.notice_id = system_notices.id))",
        None,
        None,
        None,
    ),
    "system_notice_audiences": (OWN, None, None, None),
    "notice_acknowledgements": (
        OWN,
        f"{OWN} AND EXISTS (SELECT 1 FROM system_notices n "
        "WHERE n.id = notice_acknowledgements.notice_id)",
        None,
        None,
    ),
    "idempotency_records": (OWN, OWN, OWN, OWN),
}
ACTIONS = ("select", "insert", "update", "delete")

# Table privileges the tenant role gives up: what no tenant request does, and the columns of
# a key a tenant must never change (its hash, scopes, organisation, expiry).
TENANT_REVOKES = {
    "organizations": "INSERT, UPDATE, DELETE",
    "api_keys": "INSERT, UPDATE, DELETE",
    "audit_log": "UPDATE, DELETE",
    "system_notices": "INSERT, UPDATE, DELETE",
    "system_notice_audiences": "INSERT, UPDATE, DELETE",
    "alembic_version": "INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER",
}
TENANT_KEY_COLUMNS = "revoked_at, last_used_at"


def _create_role(name: str) -> None:
    # Roles are shared by every database of the server: create once, never alter.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{name}') THEN
                CREATE ROLE {name} NOLOGIN;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END
        $$
        """
    )


def _owner_acts_for_the_platform() -> None:
    """The migrating login (the schema owner) keeps acting for the platform under FORCE: a
    superuser bypasses row-level security anyway; any other owner joins the platform role."""
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
               AND NOT pg_has_role(current_user, '{PLATFORM_ROLE}', 'MEMBER') THEN
                EXECUTE format('GRANT {PLATFORM_ROLE} TO %I', current_user);
            END IF;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'grant {PLATFORM_ROLE} to % so it can act for the platform',
                current_user;
        END
        $$
        """
    )


def _scope_functions() -> None:
    op.execute(f"CREATE TABLE {SECRET_TABLE} (secret bytea NOT NULL)")
    op.execute(f"REVOKE ALL ON {SECRET_TABLE} FROM PUBLIC")
    # 2 × 122 random bits from the server's strong random source.
    op.execute(
        f"INSERT INTO {SECRET_TABLE} (secret) SELECT decode(replace("
        "gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex')"
    )
    # The proof binds an organisation to this backend and this transaction, keyed by the
    # secret (SHA-256 over message || secret: no length extension). Parallel workers have other
    # pids, so the functions reading it run in the leader only (PARALLEL RESTRICTED).
    op.execute(
        f"""
        CREATE FUNCTION streamflow_scope_proof(organization text) RETURNS text
        LANGUAGE sql STABLE SECURITY DEFINER PARALLEL RESTRICTED
        SET search_path = pg_catalog, pg_temp
        AS $$
            SELECT encode(sha256(convert_to(
                organization || '/' || pg_backend_pid()::text || '/'
                || extract(epoch FROM transaction_timestamp())::text, 'UTF8') || s.secret), 'hex')
            FROM public.{SECRET_TABLE} s
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION streamflow_tenant() RETURNS uuid
        LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL RESTRICTED
        SET search_path = pg_catalog, pg_temp
        AS $$
        DECLARE
            claimed text := NULLIF(current_setting('streamflow.tenant', true), '');
            proof text := current_setting('streamflow.tenant_proof', true);
        BEGIN
            IF claimed IS NULL OR proof IS NULL THEN
                RETURN NULL;
            END IF;
            -- Hashing both sides keeps the comparison's timing from telling anything.
            IF sha256(convert_to(proof, 'UTF8'))
               = sha256(convert_to(public.streamflow_scope_proof(claimed), 'UTF8')) THEN
                RETURN claimed::uuid;
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION streamflow_enter_tenant(api_key text) RETURNS text
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS $$
        DECLARE
            found_key record;
        BEGIN
            PERFORM set_config('streamflow.tenant', '', true);
            PERFORM set_config('streamflow.tenant_proof', '', true);
            SELECT k.organization_id, k.revoked_at, k.expires_at, o.status
              INTO found_key
              FROM public.api_keys k JOIN public.organizations o ON o.id = k.organization_id
             WHERE k.prefix = split_part(api_key, '_', 2)
               AND k.key_hash = encode(sha256(convert_to(api_key, 'UTF8')), 'hex');
            IF NOT FOUND THEN
                RETURN 'unknown';
            ELSIF found_key.revoked_at IS NOT NULL THEN
                RETURN 'revoked';
            ELSIF found_key.expires_at IS NOT NULL AND found_key.expires_at <= now() THEN
                RETURN 'expired';
            ELSIF found_key.status <> 'active' THEN
                RETURN 'suspended';
            END IF;
            PERFORM set_config('streamflow.tenant', found_key.organization_id::text, true);
            PERFORM set_config(
                'streamflow.tenant_proof',
                public.streamflow_scope_proof(found_key.organization_id::text),
                true
            );
            RETURN 'ok';
        END
        $$
        """
    )
    op.execute(
        "REVOKE ALL ON FUNCTION streamflow_scope_proof(text), streamflow_tenant(), "
        "streamflow_enter_tenant(text) FROM PUBLIC"
    )
    op.execute(
        "GRANT EXECUTE ON FUNCTION streamflow_tenant(), streamflow_enter_tenant(text) "
        f"TO {APP_ROLE}"
    )


def _old_policy_names(table: str) -> list[str]:
    return [f"{table}_{action}" for action in ("read", "insert", "update", "delete")]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _create_role(APP_ROLE)
    _create_role(PLATFORM_ROLE)
    _owner_acts_for_the_platform()
    # Nobody but the owner creates objects in the schema (PostgreSQL 15's default; older
    # databases granted it to everyone).
    op.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")

    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}, {PLATFORM_ROLE}")
    op.execute(
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {PLATFORM_ROLE}"
    )
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {PLATFORM_ROLE}")
    # Tables of later migrations are the platform's too; the tenant role gets each explicitly.
    op.execute(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {PLATFORM_ROLE}"
    )
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES "
        f"TO {PLATFORM_ROLE}"
    )
    op.execute(f"REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {PLATFORM_ROLE}")
    op.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {APP_ROLE}")
    for table, privileges in TENANT_REVOKES.items():
        op.execute(f"REVOKE {privileges} ON {table} FROM {APP_ROLE}")
    op.execute(f"GRANT UPDATE ({TENANT_KEY_COLUMNS}) ON api_keys TO {APP_ROLE}")

    _scope_functions()

    for table, conditions in TENANT_POLICIES.items():
        for name in _old_policy_names(table):
            op.execute(f"DROP POLICY IF EXISTS {name} ON {table}")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {table}_platform ON {table} FOR ALL TO {PLATFORM_ROLE} "
            "USING (true) WITH CHECK (true)"
        )
        for action, condition in zip(ACTIONS, conditions, strict=True):
            if condition is None:
                continue
            name = f"{table}_tenant_{action}"
            if action == "select" or action == "delete":
                clause = f"USING ({condition})"
            elif action == "insert":
                clause = f"WITH CHECK ({condition})"
            else:
                clause = f"USING ({condition}) WITH CHECK ({condition})"
            op.execute(
                f"CREATE POLICY {name} ON {table} FOR {action.upper()} TO {APP_ROLE} {clause}"
            )
    # The secret is created after the grants above, and the platform's default privileges
    # would not cover it either: say so anyway.
    op.execute(f"REVOKE ALL ON {SECRET_TABLE} FROM {APP_ROLE}, {PLATFORM_ROLE}")


# What 0002 set up, restored on downgrade.
_SYSTEM = "current_setting('streamflow.scope', true) = 'system'"
_OWN_ORG = "organization_id = NULLIF(current_setting('streamflow.org_id', true), '')::uuid"
_PROVIDER_ORGS = "organization_id IN (SELECT id FROM organizations WHERE kind = 'provider')"
_AUTHENTICATING = "current_setting('streamflow.scope', true) = 'authenticate'"
_OLD_POLICIES = (
    ("api_keys", f"{_SYSTEM} OR {_OWN_ORG} OR {_AUTHENTICATING}", f"{_SYSTEM} OR {_OWN_ORG}"),
    ("audit_log", f"{_SYSTEM} OR {_OWN_ORG}", f"{_SYSTEM} OR {_OWN_ORG}"),
    (
        "golden_datasets",
        f"{_SYSTEM} OR {_OWN_ORG} OR {_PROVIDER_ORGS}",
        f"{_SYSTEM} OR {_OWN_ORG}",
    ),
    (
        "golden_dataset_versions",
        "EXISTS (SELECT 1 FROM golden_datasets d WHERE d.id = golden_dataset_id)",
        "EXISTS (SELECT 1 FROM golden_datasets d WHERE d.id = golden_dataset_id)",
    ),
    ("evaluation_runs", f"{_SYSTEM} OR {_OWN_ORG}", f"{_SYSTEM} OR {_OWN_ORG}"),
    (
        "evaluation_example_scores",
        "EXISTS (SELECT 1 FROM evaluation_runs r WHERE r.id = run_id)",
        "EXISTS (SELECT 1 FROM evaluation_runs r WHERE r.id = run_id)",
    ),
    (
        "evaluation_metrics",
        "EXISTS (SELECT 1 FROM evaluation_runs r WHERE r.id = run_id)",
        "EXISTS (SELECT 1 FROM evaluation_runs r WHERE r.id = run_id)",
    ),
    (
        "system_notices",
        f"{_SYSTEM} OR audience = 'all' OR EXISTS (SELECT 1 FROM system_notice_audiences a "
        "WHERE a.notice_id = id)",
        _SYSTEM,
    ),
    ("system_notice_audiences", f"{_SYSTEM} OR {_OWN_ORG}", _SYSTEM),
    ("notice_acknowledgements", f"{_SYSTEM} OR {_OWN_ORG}", f"{_SYSTEM} OR {_OWN_ORG}"),
    ("idempotency_records", f"{_SYSTEM} OR {_OWN_ORG}", f"{_SYSTEM} OR {_OWN_ORG}"),
)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, conditions in TENANT_POLICIES.items():
        op.execute(f"DROP POLICY IF EXISTS {table}_platform ON {table}")
        for action, condition in zip(ACTIONS, conditions, strict=True):
            if condition is not None:
                op.execute(f"DROP POLICY IF EXISTS {table}_tenant_{action} ON {table}")
    op.execute("ALTER TABLE organizations NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE organizations DISABLE ROW LEVEL SECURITY")
    for table, read, write in _OLD_POLICIES:
        op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT USING ({read})")
        op.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT WITH CHECK ({write})")
        op.execute(
            f"CREATE POLICY {table}_update ON {table} FOR UPDATE "
            f"USING ({write}) WITH CHECK ({write})"
        )
        op.execute(f"CREATE POLICY {table}_delete ON {table} FOR DELETE USING ({write})")
    op.execute("DROP FUNCTION IF EXISTS streamflow_enter_tenant(text)")
    op.execute("DROP FUNCTION IF EXISTS streamflow_tenant()")
    op.execute("DROP FUNCTION IF EXISTS streamflow_scope_proof(text)")
    op.execute(f"DROP TABLE IF EXISTS {SECRET_TABLE}")
    op.execute(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {PLATFORM_ROLE}"
    )
    op.execute(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"REVOKE USAGE, SELECT ON SEQUENCES FROM {PLATFORM_ROLE}"
    )
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {PLATFORM_ROLE}")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {PLATFORM_ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {PLATFORM_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}")
