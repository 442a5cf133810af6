"""The SSRF guard's rule: which addresses a webhook may be sent to. Pure."""

from __future__ import annotations

import ipaddress


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
