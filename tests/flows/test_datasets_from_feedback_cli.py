"""`streamflow datasets from-feedback`: tenants' corrected outputs, with the inputs they were
given for, become a new golden dataset version; the same feedback exported again makes none."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from typer.testing import CliRunner

from flows.cli import app
from flows.runtime import Runtime
from models.db.engine import transaction
from models.db.tables import Feedback, GoldenDatasetVersion, TrafficLogEntry
from pipelines.golden_datasets.service import load_version_frame
from pipelines.organizations import ensure_organization

runner = CliRunner()
AGENT = "summarizer"


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _served(rt: Runtime, tenant: uuid.UUID, text: str, output: str, feedback: dict[str, str],
            at: datetime, agent: str = AGENT) -> str:  # fmt: skip
    """A served prediction and the tenant's feedback on it (kind → value); its request id."""
    request_id = uuid.uuid4().hex
    with transaction(rt.sessions) as session:
        session.add(
            TrafficLogEntry(
                request_id=request_id,
                organization_id=tenant,
                agent_type=agent,
                role="served",
                model_version=f"{agent}-model@1",
                input_hash=hashlib.sha256(text.encode()).hexdigest(),
                input_text=text,
                output_text=output,
                input_chars=len(text),
                created_at=at,
            )
        )
        for kind, value in feedback.items():
            session.add(
                Feedback(
                    request_id=request_id,
                    organization_id=tenant,
                    agent_type=agent,
                    kind=kind,
                    value=value,
                    rating=float(value) if kind == "rating" else None,
                    created_by="test",
                    created_at=at,
                )
            )
    return request_id


def _export(name: str) -> tuple[int, dict[str, object] | str]:
    code, out, err = _run(
        "datasets", "from-feedback", "--agent", AGENT, "--name", name,
        "--task", "text_generation", "--org", "provider", "--json",
    )  # fmt: skip
    return code, json.loads(out) if code == 0 else err


def test_corrections_become_a_version_and_a_rerun_adds_none(streamflow: Runtime) -> None:
    rt = streamflow
    now = datetime.now(UTC)
    with transaction(rt.sessions) as session:
        ensure_organization(session, slug="provider", name="P", kind="provider", actor="test")
        tenant, _ = ensure_organization(
            session, slug="tenant-fb", name="T", kind="tenant", actor="test"
        )
        tenant_id = tenant.id

    code, err = _export("support-fixes")
    assert code == 1
    assert "no correction feedback on summarizer" in str(err)

    first = _served(
        rt, tenant_id, "The printer jams on page two.", "Printer broken.",
        {"correction": "Printer jams on page two.", "rating": "2"}, now,
    )  # fmt: skip
    second = _served(
        rt, tenant_id, "Refund requested for order 7.", "Order 7.",
        {"correction": "Customer wants a refund for order 7."}, now + timedelta(seconds=1),
    )  # fmt: skip
    _served(rt, tenant_id, "Great service, thanks.", "Praise.", {"rating": "5"}, now)
    _served(rt, tenant_id, "Other agent", "x", {"correction": "y"}, now, agent="other")

    code, exported = _export("support-fixes")
    assert code == 0, exported
    assert isinstance(exported, dict)
    assert (exported["dataset"], exported["version"], exported["rows"], exported["created"]) == (
        "support-fixes",
        1,
        2,
        True,
    )

    with transaction(rt.sessions) as session:
        version = session.scalars(select(GoldenDatasetVersion)).one()
        frame = load_version_frame(rt.storage.golden_dataset_dir, version)
    assert version.content_hash == exported["content_hash"]
    rows = frame.sort_values("id")[["id", "input", "expected", "slice"]].to_dict("records")
    assert rows == sorted(
        [
            {
                "id": first,
                "input": "The printer jams on page two.",
                "expected": "Printer jams on page two.",
                "slice": "feedback",
            },
            {
                "id": second,
                "input": "Refund requested for order 7.",
                "expected": "Customer wants a refund for order 7.",
                "slice": "feedback",
            },
        ],
        key=lambda row: row["id"],
    )

    # No new feedback: the same version comes back, and none is added.
    code, again = _export("support-fixes")
    assert code == 0, again
    assert isinstance(again, dict)
    assert (again["version"], again["created"], again["content_hash"]) == (
        1,
        False,
        exported["content_hash"],
    )

    # A new correction: the next version, with all three.
    _served(
        rt, tenant_id, "Password reset link expired.", "Link.",
        {"correction": "The password reset link expired."}, now + timedelta(seconds=2),
    )  # fmt: skip
    code, third = _export("support-fixes")
    assert code == 0, third
    assert isinstance(third, dict)
    assert (third["version"], third["rows"], third["created"]) == (2, 3, True)
    with transaction(rt.sessions) as session:
        versions = session.scalar(select(func.count()).select_from(GoldenDatasetVersion))
    assert versions == 2
