"""The one wiring place: every process-wide object, built once on first use, from Settings.

Function instances live for many invocations; building these once per process keeps the MSAL
apps, token caches and pooled connections warm. Nothing else in the app keeps a module-level
instance: everything receives what it needs from here (tests build a Runtime with fakes and
install it with `use_runtime`). Importing this module is cheap: each part imports its SDKs
when it is first built (cold start).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from shared.settings import Settings

if TYPE_CHECKING:
    from shared.api.replay import TableNonceStore
    from shared.graph.folders import FolderCache
    from shared.graph.limiter import MailboxLimits, MailboxPolicy
    from shared.health.notify import Notifier
    from shared.health.signins import SignInHealth
    from shared.health.store import HealthStore
    from shared.identity.connections import Connection, ConnectionRegistry
    from shared.identity.delegated_tokens import UserTokenProvider
    from shared.identity.secrets import SecretStore
    from shared.identity.signin_hooks import SignInHooks
    from shared.identity.tokens import Tokens
    from shared.operations.context import OperationContext, Progress
    from shared.work.callbacks import FinalCallbacks
    from shared.work.lifecycle import Lifecycle
    from shared.work.processor import Processor
    from shared.work.queueing import Queues
    from shared.work.store import OperationStore

T = TypeVar("T")


class part(Generic[T]):
    """A Runtime part: built on first use under the Runtime's lock, then read from the
    instance's __dict__ like a plain attribute (no lock, no call on the warm path)."""

    def __init__(self, build: Callable[[Any], T]) -> None:
        self.build = build
        self.name = build.__name__
        self.__doc__ = build.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> part[T]: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        with obj._lock:
            if self.name not in obj.__dict__:
                obj.__dict__[self.name] = self.build(obj)
            return obj.__dict__[self.name]


class Runtime:
    """Builds and holds the process-wide collaborators; `context()` makes one per operation.

    Pass `store`, `queues` or `secret_client_factory` to replace the real ones (tests, the
    admin command line); everything else is derived from `settings`.
    """

    def __init__(
        self,
        settings: Settings,
        secret_client_factory: Callable[[], Any] | None = None,
        *,
        store: OperationStore | None = None,
        queues: Queues | None = None,
        mailbox_limits: MailboxLimits | None = None,
        health_store: HealthStore | None = None,
    ) -> None:
        self.settings = settings
        self._secret_client_factory = secret_client_factory
        self._lock = threading.RLock()
        # Given parts take the place of the ones `part` would build.
        if store is not None:
            self.__dict__["store"] = store
        if queues is not None:
            self.__dict__["queues"] = queues
        if mailbox_limits is not None:
            self.__dict__["mailbox_limits"] = mailbox_limits
        if health_store is not None:
            self.__dict__["health_store"] = health_store

    # --- identity ----------------------------------------------------------------------------

    @part
    def secrets(self) -> SecretStore:
        from shared.identity.secrets import SecretStore, make_secret_client

        factory = self._secret_client_factory or (lambda: make_secret_client(self.settings))
        return SecretStore(factory, ttl=self.settings.connection_cache_seconds)

    @part
    def connections(self) -> ConnectionRegistry:
        from shared.identity.connections import ConnectionRegistry

        return ConnectionRegistry(self.secrets, self.settings)

    @part
    def user_tokens(self) -> UserTokenProvider:
        from shared.identity.delegated_tokens import UserTokenProvider

        return UserTokenProvider(self.connections, self.secrets, self.settings)

    @part
    def tokens(self) -> Tokens:
        from shared.identity.app_tokens import AppTokenProvider
        from shared.identity.delegated_tokens import ServiceAccountTokenProvider
        from shared.identity.tokens import Tokens

        # Delegated modes keep their MSAL caches in Key Vault (shared.identity.token_cache).
        return Tokens(
            {
                "app": AppTokenProvider(self.connections),
                "service_account": ServiceAccountTokenProvider(
                    self.connections, self.secrets, self.settings
                ),
                "user": self.user_tokens,
            }
        )

    @part
    def sign_in_hooks(self) -> SignInHooks:
        """Run after a successful sign-in: re-queue the work parked for it."""
        from shared.identity.signin_hooks import SignInHooks

        return SignInHooks([self.resume_parked])

    def resume_parked(self, connection: str, user: str | None) -> list[str]:
        """Queue again the work parked for `connection` (and `user`); returns the ids."""
        from shared.work.parking import requeue_parked

        return requeue_parked(self.store, self.queues, connection, user)

    # --- Graph and other HTTP --------------------------------------------------------------

    @part
    def graph_session(self) -> Any:
        """The pooled Graph session (the mailbox limits are applied by each GraphClient)."""
        from shared.sessions import pooled_session

        return pooled_session(self.settings.ca_bundle)

    @part
    def mailbox_limits(self) -> MailboxLimits:
        """Per-mailbox limits: shared by every instance in Table Storage (per instance while
        it is down), or per instance only (MAILBOX_LIMITS=instance)."""
        from shared.graph.limiter import InstanceLimits

        if self.settings.mailbox_limits == "instance":
            return InstanceLimits(pacing=False)
        from shared.graph.shared_limits import TableMailboxLimits
        from shared.settings import MAILBOX_LIMITS_TABLE
        from shared.work.table_store import make_table_client

        def table() -> Any:
            # Fail fast: a limiter that waits on storage would hold up every Graph call.
            return make_table_client(
                self.settings,
                MAILBOX_LIMITS_TABLE,
                retry_total=1,
                connection_timeout=3,
                read_timeout=5,
            )

        return TableMailboxLimits(table, slot_seconds=self.settings.mailbox_slot_seconds)

    def mailbox_policy(self, connection: Connection) -> MailboxPolicy:
        """The connection's mailbox limits: its own where it sets them, else the app's."""
        from shared.graph.limiter import MailboxPolicy

        own, app = connection.mailbox_limits, self.settings
        return MailboxPolicy(
            concurrent=own.concurrent_requests or app.mailbox_concurrent_requests,
            sends_per_minute=(
                app.mailbox_sends_per_minute
                if own.sends_per_minute is None
                else own.sends_per_minute
            ),
            requests_per_10_minutes=(
                app.mailbox_requests_per_10_minutes
                if own.requests_per_10_minutes is None
                else own.requests_per_10_minutes
            ),
        )

    @part
    def attachment_session(self) -> Any:
        """Attachment downloads for connections that allow private hosts (the sandbox)."""
        from shared.sessions import environment_session

        return environment_session(self.settings.ca_bundle)

    @part
    def guarded_session(self) -> Any:
        """Attachment downloads and callbacks to any other host: every peer address checked."""
        from shared.urlsafety import guarded_session

        return guarded_session(self.settings.ca_bundle)

    @part
    def folders(self) -> FolderCache:
        from shared.graph.folders import FolderCache

        return FolderCache(ttl=self.settings.connection_cache_seconds)

    # --- background work ---------------------------------------------------------------------

    @part
    def store(self) -> OperationStore:
        from shared.work.table_store import TableOperationStore

        return TableOperationStore.from_settings(self.settings)

    @part
    def queues(self) -> Queues:
        from shared.work.queueing import Queues

        return Queues(self.settings)

    @part
    def nonces(self) -> TableNonceStore:
        """Single-use request-signature nonces, shared by every instance (Table Storage)."""
        from shared.api.replay import TableNonceStore
        from shared.settings import NONCES_TABLE
        from shared.work.table_store import make_table_client

        return TableNonceStore(make_table_client(self.settings, NONCES_TABLE))

    @part
    def callbacks(self) -> FinalCallbacks:
        from shared.work.callbacks import FinalCallbacks

        return FinalCallbacks(
            self.connections,
            self.store,
            guarded_session=self.guarded_session,
            plain_session=self.attachment_session,
        )

    @part
    def lifecycle(self) -> Lifecycle:
        from shared.work.lifecycle import Lifecycle, Limits

        return Lifecycle(
            self.store,
            self.queues,
            self.context,
            limits=Limits.from_settings(self.settings),
            on_final=self.callbacks,
            on_parked=self.announce_parked,
        )

    def announce_parked(self, op: Any) -> None:
        """An operation parked: record its lost sign-in, tell the connection's notifyUrl (the
        parts are built on the first park, not with the lifecycle)."""
        from shared.health.parked import announce_parked

        def mark(connection: str, user: str | None, error: str) -> None:
            self.signin_health.mark_refused(connection, user, error)

        announce_parked(op, self.connections, self.notifier, mark)

    # --- sign-in health (shared.health) --------------------------------------------------

    @part
    def health_store(self) -> HealthStore:
        """Sign-in health records in Table Storage (`signinhealth`, created on first use)."""
        from shared.health.store import TableHealthStore
        from shared.settings import SIGNIN_HEALTH_TABLE
        from shared.work.table_store import make_table_client

        return TableHealthStore(make_table_client(self.settings, SIGNIN_HEALTH_TABLE))

    @part
    def notifier(self) -> Notifier:
        """Signed events to connections' notifyUrl (the callbacks' URL rules and sessions)."""
        from shared.health.notify import Notifier

        return Notifier(
            self.connections,
            guarded_session=self.guarded_session,
            plain_session=self.attachment_session,
        )

    @part
    def signin_health(self) -> SignInHealth:
        """The signin_health timer's sign-in pass, with the operations' own token providers."""
        from shared.health.signins import SignInHealth

        return SignInHealth(
            settings=self.settings,
            secrets=self.secrets,
            connections=self.connections,
            tokens=self.tokens,
            user_tokens=self.user_tokens,
            store=self.health_store,
            notifier=self.notifier,
        )

    @part
    def processor(self) -> Processor:
        from shared.work.processor import Processor

        return Processor(self.lifecycle)

    # --- per operation -----------------------------------------------------------------------

    def context(
        self,
        connection_name: str,
        operation_id: str,
        user: str | None = None,
        *,
        progress: Progress | None = None,
    ) -> OperationContext:
        """Raises UnknownConnection, SecretsUnavailable, NotImplementedYet (mode)."""
        from shared.graph.client import GraphClient
        from shared.graph.limiter import MailboxGate
        from shared.operations.context import OperationContext, Progress

        connection = self.connections.get(connection_name)
        progress = progress or Progress()
        gate = MailboxGate(
            self.mailbox_limits,
            tenant=connection.tenant_id,
            app=connection.client_id,
            policy=self.mailbox_policy(connection),
            tag=operation_id,
            # Queued and `auto` work can come back for a departure booked ahead.
            book_ahead=progress.durable,
            max_wait=self.settings.mailbox_wait_seconds,
        )
        graph = GraphClient(
            base_url=connection.graph_base_url,
            token=self.tokens.source(connection, user),
            timeout=self.settings.graph_timeout_seconds,
            retry_budget=self.settings.graph_retry_budget_seconds,
            session=self.graph_session,
            client_request_id=operation_id,
            limits=gate,
            mask_addresses=self.settings.mask_addresses_in_logs,
        )
        return OperationContext(
            operation_id=operation_id,
            connection=connection,
            graph=graph,
            settings=self.settings,
            http=self.attachment_session,
            guarded_http=self.guarded_session,
            folders=self.folders,
            progress=progress,
        )


_runtime: Runtime | None = None
_lock = threading.Lock()


def get_runtime() -> Runtime:
    """The process's Runtime (settings read from the environment once)."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = Runtime(Settings.load())
        return _runtime


@contextmanager
def use_runtime(runtime: Runtime) -> Iterator[Runtime]:
    """Make `runtime` the process's Runtime for the block (tests inject fakes this way)."""
    global _runtime
    with _lock:
        previous, _runtime = _runtime, runtime
    try:
        yield runtime
    finally:
        with _lock:
            _runtime = previous
