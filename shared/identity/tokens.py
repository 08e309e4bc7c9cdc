"""Access tokens for Graph: one provider per connection mode, and the router between them.

Providers: shared.identity.app_tokens (`app`), shared.identity.delegated_tokens
(`service_account`, `user`); the user sign-in's code redemption is in
shared.identity.code_redemption, Entra ID's error answers in shared.identity.entra_errors.
Raises `AuthFailed` when Entra ID refuses the connection's own credentials, `ReauthRequired`
(with a sign-in URL or the admin command) when a person must sign in again, and
`GraphUnavailable` when Entra ID cannot be reached.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from shared.errors import NotImplementedYet
from shared.identity.connections import Connection


class TokenProvider(Protocol):
    """Gives a Graph access token for a connection (and, for `user` mode, a user)."""

    def token(
        self, connection: Connection, user: str | None = None, *, force_refresh: bool = False
    ) -> str: ...


class Tokens:
    """Routes a connection to the provider of its mode."""

    def __init__(self, providers: dict[str, TokenProvider]) -> None:
        self.providers = providers

    def source(self, connection: Connection, user: str | None = None) -> Callable[..., str]:
        """A callable returning a current token; `force_refresh=True` skips the token cache."""
        provider = self.providers.get(connection.mode)
        if provider is None:
            raise NotImplementedYet(
                f"Connection mode {connection.mode!r} is not available in this version."
            )

        def token(force_refresh: bool = False) -> str:
            return provider.token(connection, user, force_refresh=force_refresh)

        return token
