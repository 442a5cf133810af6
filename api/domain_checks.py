"""A tenant's "check now" on one of its domains, from any surface that offers it.

Two logins, in a clear order: the tenant's own row-scoped session proves the domain is the
caller's (404 otherwise); then the check runs on the platform's login, in a transaction of its
own, because a proven claim may take the hostname over from another tenant (released and
notified), a write across tenants that the tenant login may not make.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from api.state import ApiState
from pipelines.domains.read_models import DomainDetail
from pipelines.domains.service import dns_config_from, verify_domain_now
from pipelines.domains.views import get_domain


def check_tenant_domain_now(
    state: ApiState,
    tenant_session: Session,
    *,
    organization_id: uuid.UUID,
    domain_id: uuid.UUID,
    now: datetime,
    actor: str,
) -> DomainDetail:
    """Check the tenant's domain through DNS now; audited with what it found."""
    get_domain(tenant_session, organization_id=organization_id, domain_id=domain_id)
    # The service still finds the domain by this tenant's id only, and audits the check in the
    # platform's transaction, beside the writes it makes.
    with state.sessions() as platform, platform.begin():
        return verify_domain_now(
            platform,
            organization_id=organization_id,
            domain_id=domain_id,
            config=dns_config_from(state.domains),
            now=now,
            actor=actor,
        )
