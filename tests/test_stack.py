"""The chosen libraries that the rest of the suite does not reach yet, each put to one real use."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest


class TestEvidently:
    # Raised while evidently imports (its numpy.core patch, litestar's deprecated Dependency);
    # neither is StreamFlow's to fix, and both are hidden outside tests by Python's defaults.
    @pytest.mark.filterwarnings("ignore:numpy.core is deprecated:DeprecationWarning")
    @pytest.mark.filterwarnings("ignore:.*Deprecated in litestar:DeprecationWarning")
    def test_data_drift_preset_flags_the_shifted_column_only(self) -> None:
        """A DataDriftPreset report finds drift in a shifted column and none in an unchanged one."""
        from evidently import Report
        from evidently.presets import DataDriftPreset

        rng = np.random.default_rng(7)
        reference = pd.DataFrame(
            {"latency_ms": rng.normal(100, 10, 300), "score": rng.normal(0.5, 0.1, 300)}
        )
        current = pd.DataFrame(
            {"latency_ms": rng.normal(160, 10, 300), "score": reference["score"].to_numpy()}
        )

        result = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)

        metrics = result.dict()["metrics"]
        p_values = {
            m["config"]["column"]: m["value"]
            for m in metrics
            if m["config"]["type"].endswith(":ValueDrift")
        }
        threshold = next(
            m["config"]["threshold"] for m in metrics if m["config"]["type"].endswith(":ValueDrift")
        )
        assert p_values["latency_ms"] < threshold
        assert p_values["score"] > threshold
        (drifted,) = (m for m in metrics if m["config"]["type"].endswith(":DriftedColumnsCount"))
        assert drifted["value"] == {"count": 1.0, "share": 0.5}


class TestDuckDB:
    def test_sql_over_a_pandas_frame(self) -> None:
        """DuckDB aggregates a pandas frame in place, integer cents staying integers."""
        import duckdb

        usage = pd.DataFrame(
            {
                "org": ["acme", "acme", "globex", "acme", "globex"],
                "cost_cents": [120, 80, 15, 5, 30],
            }
        )
        with duckdb.connect() as connection:
            connection.register("usage", usage)
            rows = connection.execute(
                "SELECT org, sum(cost_cents) AS total, count(*) AS calls "
                "FROM usage GROUP BY org ORDER BY total DESC"
            ).fetchall()
            frame = connection.execute("SELECT * FROM usage WHERE cost_cents >= 30").df()

        assert rows == [("acme", 205, 3), ("globex", 45, 2)]
        assert all(isinstance(total, int) for _, total, _ in rows)
        assert frame["cost_cents"].tolist() == [120, 80, 30]


@pytest.fixture(scope="module")
def account_key() -> Any:
    """An ACME account key: a fresh P-256 key as a JWK."""
    import josepy
    from cryptography.hazmat.primitives.asymmetric import ec

    return josepy.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))


class TestAcme:
    def test_csr_for_a_custom_domain_names_it_and_is_signed_by_the_key(self) -> None:
        """make_csr with a P-256 key gives a PEM CSR whose SANs are the domains, validly signed."""
        from acme.crypto_util import make_csr
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

        csr = x509.load_pem_x509_csr(make_csr(pem, ["ai.acme.test", "www.ai.acme.test"]))

        names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sorted(names.get_values_for_type(x509.DNSName)) == [
            "ai.acme.test",
            "www.ai.acme.test",
        ]
        assert csr.is_signature_valid
        assert csr.public_key() == key.public_key()

    def test_jws_signed_with_the_account_key_verifies_and_detects_tampering(
        self, account_key: Any
    ) -> None:
        """An ES256 JWS carries its nonce and URL, verifies with the key and fails once altered."""
        import josepy
        from acme import jws

        signed = jws.JWS.sign(
            b'{"identifiers": [{"type": "dns", "value": "ai.acme.test"}]}',
            key=account_key,
            alg=josepy.ES256,
            nonce=b"nonce-1",
            url="https://acme.test/new-order",
        )
        received = jws.JWS.json_loads(signed.json_dumps())

        assert received.verify(account_key.public_key())
        assert received.signature.combined.url == "https://acme.test/new-order"
        assert received.signature.combined.nonce == b"nonce-1"
        assert not received.update(payload=b"{}").verify(account_key.public_key())


class TestDnspython:
    def test_an_in_memory_zone_answers_the_acme_dns01_txt_query(self, account_key: Any) -> None:
        """A TXT query answered from an in-memory zone carries the DNS-01 value acme computes."""
        import dns.message
        import dns.rdatatype
        import dns.zone
        from acme import challenges

        challenge = challenges.DNS01(token=b"\x01" * 32)
        validation = challenge.validation(account_key)
        zone = dns.zone.from_text(
            "@ 300 IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n"
            "@ 300 IN NS ns1\n"
            "ns1 300 IN A 192.0.2.53\n"
            f'_acme-challenge.ai 60 IN TXT "{validation}"\n',
            origin="acme.test.",
            relativize=False,
        )

        name = challenge.validation_domain_name("ai.acme.test") + "."
        query = dns.message.make_query(name, dns.rdatatype.TXT)
        response = dns.message.make_response(query)
        found = zone.find_rrset(dns.name.from_text(name), dns.rdatatype.TXT)
        response.answer.append(found)
        answer = dns.message.from_wire(response.to_wire())

        (rrset,) = answer.answer
        assert rrset.name == dns.name.from_text("_acme-challenge.ai.acme.test.")
        assert rrset.ttl == 60
        assert [b"".join(txt.strings).decode() for txt in rrset] == [validation]
        assert challenge.response(account_key).simple_verify(
            challenge, "ai.acme.test", account_key.public_key()
        )
        assert zone.get_rrset("_acme-challenge.www.ai.acme.test.", dns.rdatatype.TXT) is None


class TestCachetools:
    def test_ttl_cache_expires_on_the_injected_clock_and_evicts_least_recent(self) -> None:
        """A TTLCache on an injected clock drops entries at their TTL and the LRU one when full."""
        from cachetools import TTLCache

        now = [0.0]
        cache: TTLCache[str, int] = TTLCache(maxsize=2, ttl=60, timer=lambda: now[0])
        cache["a"] = 1
        cache["b"] = 2
        assert cache["a"] == 1  # "b" is now the least recently used
        cache["c"] = 3
        assert set(cache) == {"a", "c"}

        now[0] = 59.0
        assert cache.get("a") == 1
        now[0] = 60.0
        assert cache.get("a") is None
        assert len(cache) == 0
