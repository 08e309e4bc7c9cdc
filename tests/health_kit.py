"""A SignInHealth with stand-ins around it (no network): a vault of connections and token caches,
token sources that answer as told, a notifier that records, and the in-memory health store.
Unit tests drive the sign-in pass with it; tests/infra takes the log lines it writes."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.errors import AppError, ReauthRequired
from shared.health.signins import SignInHealth
from shared.health.store import MemoryHealthStore
from shared.identity import secret_names
from shared.identity.connections import ConnectionRegistry, connection_secret_name
from shared.identity.delegated_tokens import UserTokenProvider
from shared.identity.secrets import SecretStore
from shared.identity.token_cache import encode_envelope
from shared.settings import Settings
from tests.fakes import Clock

TENANT = "8f3c1a52-0000-4000-8000-00000000c0de"
CLIENT = "5d1e7c9a-0000-4000-8000-00000000a11c"
MSAL_WITH_REFRESH_TOKEN = json.dumps({"RefreshToken": {"rt": {"secret": "not-a-real-token"}}})


@dataclass
class _Props:
    name: str
    tags: dict[str, str]
    enabled: bool = True


@dataclass
class _Secret:
    value: str


class FakeSecretClient:
    """The part of azure-keyvault-secrets' SecretClient the app uses, in memory; counts writes."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[str, dict[str, str]]] = {}
        self.writes: list[str] = []

    def get_secret(self, name: str) -> _Secret:
        from azure.core.exceptions import ResourceNotFoundError

        if name not in self.values:
            raise ResourceNotFoundError(f"{name} not found")
        return _Secret(self.values[name][0])

    def set_secret(self, name: str, value: str, **kw: Any) -> None:
        self.values[name] = (value, dict(kw.get("tags") or {}))
        self.writes.append(name)

    def list_properties_of_secrets(self) -> list[_Props]:
        return [_Props(name, tags) for name, (_, tags) in self.values.items()]


@dataclass
class FakeTokens:
    """Token sources per (connection, user): "ok", or an exception to raise; counts calls."""

    answers: dict[tuple[str, str | None], Any] = field(default_factory=dict)
    calls: list[tuple[str, str | None, bool]] = field(default_factory=list)
    on_refresh: Any = None  # called after a successful forced refresh (writes the cache)

    def source(self, connection: Any, user: str | None = None) -> Any:
        def token(force_refresh: bool = False) -> str:
            self.calls.append((connection.name, user, force_refresh))
            answer = self.answers.get((connection.name, user), "ok")
            if isinstance(answer, list):
                answer = answer.pop(0) if len(answer) > 1 else answer[0]
            if isinstance(answer, BaseException):
                raise answer
            if force_refresh and self.on_refresh:
                self.on_refresh(connection, user)
            return "access-token"

        return token


@dataclass
class RecordingNotifier:
    sent: list[tuple[str, dict]] = field(default_factory=list)

    def send(self, connection: Any, body: dict) -> dict:
        self.sent.append((connection.name, body))
        return {"status": "delivered", "attempts": 1}


class HealthKit:
    """The parts, and helpers to add connections and sign-ins `days` idle."""

    def __init__(self, **settings: Any) -> None:
        self.clock = Clock()
        self.client = FakeSecretClient()
        self.settings = Settings.load(env={}, **settings)
        self.secrets = SecretStore(lambda: self.client, ttl=0.0)
        self.registry = ConnectionRegistry(self.secrets, self.settings)
        self.tokens = FakeTokens(on_refresh=self._refreshed)
        self.notifier = RecordingNotifier()
        self.store = MemoryHealthStore()
        self.sleeps: list[float] = []
        self.health = SignInHealth(
            settings=self.settings,
            secrets=self.secrets,
            connections=self.registry,
            tokens=self.tokens,  # type: ignore[arg-type]
            user_tokens=UserTokenProvider(self.registry, self.secrets, self.settings),
            store=self.store,
            notifier=self.notifier,  # type: ignore[arg-type]
            clock=self.clock,
            sleep=self.sleeps.append,
        )

    def connection(self, name: str, mode: str, **extra: Any) -> None:
        credential = {"service_account": "token_cache", "user": "client_secret"}[mode]
        doc = {
            "name": name,
            "mode": mode,
            "tenantId": TENANT,
            "clientId": CLIENT,
            "credential": {"type": credential},
            "allowedSenders": ["*@contoso.test"],
            **extra,
        }
        self.client.set_secret(
            connection_secret_name(name),
            json.dumps(doc),
            tags=secret_names.tags("connection", name),
        )

    def signed_in(self, connection: str, user: str | None, days_idle: float) -> str:
        """Store a sign-in whose refresh token was last used `days_idle` days ago."""
        if user is None:
            name = secret_names.token_cache_secret(connection)
            tags = secret_names.tags("token-cache", connection)
        else:
            name = secret_names.user_cache_secret(connection, user)
            tags = secret_names.tags("user-cache", connection, user=user.casefold())
        saved = (self.clock() - timedelta(days=days_idle)).timestamp()
        value = encode_envelope(MSAL_WITH_REFRESH_TOKEN, account=user, now=saved)
        self.client.set_secret(name, value, tags=tags)
        return name

    def refuse(self, connection: str, user: str | None, code: int = 700082) -> None:
        self.tokens.answers[(connection, user)] = ReauthRequired(
            f"{user or 'The service account'} must sign in again for connection "
            f"{connection!r} (invalid_grant (AADSTS{code})).",
            connection=connection,
            user=user,
        )

    def fail(self, connection: str, user: str | None, error: AppError) -> None:
        self.tokens.answers[(connection, user)] = error

    def _refreshed(self, connection: Any, user: str | None) -> None:
        # A forced refresh rotates the refresh token: the provider writes the cache back.
        self.signed_in(connection.name, user, 0)

    def days_pass(self, days: float) -> None:
        self.clock.now = self.clock.now + timedelta(days=days)

    @property
    def now(self) -> datetime:
        return self.clock()


class LineCapture(logging.Handler):
    """Every message logged on the app's JSON loggers while installed."""

    LOGGERS = (
        "exchange_processor.signins",
        "exchange_processor.operations",
        "exchange_processor.graph",
    )

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def __enter__(self) -> LineCapture:
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            logger.addHandler(self)
            logger.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: Any) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).removeHandler(self)

    def events(self, event: str) -> list[dict]:
        marker = f'"event":"{event}"'
        return [json.loads(line[line.index("{") :]) for line in self.lines if marker in line]
