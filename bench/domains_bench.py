"""Issue, then renew, many certificates against a local Pebble with bounded concurrency.

    uv run python -m bench.domains_bench [--domains 200] [--concurrency 4]

Starts pebble-challtestsrv and Pebble (Debian package `pebble`) on loopback ports, a SQLite
database, and N verified domains; issues a certificate for each (DNS-01), then renews them all
with a clock moved past their renewal time. Reports certificates per minute and failures, with
the same work done one at a time on a tenth of the domains as the reference in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flows.domains import CertificateWork, ensure_account, process_certificates
from models.db.engine import make_engine, make_sessionmaker, transaction
from models.db.enums import DomainStatus
from models.db.migrate import upgrade
from models.db.tables import Domain
from pipelines.certificates.keys import SecretBox, new_secrets_key
from pipelines.certificates.service import AcmeConfig, ChallTestSrvProvider
from pipelines.organizations import ensure_organization
from tests.acme_servers import ChallTestSrv, Pebble


def _domains(sessions: object, count: int, tag: str) -> list[object]:
    with transaction(sessions) as session:  # type: ignore[arg-type]
        tenant, _ = ensure_organization(
            session, slug=f"bench-{tag}", name="bench", kind="tenant", actor="bench"
        )
        rows = [
            Domain(
                organization_id=tenant.id,
                hostname=f"d{i}.{tag}.example.com",
                unicode_hostname=f"d{i}.{tag}.example.com",
                verification_token="tok",
                status=DomainStatus.VERIFIED,
            )
            for i in range(count)
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def _run(work: CertificateWork, ids: list[object], concurrency: int) -> tuple[float, int, int]:
    started = time.perf_counter()
    outcomes = process_certificates(work, ids, concurrency=concurrency)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    done = sum(o.result in {"issued", "renewed"} for o in outcomes)
    return elapsed, done, sum(o.result == "failed" for o in outcomes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="domains-bench-"))
    challtestsrv = ChallTestSrv(folder).start()
    pebble = Pebble(folder / "pebble", challtestsrv.resolver, env={"PEBBLE_WFE_NONCEREJECT": "5"})
    pebble.start()
    engine = make_engine(f"sqlite:///{folder / 'bench.db'}")
    try:
        upgrade(engine)
        sessions = make_sessionmaker(engine)
        work = CertificateWork(
            sessions=sessions,
            config=AcmeConfig(pebble.directory_url, ca_bundle=pebble.ca_bundle),
            box=SecretBox(new_secrets_key()),
            dns01=ChallTestSrvProvider(challtestsrv.url),
        )
        ensure_account(work)
        reference_ids = _domains(sessions, max(1, args.domains // 10), "reference")
        ids = _domains(sessions, args.domains, "main")
        ref_s, ref_done, ref_failed = _run(work, reference_ids, 1)
        issue_s, issued, issue_failed = _run(work, ids, args.concurrency)
        later = datetime.now(UTC) + timedelta(days=365 * 4)
        work.clock = lambda: later
        renew_s, renewed, renew_failed = _run(work, ids, args.concurrency)
    finally:
        engine.dispose()
        pebble.stop()
        challtestsrv.stop()
    per_minute = issued / issue_s * 60
    reference = ref_done / ref_s * 60
    print(
        f"reference, one at a time: {ref_done} certificates in {ref_s:.1f} s = "
        f"{reference:.0f}/min, {ref_failed} failures"
    )
    print(
        f"issue {args.domains} domains, concurrency {args.concurrency}: {issued} in "
        f"{issue_s:.1f} s = {per_minute:.0f}/min (x{per_minute / reference:.2f}), "
        f"{issue_failed} failures"
    )
    print(
        f"renew {args.domains} domains, concurrency {args.concurrency}: {renewed} in "
        f"{renew_s:.1f} s = {renewed / renew_s * 60:.0f}/min, {renew_failed} failures"
    )


if __name__ == "__main__":
    main()
