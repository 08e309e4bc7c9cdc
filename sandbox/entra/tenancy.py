"""Which tenant a URL segment names and which app a client id is, as Entra resolves them."""

from __future__ import annotations

from sandbox.directory import App, Directory, Tenant
from sandbox.entra.errors import EntraError

MULTI_TENANT_SEGMENTS = frozenset({"common", "organizations"})


def tenant_for(directory: Directory, segment: str) -> Tenant | None:
    """The tenant of a URL segment; None for common/organizations (resolved by the app).

    Raises EntraError 90002 for an unknown tenant.
    """
    if segment.lower() in MULTI_TENANT_SEGMENTS:
        return None
    tenant = directory.tenant(segment)
    if tenant is None:
        raise EntraError(
            "invalid_request",
            90002,
            f"Tenant '{segment}' not found. Check to make sure you have the correct tenant ID "
            "and are signing into the correct cloud.",
        )
    return tenant


def app_for(
    directory: Directory, client_id: str | None, tenant: Tenant | None
) -> tuple[App, Tenant]:
    """The app and its tenant; raises EntraError 700016 when not registered in `tenant`."""
    app = directory.app(client_id)
    if app is None or (tenant is not None and app.tenant_id != tenant.id):
        where = tenant.domain if tenant else "the sandbox"
        raise EntraError(
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory "
            f"'{where}'. This can happen if the application has not been installed by the "
            "administrator of the tenant or consented to by any user in the tenant.",
        )
    found = tenant or directory.tenant(app.tenant_id)
    assert found is not None
    return app, found
