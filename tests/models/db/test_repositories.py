"""The repositories on both backends: keyset pages, scoping and the audit log."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.db.repositories.api_keys import ApiKeyRepository
from models.db.repositories.audit import AuditRepository
from models.db.repositories.base import Keyset, KeysetPage
from models.db.repositories.golden_datasets import GoldenDatasetRepository
from models.db.repositories.idempotency import IdempotencyRepository
from models.db.repositories.notices import NoticeRepository
from models.db.repositories.organizations import OrganizationRepository
from models.db.tables import ApiKey, AuditLogEntry, Organization, SystemNotice
from pipelines.errors import InvalidInput
from pipelines.pagination import Paged, after_key, as_paged, encode_cursor, next_cursor

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _org(session: Session, slug: str, kind: str = "tenant") -> Organization:
    return OrganizationRepository(session).add(slug=slug, name=slug.title(), kind=kind)


def _key(session: Session, org: Organization, created_at: datetime) -> ApiKey:
    return ApiKeyRepository(session).add(
        ApiKey(
            organization_id=org.id,
            name="k",
            prefix=uuid.uuid4().hex[:12],
            key_hash="0" * 64,
            created_at=created_at,
        )
    )


def _notice(session: Session, created_at: datetime, starts_at: datetime) -> SystemNotice:
    notice = SystemNotice(
        title="t",
        body="b",
        severity="info",
        audience="all",
        starts_at=starts_at,
        created_at=created_at,
        updated_at=created_at,
    )
    return NoticeRepository(session).add(notice, [])


class TestKeysetPaging:
    def test_pages_walk_every_row_once_in_order_across_ties(self, session: Session) -> None:
        """Keys sharing a creation time still page completely: the id breaks the tie."""
        org = _org(session, "acme")
        other = _org(session, "globex")
        created = [T0, T0, T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=1)]
        keys = [_key(session, org, when) for when in created]
        _key(session, other, T0)
        repository = ApiKeyRepository(session)
        seen: list[uuid.UUID] = []
        after = None
        for _ in range(10):
            page = repository.page_for(org.id, after=after, limit=2)
            assert len(page.items) <= 2
            seen.extend(key.id for key in page.items)
            if page.next_key is None:
                break
            assert page.next_key == (page.items[-1].created_at, page.items[-1].id)
            after = page.next_key
        expected = sorted(keys, key=lambda key: (key.created_at, key.id))
        assert seen == [key.id for key in expected]

    def test_a_full_last_page_says_no_more(self, session: Session) -> None:
        """Exactly `limit` rows left: one page and no cursor (the limit + 1 contract)."""
        org = _org(session, "acme")
        for offset in range(3):
            _key(session, org, T0 + timedelta(minutes=offset))
        page = ApiKeyRepository(session).page_for(org.id, after=None, limit=3)
        assert len(page.items) == 3
        assert page.next_key is None
        shorter = ApiKeyRepository(session).page_for(org.id, after=None, limit=2)
        assert shorter.next_key == (shorter.items[-1].created_at, shorter.items[-1].id)

    def test_descending_keysets_page_newest_first(self, session: Session) -> None:
        """Notices list newest created first, and tenants see the latest started first."""
        tenant = _org(session, "acme")
        notices = [
            _notice(session, T0 + timedelta(hours=i), T0 - timedelta(hours=i)) for i in range(5)
        ]
        repository = NoticeRepository(session)
        walked: list[uuid.UUID] = []
        after = None
        while True:
            page = repository.page_all(after=after, limit=2)
            walked.extend(notice.id for notice in page.items)
            if page.next_key is None:
                break
            after = page.next_key
        assert walked == [n.id for n in reversed(notices)]
        active = repository.page_active_for(tenant.id, now=T0, after=None, limit=10)
        assert [notice.id for notice, _ in active.items] == [n.id for n in notices]
        assert all(acknowledged is None for _, acknowledged in active.items)

    def test_limit_below_one_is_refused(self, session: Session) -> None:
        """A page of nothing is a caller's mistake, not an empty listing."""
        org = _org(session, "acme")
        with pytest.raises(ValueError, match="limit must be at least 1"):
            ApiKeyRepository(session).page_for(org.id, after=None, limit=0)


class TestKeysetParts:
    def test_keyset_knows_its_python_types(self) -> None:
        """A cursor decodes to the column types: aware datetimes, UUIDs, strings, integers."""
        assert ApiKeyRepository.ORDER.kinds == (datetime, uuid.UUID)
        assert OrganizationRepository.TENANT_ORDER.kinds == (str,)
        assert AuditRepository.ORDER.kinds == (int,)

    def test_a_key_of_the_wrong_length_is_refused(self) -> None:
        """Half a key would silently widen the page; it raises instead."""
        with pytest.raises(ValueError, match="has 2 values, not 1"):
            ApiKeyRepository.ORDER.after((T0,))

    def test_keys_are_read_from_rows_holding_several_entities(self) -> None:
        """The key of a joined row comes from the entity that owns each column."""
        org = Organization(slug="acme", name="Acme", kind="tenant")
        key = ApiKey(id=uuid.uuid4(), created_at=T0)
        assert ApiKeyRepository.ORDER.key_of((org, key)) == (T0, key.id)
        with pytest.raises(TypeError, match="no ApiKey"):
            ApiKeyRepository.ORDER.key_of((org,))

    def test_in_memory_pages_follow_the_same_contract(self) -> None:
        """Three rows, limit two: two items and the key of the second; limit three: no key."""
        page = KeysetPage.of(["a", "b", "c"], 2, lambda item: (item,))
        assert page == KeysetPage(["a", "b"], ("b",))
        assert KeysetPage.of(["a", "b", "c"], 3, lambda item: (item,)).next_key is None
        assert Keyset.of(Organization.slug).order_by()[0].compare(Organization.slug.asc())


class TestScoping:
    def test_tenants_page_by_slug_without_the_provider(self, session: Session) -> None:
        """The tenant listing holds tenants only, by slug."""
        _org(session, "platform", kind="provider")
        for slug in ("zeta", "alpha", "mid"):
            _org(session, slug)
        page = OrganizationRepository(session).page_tenants(after=None, limit=10)
        assert [org.slug for org in page.items] == ["alpha", "mid", "zeta"]
        after = OrganizationRepository(session).page_tenants(after=("alpha",), limit=10)
        assert [org.slug for org in after.items] == ["mid", "zeta"]

    def test_datasets_show_own_and_shared_never_another_tenants(self, session: Session) -> None:
        """A tenant sees its datasets and the provider's, never another tenant's."""
        provider = _org(session, "platform", kind="provider")
        a, b = _org(session, "acme"), _org(session, "globex")
        datasets = GoldenDatasetRepository(session)
        datasets.add(organization_id=provider.id, name="shared", task="classification")
        datasets.add(organization_id=a.id, name="a-only", task="classification")
        datasets.add(organization_id=b.id, name="b-only", task="classification")
        seen = datasets.page_visible(a.id, limit=10)
        assert [(d.name, v) for d, v in seen.items] == [("a-only", None), ("shared", None)]
        assert datasets.get_by_name(a.id, "b-only") is None
        assert datasets.get_owned(a.id, "shared") is None

    def test_api_keys_are_found_only_within_their_organisation(self, session: Session) -> None:
        """`get` is scoped: another organisation's key id finds nothing."""
        a, b = _org(session, "acme"), _org(session, "globex")
        key = _key(session, a, T0)
        keys = ApiKeyRepository(session)
        assert keys.get(a.id, key.id) is key
        assert keys.get(b.id, key.id) is None
        found = keys.by_prefix(key.prefix)
        assert found is not None
        assert found[1].id == a.id


class TestAudit:
    def test_audit_pages_filter_and_run_newest_first(self, session: Session) -> None:
        """Filters combine; the page runs newest first and carries each row's organisation slug."""
        org = _org(session, "acme")
        audit = AuditRepository(session)
        for i in range(4):
            audit.record(
                actor="ops" if i % 2 else "ci",
                organization_id=org.id if i < 3 else None,
                action="thing.done",
                target_type="thing",
                target_id=str(i),
            )
        session.flush()
        everything = audit.page_matching(limit=10).items
        assert [entry.target_id for entry, _ in everything][:4] == ["3", "2", "1", "0"]
        mine = audit.page_matching(organization_id=org.id, actor="ops", limit=10)
        assert [(entry.target_id, slug) for entry, slug in mine.items] == [("1", "acme")]
        first = audit.page_matching(organization_id=org.id, limit=2)
        assert first.next_key == (first.items[-1][0].id,)
        rest = audit.page_matching(organization_id=org.id, after=first.next_key, limit=2)
        assert [entry.target_id for entry, _ in rest.items] == ["0"]
        assert rest.next_key is None

    def test_audit_rows_carry_the_logging_context(self, session: Session) -> None:
        """The request id in the structlog context lands on the row."""
        import structlog

        with structlog.contextvars.bound_contextvars(request_id="req-1"):
            entry = AuditRepository(session).record(
                actor="ops", organization_id=None, action="x.y", target_type="x", target_id="1"
            )
        session.flush()
        stored = session.scalars(select(AuditLogEntry).where(AuditLogEntry.id == entry.id)).one()
        assert (stored.request_id, stored.flow_run_id, stored.details) == ("req-1", None, {})


class TestIdempotency:
    def test_a_key_is_claimed_once_per_scope(self, session: Session) -> None:
        """The second claim of (scope, key) loses; another scope may use the same key."""
        records = IdempotencyRepository(session)
        claim = {"key": "k1", "request_hash": "h", "organization_id": None, "now": T0}
        assert records.claim(scope="s1", **claim) is True
        assert records.claim(scope="s1", **claim) is False
        assert records.claim(scope="s2", **claim) is True
        records.store_response("s1", "k1", status_code=201, body="{}")
        stored = records.get("s1", "k1")
        assert stored is not None
        assert (stored.status_code, stored.response_body) == (201, "{}")


class TestCursors:
    def test_a_cursor_round_trips_to_the_next_page(self, session: Session) -> None:
        """The services' opaque cursor decodes to the key the repository handed out."""
        org = _org(session, "acme")
        for offset in range(3):
            _key(session, org, T0 + timedelta(minutes=offset))
        first = ApiKeyRepository(session).page_for(org.id, after=None, limit=2)
        cursor = next_cursor(first)
        assert cursor is not None
        after = after_key(cursor, ApiKeyRepository.ORDER)
        assert after == first.next_key
        rest = ApiKeyRepository(session).page_for(org.id, after=after, limit=2)
        assert as_paged(rest, lambda key: key.created_at) == Paged(
            [T0 + timedelta(minutes=2)], None
        )

    @pytest.mark.parametrize(
        "cursor",
        ["not-base64!", encode_cursor("acme"), encode_cursor("2026-11-20T09:00:00", uuid.uuid4())],
        ids=["garbage", "wrong-arity", "naive-time"],
    )
    def test_a_foreign_cursor_is_invalid_input(self, cursor: str) -> None:
        """A cursor that is not one of this listing's says so and how to get a good one."""
        with pytest.raises(InvalidInput, match="pass next_cursor from a previous page"):
            after_key(cursor, ApiKeyRepository.ORDER)
