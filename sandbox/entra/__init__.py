"""Entra ID stand-in: token endpoint grants, device code, authorize page, discovery.

One module per concern: `tenancy` (tenant and app look-up), `client_auth` (secrets and
certificate assertions), `scopes` (scope parsing and consent), `grants` (the token endpoint),
`device_code`, `authorize`, `discovery`, and `errors` (Entra's error shape).
"""

from __future__ import annotations

from sandbox.context import SandboxContext
from sandbox.directory import User
from sandbox.entra.authorize import AuthCodes
from sandbox.entra.device_code import DeviceCodes
from sandbox.entra.discovery import Discovery
from sandbox.entra.grants import TokenEndpoint


def _interactive_refusal(ctx: SandboxContext):
    """Why an interactive sign-in must fail: an expired password (sandbox.user_states)."""

    def refusal(user: User) -> str | None:
        if ctx.tokens.user_states.get(user.tenant_id, user.id).password_expired:
            return "AADSTS50055: The password is expired. Ask an admin to reset it."
        return None

    return refusal


class Entra:
    """The token service's state (device codes, auth codes) and its endpoints."""

    def __init__(self, ctx: SandboxContext) -> None:
        refusal = _interactive_refusal(ctx)
        self.device_codes = DeviceCodes(
            ctx.directory, lambda: ctx.tokens.device_code_lifetime, refusal
        )
        self.auth_codes = AuthCodes(ctx.directory, refusal)
        self.token_endpoint = TokenEndpoint(
            ctx.directory, ctx.tokens, self.device_codes, self.auth_codes
        )
        self.discovery = Discovery(ctx.directory, ctx.tokens)

    def reset(self) -> None:
        self.device_codes.reset()
        self.auth_codes.reset()

    def approve_device_code(self, user_code: str, upn: str, *, deny: bool = False) -> str | None:
        """Approve (or deny) a pending device code as `upn`; returns a problem, or None."""
        return self.device_codes.approve(user_code, upn, deny=deny)


def register(ctx: SandboxContext) -> Entra:
    """Add the Entra ID routes (per tenant id or domain) to ctx.router."""
    entra = Entra(ctx)
    ctx.extras["entra"] = entra
    ctx.extras.setdefault("reset_hooks", []).append(entra.reset)
    add = ctx.router.add
    t = r"/(?P<tenant>[A-Za-z0-9.-]+)"
    discovery = entra.discovery
    add("GET", t + r"/v2\.0/\.well-known/openid-configuration", discovery.openid_configuration)
    add("GET", t + r"/discovery/v2\.0/keys", discovery.keys)
    add("POST", t + r"/oauth2/v2\.0/token", entra.token_endpoint.token)
    add("POST", t + r"/oauth2/v2\.0/devicecode", entra.device_codes.start)
    add(["GET", "POST"], t + r"/oauth2/v2\.0/authorize", entra.auth_codes.authorize)
    add(["GET", "POST"], "/devicelogin", entra.device_codes.login_page)
    add("GET", r"/common/userrealm/(?P<user>[^/]+)", discovery.user_realm)
    return entra
