"""One Graph call as an operation sees it: request, caller, the URL's mailbox and parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.context import Principal
from sandbox.graph.permissions import check_mailbox_access
from sandbox.web import Request


@dataclass
class Call:
    """What one operation gets: the request, the caller and the mailbox in the URL."""

    req: Request
    principal: Principal
    mailbox: Any  # sandbox.directory.Mailbox
    params: dict[str, str]
    directory: Any  # sandbox.directory.Directory

    @property
    def immutable(self) -> bool:
        """Prefer: IdType="ImmutableId" (outlook-immutable-id.md)."""
        return 'idtype="immutableid"' in (self.req.headers.get("prefer") or "").lower()

    def rights(self, address: str) -> frozenset[str]:
        """The caller's mailbox permissions on `address` (none for app tokens)."""
        if self.principal.kind != "user" or not self.principal.user:
            return frozenset()
        return self.directory.rights(self.principal.tenant_id, self.principal.user, address)

    def name_of(self, address: str) -> str | None:
        """The directory's display name for `address` in the caller's tenant, or None (an
        address outside the tenant resolves to itself)."""
        box = self.directory.mailbox(self.principal.tenant_id, address)
        return box.display_name if box is not None else None

    def allow(self, *, write: bool) -> None:
        """Raise GraphError 403 unless the caller may read (or change) the URL's mailbox."""
        address = self.mailbox.address
        check_mailbox_access(self.principal, address, self.rights(address), write=write)
