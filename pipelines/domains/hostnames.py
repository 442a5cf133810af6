"""Hostnames tenants bring: validated and normalised to one ASCII form (pure)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

import idna

from pipelines.errors import InvalidInput

VERIFICATION_LABEL = "_streamflow-verification"
"""The label under which a tenant publishes its ownership token as a TXT record."""
MAX_HOSTNAME = 253
MAX_LABEL = 63
_LDH = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class Hostname:
    """A valid hostname: its ASCII (A-label) and Unicode forms, and whether it is a wildcard."""

    ascii: str
    unicode: str
    wildcard: bool

    @property
    def base(self) -> str:
        """The name without a leading `*.`: where ownership is proven."""
        return self.ascii[2:] if self.wildcard else self.ascii


def verification_record_name(hostname: str) -> str:
    """`_streamflow-verification.<hostname>` (a wildcard is proven on its base name)."""
    base = hostname[2:] if hostname.startswith("*.") else hostname
    return f"{VERIFICATION_LABEL}.{base}"


def _refuse(message: str) -> InvalidInput:
    return InvalidInput(message, field="hostname")


def _is_ip_literal(text: str) -> bool:
    candidate = text.strip("[]")
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def _check_lengths(labels: list[str], wildcard: bool) -> None:
    for label in labels:
        if len(label) > MAX_LABEL:
            raise _refuse(f"label {label[:20]!r}… is longer than {MAX_LABEL} characters")
    if len(".".join(labels)) + (2 if wildcard else 0) > MAX_HOSTNAME:
        raise _refuse(f"the hostname is longer than {MAX_HOSTNAME} characters")


def normalize_hostname(text: str, *, platform_suffixes: Sequence[str] = ()) -> Hostname:
    """The hostname `text` names, or InvalidInput saying what to fix.

    Accepts Unicode (IDNA 2008 with UTS #46 mapping) or ASCII, any case, an optional trailing
    dot and a leading `*.` for a wildcard. Refuses IP literals, single labels, names longer than
    253 characters or with labels over 63, and names equal to or under a platform suffix.
    """
    raw = text.strip()
    if not raw:
        raise _refuse("give a hostname, e.g. shop.example.com")
    if _is_ip_literal(raw):
        raise _refuse(f"{raw!r} is an IP address; give a hostname, e.g. shop.example.com")
    if raw.endswith("."):
        raw = raw[:-1]
    wildcard = raw.startswith("*.")
    body = raw[2:] if wildcard else raw
    if "*" in body:
        raise _refuse("a wildcard is allowed only as the whole first label, e.g. *.example.com")
    if body.isascii():
        _check_lengths(body.lower().split("."), wildcard)
    try:
        ascii_name = idna.encode(body, uts46=True).decode("ascii")
        unicode_name = idna.decode(ascii_name)
    except idna.IDNAError as error:
        shown = text.strip()[:60] + ("…" if len(text.strip()) > 60 else "")
        raise _refuse(f"{shown!r} is not a valid hostname: {error}") from None
    ascii_name = ascii_name.lower()
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise _refuse(f"{text.strip()!r} has one label; give a full name such as shop.example.com")
    _check_lengths(labels, wildcard)
    for label in labels:
        if not _LDH.match(label):
            raise _refuse(f"label {label!r} may hold only letters, digits and inner hyphens")
    if labels[-1].isdigit():
        raise _refuse(f"{text.strip()!r} ends in a numeric label; give a hostname")
    full = f"*.{ascii_name}" if wildcard else ascii_name
    for suffix in platform_suffixes:
        owned = suffix.strip().strip(".").lower()
        if owned and (ascii_name == owned or ascii_name.endswith(f".{owned}")):
            raise _refuse(f"names under {owned} belong to the platform; use a domain of your own")
    return Hostname(
        ascii=full, unicode=f"*.{unicode_name}" if wildcard else unicode_name, wildcard=wildcard
    )
