"""Tenant authentication side effects that row-level security could silently block."""

from __future__ import annotations

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
