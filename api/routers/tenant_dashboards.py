"""Tenants' own pages: what a tenant signed in with an API key sees of itself, and nothing else.

Every database read runs in the tenant's row scope (`TenantPage`), like the tenant API.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.dashboards.auth import TenantPage
from api.dashboards.pages import PageRoute, render
from pipelines.evaluation.views import runs_page
from pipelines.notices.service import notices_for_tenant

router = APIRouter(prefix="/dashboards/tenant", include_in_schema=False, route_class=PageRoute)


@router.get("")
def tenant_home(
    request: Request,
    context: TenantPage,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """The tenant's active notices and its own evaluation runs."""
    organization_id = context.signed_in.organization_id
    assert organization_id is not None, "TenantPage guarantees a tenant session"
    runs = runs_page(context.session, organization_id=organization_id, cursor=cursor, limit=50)
    notices = notices_for_tenant(
        context.session, organization_id=organization_id, now=context.now, cursor=None, limit=20
    )
    return render(
        request,
        "tenant_home.html",
        context,
        runs=runs.items,
        next_cursor=runs.next_cursor,
        notices=notices.items,
    )
