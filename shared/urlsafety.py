"""Is a URL safe to fetch? https, port 443, an allowed host, no internal address, then and now.

Used for attachment, archive and callback URLs (SSRF). `check_attachment_url` refuses a URL
whose host is off the allowlist or resolves to an internal address (early, with a clear field
error).
DNS can answer differently a moment later (rebinding), so `guarded_session` also checks the
address each new connection is actually connected to, before TLS or a request byte is sent.
Raises `ValidationFailed` with a field detail naming the URL's field.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from shared.errors import Detail, ValidationFailed

# Addresses that are public by range but internal by role in Azure and other clouds.
_METADATA = {
    ipaddress.ip_address("169.254.169.254"),  # instance metadata (Azure, AWS, GCP)
    ipaddress.ip_address("168.63.129.16"),  # Azure wire server / DNS
    ipaddress.ip_address("fd00:ec2::254"),  # AWS metadata over IPv6
}
HTTPS_PORT = 443


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries: IPv4-mapped, 6to4 (2002::/16), Teredo."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]  # (server, client): the client is where packets end up
    return None


def ip_forbidden(ip: str) -> str | None:
    """Why fetching from `ip` is refused (loopback, private, ...), or None if it is public.

    Anything not globally routable is refused (`not is_global` covers 100.64/10 shared address
    space, documentation and benchmarking ranges too); an IPv6 address wrapping an IPv4 one is
    judged by the IPv4 address it reaches.
    """
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(addr)
        if embedded is not None:
            addr = embedded
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
    if not addr.is_global:
        return "a non-public address"
    return None


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """`host` is on the list exactly or under a `*.domain` entry (case-insensitive).

    The one host-allowlist matcher (attachment, callback and return URLs all use it).
    """
    host = host.casefold().rstrip(".")
    if not host:
        return False
    for entry in allowed:
        entry = entry.casefold().strip().rstrip(".")
        if entry == host or (entry.startswith("*.") and host.endswith(entry[1:])):
            return True
    return False


def redact_url(url: str) -> str:
    """`url` without user info, query and fragment (SAS tokens and signatures live there), for
    logs and error messages."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def check_attachment_url(
    url: str,
    *,
    field: str,
    allowed_hosts: Iterable[str],
    allow_private: bool,
    resolve: Callable[[str, int], list[str]] | None = None,
    allowlist: str = "attachmentUrlHosts",
    what: str = "An attachment URL",
) -> None:
    """Raise ValidationFailed unless `url` may be fetched for this connection.

    Only port 443, unless the connection allows private hosts (the sandbox runs on a random
    loopback port); a non-standard port is how internal services are usually reached.
    `allowlist` names the connection's list in the error (archive URLs use archiveUrlHosts).
    """
    resolve = resolve or _resolve

    def refuse(message: str) -> ValidationFailed:
        return ValidationFailed(f"{what} is not allowed.", details=[Detail(field, message)])

    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "https" or not host:
        raise refuse("must be an https URL with a host")
    if parts.username or parts.password or "@" in parts.netloc:
        raise refuse("must not carry credentials")
    try:
        port = parts.port or HTTPS_PORT
    except ValueError:
        raise refuse("has an invalid port") from None
    if not host_allowed(host, allowed_hosts):
        raise refuse(f"host {host!r} is not on the connection's {allowlist}")
    if allow_private:
        return
    if port != HTTPS_PORT:
        raise refuse("must use the standard https port (443)")
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError):
        raise refuse(f"host {host!r} does not resolve") from None
    for ip in addresses:
        why = ip_forbidden(ip)
        if why:
            raise refuse(f"host {host!r} resolves to {why}")


class ForbiddenPeer(OSError):
    """A connection reached an internal address (DNS changed after the URL check)."""


def _peer_checking_adapter() -> Any:
    """An HTTPAdapter whose new connections refuse an internal peer address.

    Why the peer and not a pinned IP: checking `getpeername()` right after the TCP connect
    judges the address actually reached, whatever the resolver said, and leaves urllib3's
    host name handling (SNI, certificate check, Host header) untouched. It runs before the
    TLS handshake, so not a byte of the request reaches a forbidden address.
    """
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    def checked(sock: socket.socket) -> socket.socket:
        peer = sock.getpeername()[0]
        why = ip_forbidden(peer)
        if why:
            sock.close()
            raise ForbiddenPeer(f"the host resolved to {why} when connecting")
        return sock

    class CheckedHTTPConnection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return checked(super()._new_conn())

    class CheckedHTTPSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return checked(super()._new_conn())

    # urllib3 types ConnectionCls as a Protocol its own classes only match at run time.
    class CheckedHTTPPool(HTTPConnectionPool):
        ConnectionCls = CheckedHTTPConnection  # pyright: ignore[reportAssignmentType]

    class CheckedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = CheckedHTTPSConnection  # pyright: ignore[reportAssignmentType]

    class PeerCheckingAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {
                "http": CheckedHTTPPool,
                "https": CheckedHTTPSPool,
            }

    return PeerCheckingAdapter(max_retries=0)


def guarded_session(ca_bundle: str = "") -> Any:
    """A session for URLs of connections that do not allow private hosts (build it once per
    process: shared.runtime does).

    Made by shared.sessions.environment_session (no .netrc; proxies only when the environment
    sets them, and then the proxy, not this check, decides where requests go) with every new
    connection's peer address checked.
    """
    from shared.sessions import environment_session

    session = environment_session(ca_bundle)
    adapter = _peer_checking_adapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def forbidden_peer_in(exc: BaseException) -> ForbiddenPeer | None:
    """The ForbiddenPeer somewhere in a requests/urllib3 exception's causes, if any."""
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ForbiddenPeer):
            return item
        todo.extend(a for a in getattr(item, "args", ()) if isinstance(a, BaseException))
        todo.extend([getattr(item, "reason", None), item.__cause__, item.__context__])
    return None
