"""The SSRF guard's rules: which URLs and addresses a webhook may be sent to. Pure."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from pipelines.errors import InvalidInput

SCHEMES = {"https": 443, "http": 80}


@dataclass(frozen=True)
class Target:
    """Where a webhook URL points: scheme, host name (or literal address) and port."""

    scheme: str
    host: str
    port: int


def parse_target(url: str, *, field: str = "url") -> Target:
    """The target of a webhook URL; InvalidInput unless it is an absolute http(s) URL."""
    if len(url) > 2000:
        raise InvalidInput("the URL is longer than 2000 characters", field=field)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise InvalidInput(f"{url!r} is not a URL: {error}", field=field) from None
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise InvalidInput(
            f"{url!r} is not an absolute http(s) URL; give e.g. https://example.com/hooks",
            field=field,
        )
    if parts.username or parts.password:
        raise InvalidInput("put no credentials in the URL; verify the signature", field=field)
    return Target(parts.scheme, parts.hostname, port or SCHEMES[parts.scheme])


def refused_reason(address: str, *, allow_private: bool) -> str | None:
    """Why a webhook may not be sent to this IP address, or None if it may."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified or ip.is_multicast:
        return f"{ip} is not a unicast address"
    if ip.is_loopback:
        return None if allow_private else f"{ip} is a loopback address"
    if ip.is_link_local:
        return None if allow_private else f"{ip} is a link-local address"
    if ip.is_reserved:
        return f"{ip} is a reserved address"
    if allow_private:
        return None
    if ip.is_private or not ip.is_global:
        return f"{ip} is a private address"
    return None
