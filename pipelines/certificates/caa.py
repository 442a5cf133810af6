"""CAA (RFC 8659) as a check before ordering (pure): does any CA we use may issue?

Checked by us before an order is placed, so a hostname whose CAA records forbid our CA fails
at once instead of spending the CA's rate limits (Debian's Pebble 2.4 does not check CAA).
"""

from __future__ import annotations

from collections.abc import Sequence


def parse_caa(text: str) -> tuple[int, str, str]:
    """(flags, tag, value) of a CAA record in presentation form: `0 issue "ca.example"`."""
    flags, tag, value = text.split(maxsplit=2)
    return int(flags), tag.lower(), value.strip().strip('"')


def caa_permits(records: Sequence[str], identities: Sequence[str], *, wildcard: bool) -> bool:
    """Whether the relevant CAA record set lets one of `identities` issue.

    No `issue` (or, for a wildcard, `issuewild`) property means anyone may issue.
    """
    parsed = [parse_caa(record) for record in records]
    tags = {"issuewild"} if wildcard and any(t == "issuewild" for _, t, _ in parsed) else {"issue"}
    relevant = [value for _, tag, value in parsed if tag in tags]
    if not relevant:
        return True
    allowed = {identity.lower() for identity in identities}
    return any(value.split(";", 1)[0].strip().lower() in allowed for value in relevant)


def caa_names(hostname: str) -> list[str]:
    """The names whose CAA sets are looked up, closest first (`*.` dropped, TLD excluded)."""
    labels = (hostname[2:] if hostname.startswith("*.") else hostname).split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]
