"""Scopes as Entra reads them (one resource per request) and what an app was consented."""

from __future__ import annotations

from dataclasses import dataclass, field

from sandbox.context import GRAPH_RESOURCE, VAULT_RESOURCE
from sandbox.directory import App
from sandbox.entra.errors import EntraError
from sandbox.tokens import GRAPH_APP_ID, VAULT_APP_ID

RESERVED_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
RESOURCE_ALIASES = {
    GRAPH_RESOURCE: GRAPH_RESOURCE,
    GRAPH_APP_ID: GRAPH_RESOURCE,
    "https://graph.microsoft.com/": GRAPH_RESOURCE,
    VAULT_RESOURCE: VAULT_RESOURCE,
    VAULT_APP_ID: VAULT_RESOURCE,
    "https://vault.azure.net/": VAULT_RESOURCE,
}


@dataclass
class ScopeRequest:
    """A parsed `scope` parameter: one resource, its permissions, and the OIDC scopes."""

    raw: list[str]
    resource: str
    permissions: list[str]  # short names ("Mail.Send") or [".default"]
    reserved: set[str] = field(default_factory=set)

    @property
    def is_default(self) -> bool:
        return self.permissions == [".default"]


def parse_scopes(scope: str | None) -> ScopeRequest:
    """Split a scope string the way Entra does; raises EntraError for unknown or mixed resources."""
    raw = (scope or "").split()
    resources: set[str] = set()
    permissions: list[str] = []
    reserved: set[str] = set()
    for item in raw:
        if item in RESERVED_SCOPES:
            reserved.add(item)
            continue
        if "/" in item:
            base, _, perm = item.rpartition("/")
            resource = RESOURCE_ALIASES.get(base) or RESOURCE_ALIASES.get(base.rstrip("/"))
            if resource is None:
                raise EntraError(
                    "invalid_resource",
                    500011,
                    f"The resource principal named {base} was not found in the tenant.",
                )
        else:
            resource, perm = GRAPH_RESOURCE, item
        resources.add(resource)
        permissions.append(perm)
    if len(resources) > 1:
        raise EntraError(
            "invalid_scope",
            28000,
            "Provided value for the input parameter scope is not valid "
            "because it contains more than one resource.",
        )
    resource = resources.pop() if resources else GRAPH_RESOURCE
    if ".default" in permissions and len(permissions) > 1:
        raise EntraError(
            "invalid_scope",
            70011,
            "The provided value for the input parameter 'scope' is not "
            "valid: .default cannot be combined with other scopes.",
        )
    return ScopeRequest(raw, resource, permissions, reserved)


def granted(app: App, scopes: ScopeRequest) -> list[str]:
    """Delegated permissions to put in `scp`; raises EntraError 65001 when not consented."""
    if scopes.resource == VAULT_RESOURCE:
        if app.key_vault == "none":
            raise no_consent(app)
        return ["user_impersonation"]
    configured = app.delegated_permissions - RESERVED_SCOPES
    if scopes.is_default:
        return sorted(configured)
    if not scopes.permissions:
        return ["User.Read"] if "User.Read" in configured else []
    missing = [p for p in scopes.permissions if p not in configured]
    if missing:
        raise no_consent(app)
    return list(dict.fromkeys(scopes.permissions))


def no_consent(app: App) -> EntraError:
    return EntraError(
        "invalid_grant",
        65001,
        f"The user or administrator has not consented to use the application with ID "
        f"'{app.client_id}' named '{app.display_name}'. Send an interactive authorization "
        "request for this user and resource.",
        suberror="consent_required",
    )
