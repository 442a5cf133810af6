"""Tenant authentication side effects that row-level security could silently block."""

from __future__ import annotations

from datetime import UTC, datetime

from models.db.engine import make_engine, make_sessionmaker
from models.db.tables import ApiKey
from tests.api.conftest import World


class TestKeyUse:
    def test_a_request_records_last_used_at(self, world: World) -> None:
        """The key's last_used_at is written by a request, on PostgreSQL with RLS as on SQLite."""
        response = world.client.get("/v1/evaluations", headers=world.tenant_a.headers)
        assert response.status_code == 200
        engine = make_engine(world.state.storage.resolved_database_url())
        try:
            with make_sessionmaker(engine)() as session:
                key = session.get(ApiKey, world.tenant_a.api_key_id)
                assert key is not None
                assert key.last_used_at is not None
        finally:
            engine.dispose()


class TestRevocationElsewhere:
    def test_a_key_revoked_by_another_process_stops_at_its_next_database_use(
        self, world: World
    ) -> None:
        """On PostgreSQL every tenant transaction presents the key to the database again, so a
        key revoked elsewhere gets 401 at once, though this process still remembers it; on
        SQLite the process remembers it for up to `auth_cache_seconds`, as documented."""
        headers = world.tenant_a.headers
        assert world.client.get("/v1/evaluations", headers=headers).status_code == 200
        engine = make_engine(world.state.storage.resolved_database_url())
        try:
            with make_sessionmaker(engine)() as session, session.begin():
                key = session.get(ApiKey, world.tenant_a.api_key_id)
                assert key is not None
                key.revoked_at = datetime.now(UTC)
        finally:
            engine.dispose()
        response = world.client.get("/v1/evaluations", headers=headers)
        if world.backend == "postgresql":
            assert response.status_code == 401, response.text
            assert "revoked" in response.json()["detail"]
        else:
            assert response.status_code == 200, response.text
        # Forgotten or not, the key is refused once the process asks the database again.
        world.state.principals.forget_all()
        assert world.client.get("/v1/evaluations", headers=headers).status_code == 401
