"""Tenants' own pages: what a tenant signed in with an API key sees of itself, and nothing else.

Every database read runs in the tenant's row scope (`TenantPage`), like the tenant API.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from api.dashboards.auth import DashboardContext, TenantChange, TenantPage
from api.dashboards.pages import PageRoute, render
from api.deps import StateDep
from api.domain_checks import check_tenant_domain_now
from pipelines.domains.service import add_domain, dns_config_from, remove_domain
from pipelines.domains.views import domain_overview, domain_overviews_page
from pipelines.evaluation.views import runs_page
from pipelines.notices.service import notices_for_tenant

router = APIRouter(prefix="/dashboards/tenant", include_in_schema=False, route_class=PageRoute)

PAGE_SIZE = 50
Cursor = Annotated[str | None, Query(max_length=1000)]


def _organization(context: DashboardContext) -> uuid.UUID:
    organization_id = context.signed_in.organization_id
    assert organization_id is not None, "TenantPage guarantees a tenant session"
    return organization_id


def _back(path: str) -> Response:
    return RedirectResponse(path, status_code=303)


@router.get("")
def tenant_home(
    request: Request,
    context: TenantPage,
    cursor: Cursor = None,
) -> Response:
    """The tenant's active notices and its own evaluation runs."""
    organization_id = _organization(context)
    runs = runs_page(context.session, organization_id=organization_id, cursor=cursor, limit=50)
    notices = notices_for_tenant(
        context.session, organization_id=organization_id, now=context.now, cursor=None, limit=20
    )
    return render(
        request,
        "tenant_home.html",
        context,
        section="tenant",
        runs=runs.items,
        next_cursor=runs.next_cursor,
        notices=notices.items,
    )


# --- domains --------------------------------------------------------------------------------


@router.get("/domains")
def tenant_domains(request: Request, context: TenantPage, cursor: Cursor = None) -> Response:
    """The tenant's domains with their verification and certificate status; add one here."""
    found = domain_overviews_page(
        context.session, organization_id=_organization(context), cursor=cursor, limit=PAGE_SIZE
    )
    return render(
        request,
        "tenant_domains.html",
        context,
        section="domains",
        domains=found.items,
        next_cursor=found.next_cursor,
    )


@router.post("/domains")
def add_tenant_domain(
    state: StateDep, context: TenantChange, hostname: Annotated[str, Form(max_length=300)]
) -> Response:
    """Claim a hostname, then show the TXT record to publish."""
    added = add_domain(
        context.session,
        organization_id=_organization(context),
        hostname=hostname,
        actor=context.actor,
        now=context.now,
        config=dns_config_from(state.domains),
    )
    return _back(f"/dashboards/tenant/domains/{added.id}")


@router.get("/domains/{domain_id}")
def tenant_domain(request: Request, context: TenantPage, domain_id: uuid.UUID) -> Response:
    """One domain: the record to publish, what the last checks found, its certificate."""
    overview = domain_overview(
        context.session, organization_id=_organization(context), domain_id=domain_id
    )
    return render(request, "tenant_domain.html", context, section="domains", overview=overview)


@router.post("/domains/{domain_id}/verify")
def verify_tenant_domain(state: StateDep, context: TenantChange, domain_id: uuid.UUID) -> Response:
    """Check ownership through DNS now (the tenant's own domain only), then show it."""
    check_tenant_domain_now(
        state,
        context.session,
        organization_id=_organization(context),
        domain_id=domain_id,
        now=context.now,
        actor=context.actor,
    )
    return _back(f"/dashboards/tenant/domains/{domain_id}")


@router.post("/domains/{domain_id}/remove")
def remove_tenant_domain(context: TenantChange, domain_id: uuid.UUID) -> Response:
    """Remove the claim and its certificate."""
    remove_domain(
        context.session,
        organization_id=_organization(context),
        domain_id=domain_id,
        actor=context.actor,
    )
    return _back("/dashboards/tenant/domains")
