"""Exchange Online's rules for who may read, change and send from which mailbox (pure logic)."""

from __future__ import annotations

from sandbox.context import Principal
from sandbox.graph.errors import access_denied, send_as_denied

_APP_READ = frozenset({"Mail.Read", "Mail.ReadWrite"})
_APP_WRITE = frozenset({"Mail.ReadWrite"})
_OWN_READ = frozenset({"Mail.Read", "Mail.ReadWrite", "Mail.Read.Shared", "Mail.ReadWrite.Shared"})
_OWN_WRITE = frozenset({"Mail.ReadWrite", "Mail.ReadWrite.Shared"})
_SHARED_READ = frozenset({"Mail.Read.Shared", "Mail.ReadWrite.Shared"})
_SHARED_WRITE = frozenset({"Mail.ReadWrite.Shared"})
_OWN_SEND = frozenset({"Mail.Send", "Mail.Send.Shared"})


def is_own(principal: Principal, address: str) -> bool:
    return principal.kind == "user" and (principal.user or "").lower() == address.lower()


def check_mailbox_access(
    principal: Principal, address: str, rights: frozenset[str], *, write: bool
) -> None:
    """Allow reading (or changing) `address`'s items; raises GraphError 403 ErrorAccessDenied.

    App tokens need the role; delegated tokens need the scope for their own mailbox, and for
    another mailbox the `.Shared` scope AND FullAccess on it (Exchange checks both).
    """
    if principal.kind == "app":
        if not principal.roles & (_APP_WRITE if write else _APP_READ):
            raise access_denied()
        return
    if is_own(principal, address):
        if not principal.scopes & (_OWN_WRITE if write else _OWN_READ):
            raise access_denied()
        return
    if not principal.scopes & (_SHARED_WRITE if write else _SHARED_READ):
        raise access_denied()
    if "FullAccess" not in rights:
        raise access_denied()


def resolve_sender(principal: Principal, from_address: str, rights: frozenset[str]) -> str:
    """The `sender` address of a message sent with `from` = from_address.

    Send As makes sender = from; Send on Behalf makes sender = the signed-in user (Exchange
    prefers Send As when both are granted). Raises GraphError 403 (ErrorAccessDenied without the
    Mail.Send permission at all, ErrorSendAsDenied without the right on `from`).
    """
    if principal.kind == "app":
        if "Mail.Send" not in principal.roles:
            raise access_denied()
        return from_address
    if not principal.scopes & _OWN_SEND:
        raise access_denied()
    if is_own(principal, from_address):
        return from_address
    if "Mail.Send.Shared" not in principal.scopes:
        raise send_as_denied()
    if "SendAs" in rights:
        return from_address
    if "SendOnBehalf" in rights:
        return principal.user or from_address
    raise send_as_denied()
