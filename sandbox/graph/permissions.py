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


def check_send_through(principal: Principal, owner: str, rights: frozenset[str]) -> None:
    """Sending through `owner`'s URL (/users/{owner}/sendMail or a draft in its mailbox).

    outlook-send-mail-from-other-user.md, "Sent Items behavior": sending through
    /users/{from} so the copy is saved in that mailbox's Sent Items needs "the Full Access
    mailbox permission in addition to either the Send on Behalf or Send As permission".
    Without Full Access Exchange cannot open the mailbox: 403 ErrorAccessDenied, the answer
    for a mailbox one has no access to (microsoft-graph-docs issue 9429). App tokens act as
    the mailbox in the URL and need no grant for that.
    """
    if principal.kind != "user" or is_own(principal, owner):
        return
    if "Mail.Send.Shared" not in principal.scopes or "FullAccess" not in rights:
        raise access_denied()


def resolve_sender(
    principal: Principal,
    from_address: str,
    rights: frozenset[str],
    *,
    acting: str,
    requested: str | None = None,
) -> str:
    """The `sender` address of a message sent with `from` = from_address.

    `acting` is who sends: the signed-in user for delegated tokens, the URL's mailbox for app
    tokens (an app with Mail.Send may send as any mailbox "by sending the mail normally
    through the user's mailbox", outlook-send-mail-from-other-user.md; putting another
    address in `from` needs that mailbox's Send As like any sender). `rights` are the
    acting identity's rights on `from`. Send As makes sender = from; Send on Behalf makes
    sender = the acting identity (Exchange prefers Send As when both are granted).

    `requested` is a `sender` the client set itself. Another address than `from` asks for
    Send on Behalf: it must be the acting identity (nobody sends on another's behalf in a
    third person's name) and that identity needs the Send on Behalf right on `from` (the
    sandbox does not fall back to Send As here: stricter than unsure). Raises GraphError 403
    (ErrorAccessDenied without the Mail.Send permission at all, ErrorSendAsDenied without a
    right on `from`).
    """
    if principal.kind == "app":
        if "Mail.Send" not in principal.roles:
            raise access_denied()
    elif not principal.scopes & _OWN_SEND:
        raise access_denied()
    on_behalf = requested is not None and requested.lower() != from_address.lower()
    if on_behalf:
        if principal.kind != "app" and "Mail.Send.Shared" not in principal.scopes:
            raise send_as_denied()
        if (requested or "").lower() != acting.lower() or "SendOnBehalf" not in rights:
            raise send_as_denied()
        return acting
    if principal.kind != "app":
        if is_own(principal, from_address):
            return from_address
        if "Mail.Send.Shared" not in principal.scopes:
            raise send_as_denied()
    if acting.lower() == from_address.lower():
        return from_address
    if "SendAs" in rights:
        return from_address
    if "SendOnBehalf" in rights:
        return acting
    raise send_as_denied()
