"""Is an attachment URL safe to fetch? https, an allowed host, and no internal address.

The IP checks run on every address the host resolves to, so a public name pointing at
127.0.0.1, 10.x or the cloud metadata endpoint is refused (SSRF). Raises `ValidationFailed`
with a field detail naming the attachment.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from shared.errors import Detail, ValidationFailed

# Addresses that are public by range but internal by role in Azure and other clouds.
_METADATA = {
    ipaddress.ip_address("169.254.169.254"),  # instance metadata (Azure, AWS, GCP)
    ipaddress.ip_address("168.63.129.16"),  # Azure wire server / DNS
    ipaddress.ip_address("fd00:ec2::254"),  # AWS metadata over IPv6
}


def ip_forbidden(ip: str) -> str | None:
    """Why fetching from `ip` is refused (loopback, private, ...), or None if it is public."""
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr in _METADATA:
        return "a cloud metadata address"
    for attr, why in (
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_private", "a private address"),
        ("is_multicast", "a multicast address"),
        ("is_unspecified", "an unspecified address"),
        ("is_reserved", "a reserved address"),
    ):
        if getattr(addr, attr):
            return why
    return None


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """`host` is on the list exactly or under a `*.domain` entry (case-insensitive)."""
    host = host.casefold().rstrip(".")
    for entry in allowed:
        entry = entry.casefold().rstrip(".")
        if entry == host or (entry.startswith("*.") and host.endswith(entry[1:])):
            return True
    return False


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


def check_attachment_url(
    url: str,
    *,
    field: str,
    allowed_hosts: Iterable[str],
    allow_private: bool,
    resolve: Callable[[str, int], list[str]] = _resolve,
) -> None:
    """Raise ValidationFailed unless `url` may be fetched for this connection."""

    def refuse(message: str) -> ValidationFailed:
        return ValidationFailed(
            "An attachment URL is not allowed.", details=[Detail(field, message)]
        )

    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "https" or not host:
        raise refuse("must be an https URL with a host")
    if parts.username or parts.password:
        raise refuse("must not carry credentials")
    if not host_allowed(host, allowed_hosts):
        raise refuse(f"host {host!r} is not on the connection's attachmentUrlHosts")
    if allow_private:
        return
    try:
        addresses = resolve(host, parts.port or 443)
    except (OSError, UnicodeError):
        raise refuse(f"host {host!r} does not resolve") from None
    for ip in addresses:
        why = ip_forbidden(ip)
        if why:
            raise refuse(f"host {host!r} resolves to {why}")
