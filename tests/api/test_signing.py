"""HMAC-SHA256 signatures of the provider API: canonical form, verification, key settings."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic import ValidationError

from api.settings import ProviderAuthSettings
from api.signing import (
    KEY_ID_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    SIGNING_HEADERS,
    TIMESTAMP_HEADER,
    Query,
    RejectionCode,
    SignatureRejected,
    SignedRequest,
    canonical_query,
    canonical_string,
    new_nonce,
    sign,
    verify,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
KEY_ID = "partner-2025-06"
SECRET = b"k7Qm2vX9pL4sT8wZ1cR5nB3hJ6fD0gYa"
OTHER_KEY_ID = "partner-2025-12"
OTHER_SECRET = b"Z3xC8vB1nM6qW4eR9tY2uI7oP5aS0dFg"
KEYS = {KEY_ID: SECRET}
NOW = 1_767_225_600.0
TOLERANCE = 300
NONCE = "n0nce-0123456789abcdef"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


class MemoryNonces:
    """An in-memory stand-in for the Redis nonce store that records every claim."""

    def __init__(self) -> None:
        self.claims: list[tuple[str, str, int]] = []
        self.seen: set[tuple[str, str]] = set()

    async def __call__(self, key_id: str, nonce: str, ttl_seconds: int) -> bool:
        self.claims.append((key_id, nonce, ttl_seconds))
        if (key_id, nonce) in self.seen:
            return False
        self.seen.add((key_id, nonce))
        return True


def signed(
    *,
    method: str = "POST",
    path: str = "/provider/v1/tenants",
    query: Query = (("dry_run", "true"),),
    body: bytes = b'{"slug":"acme"}',
    key_id: str = KEY_ID,
    secret: bytes = SECRET,
    timestamp: int = int(NOW),
    nonce: str = NONCE,
) -> SignedRequest:
    """A correctly signed request."""
    signature = sign(
        secret,
        key_id=key_id,
        timestamp=timestamp,
        nonce=nonce,
        method=method,
        path=path,
        query=query,
        body=body,
    )
    headers = {
        KEY_ID_HEADER: key_id,
        TIMESTAMP_HEADER: str(timestamp),
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: signature,
    }
    return SignedRequest(method=method, path=path, query=query, body=body, headers=headers)


def with_headers(request: SignedRequest, **changes: str | None) -> SignedRequest:
    """`request` with headers replaced (by Python name, e.g. nonce=) or removed (None)."""
    names = {
        "key_id": KEY_ID_HEADER,
        "timestamp": TIMESTAMP_HEADER,
        "nonce": NONCE_HEADER,
        "signature": SIGNATURE_HEADER,
    }
    headers = dict(request.headers)
    for field, value in changes.items():
        if value is None:
            del headers[names[field]]
        else:
            headers[names[field]] = value
    return replace(request, headers=headers)


def check(
    request: SignedRequest,
    *,
    keys: Mapping[str, bytes] = KEYS,
    now: float = NOW,
    nonces: MemoryNonces | None = None,
) -> str:
    """Run `verify` to completion."""
    return asyncio.run(
        verify(
            request,
            keys=keys,
            now=now,
            tolerance_seconds=TOLERANCE,
            claim_nonce=nonces if nonces is not None else MemoryNonces(),
        )
    )


def rejection(request: SignedRequest, **kwargs: Any) -> SignatureRejected:
    """The SignatureRejected that verifying `request` raises."""
    with pytest.raises(SignatureRejected) as info:
        check(request, **kwargs)
    return info.value


class TestCanonicalString:
    def test_joins_the_eight_lines_in_order(self) -> None:
        """The signed string is scheme, key id, timestamp, nonce, method, path, query, body hash."""
        text = canonical_string(
            key_id=KEY_ID,
            timestamp=1767225600,
            nonce=NONCE,
            method="post",
            path="/provider/v1/tenants/caf%C3%A9",
            query="b=2&a=1",
            body=b"hello",
        )
        assert text == (
            "v1\npartner-2025-06\n1767225600\nn0nce-0123456789abcdef\nPOST\n"
            "/provider/v1/tenants/caf%C3%A9\na=1&b=2\n"
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        )

    def test_no_query_and_no_body_give_an_empty_line_and_the_empty_hash(self) -> None:
        """Without query or body the query line is empty and the body hash is SHA-256 of b''."""
        lines = canonical_string(
            key_id=KEY_ID, timestamp=0, nonce=NONCE, method="GET", path="/", query="", body=b""
        ).split("\n")
        assert lines[-2:] == ["", EMPTY_SHA256]

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("path", "/a\nb"),
            ("path", "relative"),
            ("path", "/caf\u00e9"),
            ("method", "GET\n"),
            ("key_id", "has space"),
            ("nonce", "short"),
            ("nonce", "x" * 65),
        ],
    )
    def test_parts_that_cannot_be_signed_are_refused(self, field: str, value: str) -> None:
        """A part that could make the signed string ambiguous raises ValueError naming it."""
        parts: dict[str, Any] = {
            "key_id": KEY_ID,
            "timestamp": 1,
            "nonce": NONCE,
            "method": "GET",
            "path": "/p",
            "query": "",
            "body": b"",
        }
        parts[field] = value
        with pytest.raises(ValueError, match=field.replace("_", " ")):
            canonical_string(**parts)


class TestCanonicalQuery:
    def test_sorts_by_name_then_value(self) -> None:
        """Pairs are ordered by name, and pairs with the same name by value."""
        assert canonical_query([("b", "1"), ("a", "2"), ("a", "10")]) == "a=10&a=2&b=1"

    def test_any_order_of_the_raw_query_gives_the_same_form(self) -> None:
        """The canonical query does not depend on the order the client sent parameters in."""
        assert canonical_query("z=1&a=b&m=") == canonical_query("m=&a=b&z=1") == "a=b&m=&z=1"

    @pytest.mark.parametrize(
        ("raw", "pairs"),
        [
            ("q=a+b", [("q", "a b")]),
            ("q=a%20b", [("q", "a b")]),
            ("q=a%2Bb", [("q", "a+b")]),
            ("q=%7e%2d", [("q", "~-")]),
            ("q=caf%C3%A9", [("q", "café")]),
            ("q=%E6%9D%B1%E4%BA%AC", [("q", "東京")]),
            (
                "q=%3A%2F%3F%23%5B%5D%40%21%24%26%27%28%29%2A%2B%2C%3B%3D",
                [("q", ":/?#[]@!$&'()*+,;=")],
            ),
            ("flag", [("flag", "")]),
            ("a=1&&b=2&", [("a", "1"), ("b", "2")]),
            ("k%20ey=v=w", [("k ey", "v=w")]),
        ],
    )
    def test_raw_query_and_decoded_pairs_agree(
        self, raw: str, pairs: list[tuple[str, str]]
    ) -> None:
        """A query as sent and its decoded (name, value) pairs have one canonical form."""
        assert canonical_query(raw) == canonical_query(pairs)

    def test_encodes_everything_but_the_unreserved_set_with_upper_case_hex(self) -> None:
        """Only A-Z a-z 0-9 - . _ ~ stay literal; UTF-8 bytes become %XX."""
        value = "Az09-._~ :/?#[]@!$&'()*+,;=%é"
        assert canonical_query([("v", value)]) == (
            "v=Az09-._~%20%3A%2F%3F%23%5B%5D%40%21%24%26%27%28%29%2A%2B%2C%3B%3D%25%C3%A9"
        )

    def test_invalid_utf8_bytes_stay_distinct(self) -> None:
        """Bytes that are not UTF-8 are kept exactly, so %FF cannot be swapped for %FE."""
        assert canonical_query("q=%FF") == "q=%FF"
        assert canonical_query("q=%FF") != canonical_query("q=%FE")

    def test_documented_example(self) -> None:
        """The example in docs/provider-signing.md holds."""
        assert canonical_query("b=2&a=~&a=x+y") == "a=x%20y&a=~&b=2"

    def test_empty_query(self) -> None:
        """No parameters give an empty string."""
        assert canonical_query("") == canonical_query([]) == ""


class TestSign:
    def test_is_v1_and_the_hex_hmac_sha256_of_the_canonical_string(self) -> None:
        """The header value is `v1=` and HMAC-SHA256(secret, canonical string) in hex."""
        parts: dict[str, Any] = {
            "key_id": KEY_ID,
            "timestamp": 1767225600,
            "nonce": NONCE,
            "method": "GET",
            "path": "/provider/v1/tenants",
            "query": "limit=5",
            "body": b"",
        }
        expected = hmac.new(SECRET, canonical_string(**parts).encode(), hashlib.sha256).hexdigest()
        assert sign(SECRET, **parts) == f"v1={expected}"

    def test_new_nonces_are_valid_and_fresh(self) -> None:
        """Generated nonces match the nonce format and do not repeat."""
        nonces = {new_nonce() for _ in range(100)}
        assert len(nonces) == 100
        assert all(re.fullmatch(r"[A-Za-z0-9_-]{16,64}", nonce) for nonce in nonces)


class TestVerify:
    def test_accepts_a_good_request_and_returns_its_key_id(self) -> None:
        """A correctly signed request verifies to its key id."""
        assert check(signed()) == KEY_ID

    def test_claims_the_nonce_once_for_twice_the_tolerance(self) -> None:
        """An accepted request claims (key id, nonce) for 2 × tolerance seconds."""
        nonces = MemoryNonces()
        check(signed(), nonces=nonces)
        assert nonces.claims == [(KEY_ID, NONCE, 2 * TOLERANCE)]

    def test_header_names_are_case_insensitive(self) -> None:
        """Headers given in lower case, as ASGI servers deliver them, are found."""
        request = signed()
        lowered = {name.lower(): value for name, value in request.headers.items()}
        assert check(replace(request, headers=lowered)) == KEY_ID

    def test_upper_case_hex_signature_is_accepted(self) -> None:
        """The hex digits of the signature may be upper case."""
        request = signed()
        upper = "v1=" + request.headers[SIGNATURE_HEADER][3:].upper()
        assert check(with_headers(request, signature=upper)) == KEY_ID

    def test_query_in_another_order_verifies(self) -> None:
        """A request signed with sorted pairs verifies with the raw query in any order."""
        request = signed(query=[("a", "1"), ("b", "x y"), ("c", "é")])
        assert check(replace(request, query="c=%C3%A9&b=x+y&a=1")) == KEY_ID

    @pytest.mark.parametrize(
        "tamper",
        [
            pytest.param({"body": b'{"slug":"evil"}'}, id="body"),
            pytest.param({"body": b'{"slug":"acme"} '}, id="body-whitespace"),
            pytest.param({"path": "/provider/v1/tenants/other"}, id="path"),
            pytest.param({"path": "/provider/v1/tenant%73"}, id="path-encoding"),
            pytest.param({"query": [("dry_run", "false")]}, id="query-value"),
            pytest.param({"query": [("dry_run", "true"), ("force", "1")]}, id="query-added"),
            pytest.param({"query": []}, id="query-removed"),
            pytest.param({"method": "PUT"}, id="method"),
        ],
    )
    def test_a_changed_request_is_a_bad_signature(self, tamper: dict[str, Any]) -> None:
        """Changing any signed part of the request after signing fails with bad_signature."""
        error = rejection(replace(signed(), **tamper))
        assert error.code == RejectionCode.BAD_SIGNATURE
        assert error.header == SIGNATURE_HEADER
        assert "does not match" in error.detail
        assert error.canonical is not None
        assert repr(error.canonical) in error.detail

    @pytest.mark.parametrize(
        "headers",
        [
            pytest.param({"timestamp": str(int(NOW) - 1)}, id="timestamp"),
            pytest.param({"nonce": "another-nonce-0123456789"}, id="nonce"),
            pytest.param({"key_id": OTHER_KEY_ID}, id="key-id"),
        ],
    )
    def test_changed_signature_headers_are_a_bad_signature(self, headers: dict[str, str]) -> None:
        """Timestamp, nonce and key id are signed too: changing one fails with bad_signature."""
        keys = {KEY_ID: SECRET, OTHER_KEY_ID: SECRET}  # same secret: only the key id differs
        error = rejection(with_headers(signed(), **headers), keys=keys)
        assert error.code == RejectionCode.BAD_SIGNATURE

    def test_wrong_secret_is_a_bad_signature(self) -> None:
        """A request signed with another secret under a known key id is refused."""
        error = rejection(signed(secret=OTHER_SECRET))
        assert error.code == RejectionCode.BAD_SIGNATURE
        assert KEY_ID in error.detail

    @pytest.mark.parametrize(
        ("offset", "direction"),
        [(TOLERANCE + 1, "in the past"), (-(TOLERANCE + 1), "in the future")],
    )
    def test_timestamp_outside_the_window_is_expired(self, offset: int, direction: str) -> None:
        """A correctly signed request more than the tolerance away either way is expired."""
        nonces = MemoryNonces()
        error = rejection(signed(timestamp=int(NOW) - offset), nonces=nonces)
        assert error.code == RejectionCode.EXPIRED_TIMESTAMP
        assert error.header == TIMESTAMP_HEADER
        assert f"301 s {direction}" in error.detail
        assert "NTP" in error.detail
        assert nonces.claims == []

    @pytest.mark.parametrize("offset", [TOLERANCE, -TOLERANCE])
    def test_timestamp_at_the_edge_of_the_window_is_accepted(self, offset: int) -> None:
        """Exactly `tolerance` seconds away, in either direction, is still accepted."""
        assert check(signed(timestamp=int(NOW) - offset)) == KEY_ID

    def test_second_use_of_a_nonce_is_a_replay(self) -> None:
        """Sending the same signed request twice fails the second time with replayed_nonce."""
        nonces = MemoryNonces()
        request = signed()
        assert check(request, nonces=nonces) == KEY_ID
        error = rejection(request, nonces=nonces)
        assert error.code == RejectionCode.REPLAYED_NONCE
        assert error.header == NONCE_HEADER
        assert "fresh random nonce" in error.detail

    def test_nonces_are_per_key_id(self) -> None:
        """The same nonce under two key ids is two different claims."""
        nonces = MemoryNonces()
        keys = {KEY_ID: SECRET, OTHER_KEY_ID: OTHER_SECRET}
        check(signed(), keys=keys, nonces=nonces)
        other = signed(key_id=OTHER_KEY_ID, secret=OTHER_SECRET)
        assert check(other, keys=keys, nonces=nonces) == OTHER_KEY_ID

    def test_a_forged_request_does_not_burn_the_nonce(self) -> None:
        """A request with a bad signature claims nothing, so the real one still goes through."""
        nonces = MemoryNonces()
        forged = replace(signed(), body=b"forged")
        assert rejection(forged, nonces=nonces).code == RejectionCode.BAD_SIGNATURE
        assert nonces.claims == []
        assert check(signed(), nonces=nonces) == KEY_ID

    def test_nonce_store_failure_propagates(self) -> None:
        """An error of the nonce store (Redis down) is not turned into a rejection."""

        class StoreDown(Exception):
            pass

        async def broken(key_id: str, nonce: str, ttl_seconds: int) -> bool:
            raise StoreDown

        with pytest.raises(StoreDown):
            asyncio.run(
                verify(
                    signed(), keys=KEYS, now=NOW, tolerance_seconds=TOLERANCE, claim_nonce=broken
                )
            )

    def test_unknown_key_id(self) -> None:
        """A key id that is not active is refused with unknown_key, naming the header."""
        error = rejection(signed(key_id="partner-1999", secret=SECRET))
        assert error.code == RejectionCode.UNKNOWN_KEY
        assert error.header == KEY_ID_HEADER
        assert "'partner-1999'" in error.detail
        assert KEY_ID not in error.detail  # active key ids are not disclosed

    def test_both_keys_verify_during_a_rotation_and_a_removed_key_fails(self) -> None:
        """With two active keys each verifies; once the old one is removed it is unknown."""
        old = signed(key_id=KEY_ID, secret=SECRET)
        new = signed(key_id=OTHER_KEY_ID, secret=OTHER_SECRET)
        both = {KEY_ID: SECRET, OTHER_KEY_ID: OTHER_SECRET}
        assert check(old, keys=both) == KEY_ID
        assert check(new, keys=both) == OTHER_KEY_ID
        after = {OTHER_KEY_ID: OTHER_SECRET}
        assert rejection(old, keys=after).code == RejectionCode.UNKNOWN_KEY
        assert check(new, keys=after) == OTHER_KEY_ID

    @pytest.mark.parametrize("header", SIGNING_HEADERS)
    def test_each_missing_header_is_named(self, header: str) -> None:
        """Leaving out one signature header fails with missing_header naming it."""
        request = signed()
        headers = {name: value for name, value in request.headers.items() if name != header}
        error = rejection(replace(request, headers=headers))
        assert error.code == RejectionCode.MISSING_HEADER
        assert error.header == header
        assert f"missing {header};" in error.detail

    def test_an_unsigned_request_names_all_four_headers(self) -> None:
        """A request without any signature header is told about all four."""
        error = rejection(replace(signed(), headers={"Content-Type": "application/json"}))
        assert error.code == RejectionCode.MISSING_HEADER
        assert "missing " + ", ".join(SIGNING_HEADERS) in error.detail
        assert "docs/provider-signing.md" in error.detail

    @pytest.mark.parametrize(
        ("field", "value", "header"),
        [
            ("timestamp", "soon", TIMESTAMP_HEADER),
            ("timestamp", "1767225600.5", TIMESTAMP_HEADER),
            ("timestamp", "-1767225600", TIMESTAMP_HEADER),
            ("timestamp", "01767225600", TIMESTAMP_HEADER),
            ("timestamp", "1767225600000000000", TIMESTAMP_HEADER),
            ("timestamp", "１７６７２２５６００", TIMESTAMP_HEADER),
            ("nonce", "too-short", NONCE_HEADER),
            ("nonce", "n" * 65, NONCE_HEADER),
            ("nonce", "has/slash+plus=0123456789", NONCE_HEADER),
            ("key_id", "key id", KEY_ID_HEADER),
            ("key_id", "", KEY_ID_HEADER),
            ("signature", "deadbeef", SIGNATURE_HEADER),
            ("signature", "v1=" + "g" * 64, SIGNATURE_HEADER),
            ("signature", "v1=" + "a" * 63, SIGNATURE_HEADER),
            ("signature", "v1=" + "a" * 64 + ",v1=" + "b" * 64, SIGNATURE_HEADER),
            ("signature", "", SIGNATURE_HEADER),
        ],
    )
    def test_malformed_headers(self, field: str, value: str, header: str) -> None:
        """A header of the wrong shape fails with malformed_header, naming it and its form."""
        error = rejection(with_headers(signed(), **{field: value}))
        assert error.code == RejectionCode.MALFORMED_HEADER
        assert error.header == header
        assert error.detail.startswith(f"{header} must be")

    def test_a_repeated_header_is_malformed(self) -> None:
        """The same signature header twice (in any case) is refused rather than guessed at."""
        request = signed()
        headers = {**request.headers, NONCE_HEADER.lower(): "another-nonce-0123456789"}
        error = rejection(replace(request, headers=headers))
        assert error.code == RejectionCode.MALFORMED_HEADER
        assert "more than once" in error.detail

    @pytest.mark.parametrize("version", ["v2", "v0", "sha256", "V1"])
    def test_another_signature_version_is_unsupported(self, version: str) -> None:
        """A signature under another scheme name fails with unsupported_version."""
        request = signed()
        mac = request.headers[SIGNATURE_HEADER].removeprefix("v1=")
        error = rejection(with_headers(request, signature=f"{version}={mac}"))
        assert error.code == RejectionCode.UNSUPPORTED_VERSION
        assert "'v1=<hex HMAC-SHA256>'" in error.detail

    def test_a_path_no_client_can_sign_is_a_bad_signature(self) -> None:
        """A raw non-ASCII path is refused with bad_signature rather than an unhandled error."""
        error = rejection(replace(signed(), path="/caf\u00e9"))
        assert error.code == RejectionCode.BAD_SIGNATURE
        assert "percent-encoded" in error.detail


class TestSignedRequestFromAsgiScope:
    SCOPE: dict[str, Any] = {  # noqa: RUF012 - read-only fixture
        "type": "http",
        "method": "POST",
        "path": "/provider/v1/a b/é",
        "raw_path": b"/provider/v1/a%20b/%C3%A9",
        "query_string": b"q=x+y&z=%2F",
        "headers": [(b"x-streamflow-nonce", b"abc"), (b"content-type", b"application/json")],
    }

    def test_takes_the_raw_path_query_and_headers(self) -> None:
        """The path stays percent-encoded as sent; query and headers come from the scope."""
        request = SignedRequest.from_asgi_scope(self.SCOPE, b"{}")
        assert request == SignedRequest(
            method="POST",
            path="/provider/v1/a%20b/%C3%A9",
            query="q=x+y&z=%2F",
            body=b"{}",
            headers={"x-streamflow-nonce": "abc", "content-type": "application/json"},
        )

    def test_repeated_headers_are_combined_and_then_refused(self) -> None:
        """A header sent twice is joined with ', ', which no signature header accepts."""
        scope = {
            **self.SCOPE,
            "headers": [(b"x-streamflow-nonce", b"a"), (b"X-StreamFlow-Nonce", b"b")],
        }
        assert SignedRequest.from_asgi_scope(scope, b"").headers == {"x-streamflow-nonce": "a, b"}

    def test_without_raw_path_the_path_is_re_encoded(self) -> None:
        """A server that gives no raw_path gets the decoded path percent-encoded again."""
        scope = {key: value for key, value in self.SCOPE.items() if key != "raw_path"}
        assert SignedRequest.from_asgi_scope(scope, b"").path == "/provider/v1/a%20b/%C3%A9"


class TestProviderAuthSettings:
    @pytest.fixture(autouse=True)
    def _clean_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in list(os.environ):
            if name.startswith("STREAMFLOW_"):
                monkeypatch.delenv(name)

    def test_defaults_have_no_keys_and_a_300_second_tolerance(self) -> None:
        """With nothing configured no key is active and the tolerance is 300 s."""
        settings = ProviderAuthSettings()
        assert settings.signing_keys() == {}
        assert settings.signature_tolerance_seconds == 300

    def test_keys_come_from_json_in_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """STREAMFLOW_PROVIDER_KEYS holds several keys as a JSON object."""
        keys = {KEY_ID: SECRET.decode(), OTHER_KEY_ID: OTHER_SECRET.decode()}
        monkeypatch.setenv("STREAMFLOW_PROVIDER_KEYS", json.dumps(keys))
        monkeypatch.setenv("STREAMFLOW_SIGNATURE_TOLERANCE_SECONDS", "60")
        settings = ProviderAuthSettings()
        assert settings.signing_keys() == {KEY_ID: SECRET, OTHER_KEY_ID: OTHER_SECRET}
        assert settings.signature_tolerance_seconds == 60

    def test_the_secret_file_wins_over_the_variable(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """When STREAMFLOW_PROVIDER_KEYS_FILE is set its keys replace the variable's."""
        secret_file = tmp_path / "provider-keys.json"
        secret_file.write_text(json.dumps({OTHER_KEY_ID: OTHER_SECRET.decode()}))
        monkeypatch.setenv("STREAMFLOW_PROVIDER_KEYS", json.dumps({KEY_ID: SECRET.decode()}))
        monkeypatch.setenv("STREAMFLOW_PROVIDER_KEYS_FILE", str(secret_file))
        assert ProviderAuthSettings().signing_keys() == {OTHER_KEY_ID: OTHER_SECRET}

    def test_a_short_secret_is_refused_naming_its_key_id(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A secret under 32 bytes fails at startup with the key id and the size."""
        keys = {KEY_ID: SECRET.decode(), "weak-key": "x" * 31}
        monkeypatch.setenv("STREAMFLOW_PROVIDER_KEYS", json.dumps(keys))
        with pytest.raises(
            ValidationError, match=r"'weak-key' is 31 bytes; it must be at least 32"
        ):
            ProviderAuthSettings()

    def test_a_key_id_of_the_wrong_shape_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A key id that could not travel in the header is refused at startup."""
        monkeypatch.setenv("STREAMFLOW_PROVIDER_KEYS", json.dumps({"bad key": SECRET.decode()}))
        with pytest.raises(ValidationError, match="'bad key' must be 1-64 characters"):
            ProviderAuthSettings()

    def test_a_missing_secret_file_is_named(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """A secret file that cannot be read fails naming the variable."""
        monkeypatch.setenv("STREAMFLOW_PROVIDER_KEYS_FILE", str(tmp_path / "absent.json"))
        with pytest.raises(
            ValidationError, match=r"STREAMFLOW_PROVIDER_KEYS_FILE \(.*\) cannot be read"
        ):
            ProviderAuthSettings()

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            ("{not json", "is not valid JSON"),
            ('["a"]', "must hold a JSON object"),
            ('{"k": 1}', "must hold"),
        ],
    )
    def test_a_secret_file_of_the_wrong_shape_is_refused(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: str, message: str
    ) -> None:
        """The secret file must be a JSON object of strings."""
        secret_file = tmp_path / "keys.json"
        secret_file.write_text(content)
        monkeypatch.setenv("STREAMFLOW_PROVIDER_KEYS_FILE", str(secret_file))
        with pytest.raises(ValidationError, match=message):
            ProviderAuthSettings()

    def test_secrets_do_not_appear_in_the_repr(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Printing or logging the settings does not reveal a secret."""
        monkeypatch.setenv("STREAMFLOW_PROVIDER_KEYS", json.dumps({KEY_ID: SECRET.decode()}))
        assert SECRET.decode() not in repr(ProviderAuthSettings())


def _doc_block(language: str, containing: str) -> str:
    text = (REPO_ROOT / "docs" / "provider-signing.md").read_text()
    blocks: list[str] = re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)
    matching = [block for block in blocks if containing in block]
    assert len(matching) == 1, f"expected one {language} block with {containing!r}"
    return matching[0]


class TestDocumentedCurlRecipe:
    @pytest.mark.skipif(
        shutil.which("openssl") is None or shutil.which("bash") is None,
        reason="the recipe needs bash and openssl",
    )
    def test_the_curl_and_openssl_recipe_signs_like_sign(self, tmp_path: Path) -> None:
        """The documented bash recipe sends headers that `sign` reproduces and `verify` accepts."""
        recipe = _doc_block("bash", "openssl dgst")
        # A curl stand-in that prints its arguments, NUL-separated, instead of sending.
        script = "set -euo pipefail\ncurl() { printf '%s\\0' \"$@\"; }\n" + recipe
        env = {"PATH": os.environ["PATH"], "KEY_ID": KEY_ID, "SECRET": SECRET.decode()}
        result = subprocess.run(
            ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, check=True
        )
        args = result.stdout.decode().split("\0")[:-1]

        method = args[args.index("-X") + 1]
        url = urlsplit(args[args.index("-X") + 2])
        headers = dict(args[i + 1].split(": ", 1) for i, arg in enumerate(args) if arg == "-H")
        body_file = args[args.index("--data-binary") + 1]
        body = (tmp_path / body_file.removeprefix("@")).read_bytes()
        assert body
        assert url.query  # the example exercises the query too

        expected = sign(
            SECRET,
            key_id=KEY_ID,
            timestamp=int(headers[TIMESTAMP_HEADER]),
            nonce=headers[NONCE_HEADER],
            method=method,
            path=url.path,
            query=url.query,
            body=body,
        )
        assert headers[SIGNATURE_HEADER] == expected
        request = SignedRequest(
            method=method, path=url.path, query=url.query, body=body, headers=headers
        )
        assert check(request, now=float(headers[TIMESTAMP_HEADER])) == KEY_ID

    def test_python_examples_use_the_public_helpers(self) -> None:
        """Every name the Python examples import from api.provider_client exists."""
        import api.provider_client

        text = (REPO_ROOT / "docs" / "provider-signing.md").read_text()
        imported = re.findall(r"from api\.provider_client import (\w+)", text)
        assert set(imported) == {"ProviderClient", "ProviderSigningAuth", "sign_request"}
        assert all(hasattr(api.provider_client, name) for name in imported)
