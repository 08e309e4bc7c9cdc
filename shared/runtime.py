"""The process-wide collaborators (secrets, connections, tokens, sessions), built on first use.

Function instances live for many invocations; building these once per process keeps the MSAL
apps, token caches and pooled connections warm. Importing this module is cheap: the heavy
SDKs load when the first request needs them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cached_property
from typing import Any

import requests

from shared.graph.client import GraphClient, environment_session, shared_session
from shared.graph.folders import FolderCache
from shared.graph.limiter import limited_session
from shared.identity.connections import ConnectionRegistry
from shared.identity.secrets import SecretStore, make_secret_client
from shared.identity.tokens import (
    AppTokenProvider,
    ServiceAccountTokenProvider,
    Tokens,
    UserTokenProvider,
)
from shared.operations.context import OperationContext
from shared.settings import Settings, get_settings


class Runtime:
    """Builds an OperationContext per request from long-lived parts."""

    def __init__(
        self, settings: Settings, secret_client_factory: Callable[[], Any] | None = None
    ) -> None:
        self.settings = settings
        factory = secret_client_factory or (lambda: make_secret_client(settings))
        self.secrets = SecretStore(factory, ttl=settings.connection_cache_seconds)
        self.connections = ConnectionRegistry(self.secrets, settings)
        # Delegated modes keep their MSAL caches in Key Vault (shared.identity.token_cache).
        self.user_tokens = UserTokenProvider(self.connections, self.secrets, settings)
        self.tokens = Tokens(
            {
                "app": AppTokenProvider(self.connections),
                "service_account": ServiceAccountTokenProvider(
                    self.connections, self.secrets, settings
                ),
                "user": self.user_tokens,
            }
        )
        self.folders = FolderCache(ttl=settings.connection_cache_seconds)

    @cached_property
    def attachment_session(self) -> requests.Session:
        return environment_session()

    def context(
        self, connection_name: str, operation_id: str, user: str | None = None
    ) -> OperationContext:
        """Raises UnknownConnection, SecretsUnavailable, NotImplementedYet (mode)."""
        connection = self.connections.get(connection_name)
        graph = GraphClient(
            base_url=connection.graph_base_url,
            token=self.tokens.source(connection, user),
            timeout=self.settings.graph_timeout_seconds,
            retry_budget=self.settings.graph_retry_budget_seconds,
            # ≤ 4 in-flight requests per mailbox per instance (Graph's concurrency limit).
            session=limited_session(shared_session()),
            client_request_id=operation_id,
        )
        return OperationContext(
            operation_id=operation_id,
            connection=connection,
            graph=graph,
            settings=self.settings,
            http=self.attachment_session,
            folders=self.folders,
        )


_runtime: Runtime | None = None
_lock = threading.Lock()


def get_runtime() -> Runtime:
    """The process's Runtime (settings read once)."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = Runtime(get_settings())
        return _runtime
