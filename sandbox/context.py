"""What every sandbox surface shares: the principal of a verified token and the app context."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.db import Database
from sandbox.web import Router

GRAPH_RESOURCE = "https://graph.microsoft.com"
VAULT_RESOURCE = "https://vault.azure.net"


@dataclass(frozen=True)
class Principal:
    """Who a verified access token speaks for."""

    tenant_id: str
    app_id: str
    kind: str  # "app" (client credentials) or "user" (delegated)
    audience: str  # GRAPH_RESOURCE or VAULT_RESOURCE
    user: str | None = None  # UPN, lower-case, for delegated tokens
    oid: str | None = None
    scopes: frozenset[str] = frozenset()  # delegated permissions (scp)
    roles: frozenset[str] = frozenset()  # application permissions (roles)


@dataclass
class SandboxContext:
    """Built once at start-up by sandbox.app and handed to each surface's register()."""

    router: Router
    db: Database
    seed: dict[str, Any]
    state_dir: Path
    base_url: str = ""
    # Filled by the identity half (sandbox.directory / sandbox.tokens) and read by the mail half.
    directory: Any = None
    tokens: Any = None
    faults: Any = None
    request_log: Any = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def limits(self) -> dict[str, Any]:
        return self.seed.get("limits", {})
