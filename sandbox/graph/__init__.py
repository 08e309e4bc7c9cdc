"""Microsoft Graph mail (v1.0 subset) for the sandbox, with Exchange Online's rules and limits."""

from __future__ import annotations

from sandbox.context import SandboxContext


def register(ctx: SandboxContext) -> None:
    """Add the Graph routes, the upload URL and the limits/outbound control endpoints to ctx."""
    from sandbox.graph.routes import register as register_routes

    register_routes(ctx)
