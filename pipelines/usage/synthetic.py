"""Seeded synthetic usage events (for the demo and small experiments): tenants using a few
agents and model versions over some days, one event in ten a job done without an AI agent."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pyarrow as pa

AGENTS = {"summarizer": "job-note-summarizer@1", "intent_classifier": "intent-classifier@1"}


def synthetic_usage(
    tenants: Sequence[str], *, first_day: date, days: int, per_tenant_day: int, seed: int
) -> pa.Table:
    """Events with the usage columns; the same arguments give the same events (and ids)."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list[object]] = {
        name: []
        for name in (
            "event_id",
            "tenant",
            "occurred_at",
            "agent_type",
            "model_version",
            "tokens_in",
            "tokens_out",
            "requests",
            "end_user_key",
            "job_id",
        )
    }
    agents = list(AGENTS)
    for position, tenant in enumerate(tenants):
        adoption = 0.6 + 0.35 * position / max(1, len(tenants) - 1)
        for offset in range(days):
            day = first_day + timedelta(days=offset)
            midnight = datetime.combine(day, time(), tzinfo=UTC)
            for n in range(per_tenant_day):
                ai = bool(rng.random() < adoption)
                agent = agents[int(rng.integers(0, len(agents)))] if ai else None
                rows["event_id"].append(f"synthetic-{seed}-{tenant}-{day.isoformat()}-{n}")
                rows["tenant"].append(tenant)
                seconds = int(rng.integers(0, 86_400))
                rows["occurred_at"].append((midnight + timedelta(seconds=seconds)).isoformat())
                rows["agent_type"].append(agent)
                rows["model_version"].append(AGENTS[agent] if agent else None)
                rows["tokens_in"].append(int(rng.integers(200, 3000)) if ai else 0)
                rows["tokens_out"].append(int(rng.integers(50, 800)) if ai else 0)
                rows["requests"].append(1 if ai else 0)
                rows["end_user_key"].append(f"{tenant}-user-{int(rng.integers(0, 12))}")
                rows["job_id"].append(f"{tenant}-{day.isoformat()}-job-{n}")
    return pa.table(
        {
            name: pa.array(
                values,
                pa.int64() if name in ("tokens_in", "tokens_out", "requests") else pa.string(),
            )
            for name, values in rows.items()
        }
    )
