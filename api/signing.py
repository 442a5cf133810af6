"""HMAC-SHA256 request signatures of the provider API (`/provider/v1`), scheme `v1`.

A client sends four headers: the key id, the Unix time in seconds, a random nonce and
`v1=<hex HMAC-SHA256>` of the canonical string, the newline-joined lines

    v1
    <key id>
    <timestamp>
    <nonce>
    <METHOD>
    <path exactly as sent, percent-encoded>
    <canonical query>
    <lowercase hex SHA-256 of the raw body>

The canonical query decodes every `name=value` pair of the query (`+` means a space),
re-encodes name and value as UTF-8 with everything but the RFC 3986 unreserved characters
`A-Z a-z 0-9 - . _ ~` percent-encoded (upper-case hex), sorts the pairs by encoded name, then
encoded value, and joins them `name=value` with `&`; it is empty without a query.

The server accepts a timestamp at most `tolerance` seconds away from its clock in either
direction and remembers each (key id, nonce) for twice the tolerance, the longest time a
signed request can stay acceptable, so a captured request cannot be replayed.
docs/provider-signing.md is the client-facing description.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote, quote_from_bytes, unquote_to_bytes

SCHEME = "v1"
KEY_ID_HEADER = "X-StreamFlow-Key-Id"
TIMESTAMP_HEADER = "X-StreamFlow-Timestamp"
NONCE_HEADER = "X-StreamFlow-Nonce"
SIGNATURE_HEADER = "X-StreamFlow-Signature"
SIGNING_HEADERS = (KEY_ID_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)
MIN_SECRET_BYTES = 32
DOC = "docs/provider-signing.md"

KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
NONCE_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
_TIMESTAMP = re.compile(r"0|[1-9][0-9]{0,14}")
_SIGNATURE = re.compile(r"(?P<version>[A-Za-z0-9]+)=(?P<mac>.*)", re.DOTALL)
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]+")

Query = Sequence[tuple[str, str]] | str
"""Query parameters: decoded (name, value) pairs, or the raw query string as sent (no `?`)."""

ClaimNonce = Callable[[str, str, int], Awaitable[bool]]
"""Records (key id, nonce) for ttl seconds; False when it was already recorded."""


class RejectionCode(StrEnum):
    """Stable machine-readable reasons for refusing a signed request."""

    MISSING_HEADER = "missing_header"
    MALFORMED_HEADER = "malformed_header"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_KEY = "unknown_key"
    EXPIRED_TIMESTAMP = "expired_timestamp"
    BAD_SIGNATURE = "bad_signature"
    REPLAYED_NONCE = "replayed_nonce"


class SignatureRejected(Exception):
    """A request whose signature headers do not authenticate it."""

    def __init__(
        self,
        code: RejectionCode,
        detail: str,
        *,
        header: str | None = None,
        canonical: str | None = None,
    ) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        """Stable machine code, one of `RejectionCode`."""
        self.detail = detail
        """What is wrong and how to fix it, naming the header."""
        self.header = header
        """The offending header, when one is to blame."""
        self.canonical = canonical
        """For bad_signature: the string the server signed (holds no secret)."""


@dataclass(frozen=True)
class SignedRequest:
    """The parts of an HTTP request that the signature covers, as the server received them."""

    method: str
    path: str
    """Path exactly as sent, still percent-encoded, without the query."""
    query: Query
    body: bytes
    headers: Mapping[str, str]

    @classmethod
    def from_asgi_scope(cls, scope: Mapping[str, Any], body: bytes) -> SignedRequest:
        """The request of an ASGI HTTP scope (FastAPI: `request.scope`) and its raw body."""
        raw_path = scope.get("raw_path")
        if raw_path is not None:
            path = bytes(raw_path).decode("latin-1")
        else:  # the server gave only the decoded path; re-encoding it is a best effort
            path = quote(scope["path"], safe="/:@!$&'()*+,;=")
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", ()):
            name = bytes(raw_name).decode("latin-1").lower()
            value = bytes(raw_value).decode("latin-1")
            # Repeated headers are combined as RFC 9110 does, which makes ours malformed.
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return cls(
            method=scope["method"],
            path=path,
            query=bytes(scope.get("query_string", b"")).decode("latin-1"),
            body=body,
            headers=headers,
        )


def new_nonce() -> str:
    """A fresh random nonce (32 URL-safe characters, 192 bits)."""
    return secrets.token_urlsafe(24)


def check_secret(key_id: str, secret: bytes) -> None:
    """Refuse a key id or secret that cannot be used for signing."""
    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise ValueError(f"provider key id {key_id!r} must be 1-64 characters of A-Z a-z 0-9 . _ -")
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(
            f"the secret of provider key {key_id!r} is {len(secret)} bytes; it must be at "
            f"least {MIN_SECRET_BYTES} (e.g. `openssl rand -hex 32`)"
        )


def body_sha256(body: bytes) -> str:
    """Lowercase hex SHA-256 of the raw body bytes."""
    return hashlib.sha256(body).hexdigest()


def _encode(raw: bytes) -> str:
    return quote_from_bytes(raw, safe="")  # leaves exactly the RFC 3986 unreserved set


def _pairs(query: Query) -> list[tuple[bytes, bytes]]:
    if not isinstance(query, str):
        return [(name.encode(), value.encode()) for name, value in query]
    pairs = []
    for field in query.split("&"):
        if field:
            name, _, value = field.partition("=")
            pairs.append((_decode(name), _decode(value)))
    return pairs


def _decode(component: str) -> bytes:
    # `+` is a space in queries (httpx and HTML forms send it so); bytes keep invalid UTF-8 exact.
    return unquote_to_bytes(component.replace("+", " "))


def canonical_query(query: Query) -> str:
    """The query in canonical form: pairs re-encoded, sorted by name then value, `&`-joined."""
    encoded = sorted((_encode(name), _encode(value)) for name, value in _pairs(query))
    return "&".join(f"{name}={value}" for name, value in encoded)


def canonical_string(
    *,
    key_id: str,
    timestamp: int,
    nonce: str,
    method: str,
    path: str,
    query: Query,
    body: bytes,
) -> str:
    """The string that scheme v1 signs; ValueError when a part cannot be signed."""
    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise ValueError(f"key id {key_id!r} must be 1-64 characters of A-Z a-z 0-9 . _ -")
    if not NONCE_PATTERN.fullmatch(nonce):
        raise ValueError(f"nonce {nonce!r} must be 16-64 characters of A-Z a-z 0-9 _ -")
    if timestamp < 0:
        raise ValueError(f"timestamp {timestamp} must be Unix seconds, not negative")
    if not _PRINTABLE_ASCII.fullmatch(method):
        raise ValueError(f"method {method!r} must be an HTTP method name")
    if not path.startswith("/") or not _PRINTABLE_ASCII.fullmatch(path):
        raise ValueError(f"path {path!r} must start with / and be percent-encoded ASCII")
    return "\n".join(
        [
            SCHEME,
            key_id,
            str(timestamp),
            nonce,
            method.upper(),
            path,
            canonical_query(query),
            body_sha256(body),
        ]
    )


def sign(
    secret: bytes,
    *,
    key_id: str,
    timestamp: int,
    nonce: str,
    method: str,
    path: str,
    query: Query,
    body: bytes,
) -> str:
    """The `X-StreamFlow-Signature` value, `v1=<hex HMAC-SHA256 of the canonical string>`."""
    message = canonical_string(
        key_id=key_id,
        timestamp=timestamp,
        nonce=nonce,
        method=method,
        path=path,
        query=query,
        body=body,
    )
    return f"{SCHEME}={_mac(secret, message)}"


def _mac(secret: bytes, message: str) -> str:
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def signing_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The four signature headers by canonical name; SignatureRejected when one is missing or
    repeated."""
    wanted = {name.lower(): name for name in SIGNING_HEADERS}
    found: dict[str, str] = {}
    for name, value in headers.items():
        canonical_name = wanted.get(name.lower())
        if canonical_name is None:
            continue
        if canonical_name in found:
            raise SignatureRejected(
                RejectionCode.MALFORMED_HEADER,
                f"{canonical_name} is sent more than once; send it exactly once",
                header=canonical_name,
            )
        found[canonical_name] = value
    missing = [name for name in SIGNING_HEADERS if name not in found]
    if missing:
        raise SignatureRejected(
            RejectionCode.MISSING_HEADER,
            f"missing {', '.join(missing)}; provider API requests must carry "
            f"{', '.join(SIGNING_HEADERS)} (see {DOC})",
            header=missing[0],
        )
    return found


def _malformed(header: str, expected: str, value: str) -> SignatureRejected:
    shown = value if len(value) <= 80 else value[:77] + "..."
    return SignatureRejected(
        RejectionCode.MALFORMED_HEADER,
        f"{header} must be {expected}; got {shown!r}",
        header=header,
    )


async def verify(
    request: SignedRequest,
    *,
    keys: Mapping[str, bytes],
    now: float,
    tolerance_seconds: int,
    claim_nonce: ClaimNonce,
) -> str:
    """The key id that signed `request`; SignatureRejected when it is not authentic.

    The nonce is claimed last, once the timestamp and the signature are good, so that
    forged or stale requests cannot use up nonces. Whatever `claim_nonce` raises propagates.
    """
    headers = signing_headers(request.headers)
    key_id = headers[KEY_ID_HEADER]
    raw_timestamp = headers[TIMESTAMP_HEADER]
    nonce = headers[NONCE_HEADER]
    raw_signature = headers[SIGNATURE_HEADER]

    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise _malformed(KEY_ID_HEADER, "1-64 characters of A-Z a-z 0-9 . _ -", key_id)
    if not _TIMESTAMP.fullmatch(raw_timestamp):
        raise _malformed(TIMESTAMP_HEADER, "the Unix time in whole seconds", raw_timestamp)
    if not NONCE_PATTERN.fullmatch(nonce):
        raise _malformed(NONCE_HEADER, "16-64 random characters of A-Z a-z 0-9 _ -", nonce)
    signature = _SIGNATURE.fullmatch(raw_signature)
    if signature is None:
        raise _malformed(SIGNATURE_HEADER, f"'{SCHEME}=<64 hex digits>'", raw_signature)
    if signature["version"] != SCHEME:
        raise SignatureRejected(
            RejectionCode.UNSUPPORTED_VERSION,
            f"{SIGNATURE_HEADER} uses scheme {signature['version']!r}; this server only "
            f"accepts '{SCHEME}=<hex HMAC-SHA256>' (see {DOC})",
            header=SIGNATURE_HEADER,
        )
    given_mac = signature["mac"].lower()
    if not _HEX_SHA256.fullmatch(given_mac):
        raise _malformed(SIGNATURE_HEADER, f"'{SCHEME}=<64 hex digits>'", raw_signature)

    secret = keys.get(key_id)
    if secret is None:
        raise SignatureRejected(
            RejectionCode.UNKNOWN_KEY,
            f"{KEY_ID_HEADER} {key_id!r} is not an active key; sign with a key id you were "
            "issued (a rotated-out key stops working once the provider removes it)",
            header=KEY_ID_HEADER,
        )

    timestamp = int(raw_timestamp)
    skew = now - timestamp
    if abs(skew) > tolerance_seconds:
        direction = "in the past" if skew > 0 else "in the future"
        raise SignatureRejected(
            RejectionCode.EXPIRED_TIMESTAMP,
            f"{TIMESTAMP_HEADER} {timestamp} is {abs(skew):.0f} s {direction}; it must be "
            f"within {tolerance_seconds} s of the server clock. Sign each request (and each "
            "retry) just before sending it, and keep the client clock synchronised (NTP)",
            header=TIMESTAMP_HEADER,
        )

    try:
        message = canonical_string(
            key_id=key_id,
            timestamp=timestamp,
            nonce=nonce,
            method=request.method,
            path=request.path,
            query=request.query,
            body=request.body,
        )
    except ValueError as error:  # a request line no client could have signed
        raise SignatureRejected(RejectionCode.BAD_SIGNATURE, str(error)) from None
    if not hmac.compare_digest(_mac(secret, message), given_mac):
        raise SignatureRejected(
            RejectionCode.BAD_SIGNATURE,
            f"{SIGNATURE_HEADER} does not match the request for key {key_id!r}. Check the "
            "secret, and that you signed the method, the path as sent, the canonical query "
            f"and the SHA-256 of the exact body bytes (see {DOC}). The server signed: "
            f"{message!r}",
            header=SIGNATURE_HEADER,
            canonical=message,
        )

    if not await claim_nonce(key_id, nonce, 2 * tolerance_seconds):
        raise SignatureRejected(
            RejectionCode.REPLAYED_NONCE,
            f"{NONCE_HEADER} {nonce!r} was already used with key {key_id!r}; send a fresh "
            "random nonce with every request, including retries",
            header=NONCE_HEADER,
        )
    return key_id
