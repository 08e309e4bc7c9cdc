"""Every setting the function app reads: one typed object, each field next to its variable's name.

`Settings.load()` is the only place that reads the environment (explicit > environment >
default); everything else receives a `Settings` (built once per process by shared.runtime).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

# --- Fixed names shared with infra/ and the devhost (not settings). ---
QUEUE_SEND = "mail-send"
QUEUE_MOVE = "mail-move"
QUEUE_DRAFT = "mail-draft"
QUEUE_REPLY = "mail-reply"
QUEUE_FORWARD = "mail-forward"
QUEUE_EXPORT = "mail-export"
QUEUES = (QUEUE_SEND, QUEUE_MOVE, QUEUE_DRAFT, QUEUE_REPLY, QUEUE_FORWARD, QUEUE_EXPORT)
OPERATIONS_TABLE = "operations"
# Sign-in health records and what the timers already reported (shared.health),
# created on first use.
SIGNIN_HEALTH_TABLE = "signinhealth"
# Single-use request-signature nonces (shared.api.replay), created on first use.
NONCES_TABLE = "requestnonces"
# Per-mailbox limits shared by every instance (shared.graph.shared_limits), created on first use.
MAILBOX_LIMITS_TABLE = "mailboxlimits"
# Every table the app uses: infra/ declares each of them (tests/infra checks it).
TABLES = (OPERATIONS_TABLE, NONCES_TABLE, MAILBOX_LIMITS_TABLE, SIGNIN_HEALTH_TABLE)

# The variables' names, for the modules that name them too (the queue triggers, the devhost's
# local.settings.json, the admin command line); each field below says which one it reads.
STORAGE_CONNECTION = "AzureWebJobsStorage"
STORAGE_QUEUE_SERVICE_URI = "AzureWebJobsStorage__queueServiceUri"
STORAGE_TABLE_SERVICE_URI = "AzureWebJobsStorage__tableServiceUri"
KEY_VAULT_URL = "KEY_VAULT_URL"
KEY_VAULT_CREDENTIAL = "KEY_VAULT_CREDENTIAL"
AZURE_CLIENT_ID = "AZURE_CLIENT_ID"
AZURE_TENANT_ID = "AZURE_TENANT_ID"
AZURE_CLIENT_SECRET = "AZURE_CLIENT_SECRET"  # noqa: S105 - a setting name; local sandbox only
AZURE_AUTHORITY_HOST = "AZURE_AUTHORITY_HOST"
KEY_VAULT_VERIFY_CHALLENGE_RESOURCE = "KEY_VAULT_VERIFY_CHALLENGE_RESOURCE"
AUTHORITY_INSTANCE_DISCOVERY = "AUTHORITY_INSTANCE_DISCOVERY"
GRAPH_BASE_URL = "GRAPH_BASE_URL"
AUTHORITY_HOST = "AUTHORITY_HOST"
PUBLIC_BASE_URL = "PUBLIC_BASE_URL"
# The signin_health timer's NCRONTAB schedule: the host reads it (`%SIGNIN_HEALTH_SCHEDULE%`).
SIGNIN_HEALTH_SCHEDULE = "SIGNIN_HEALTH_SCHEDULE"
# The host's own override of host.json (app settings win over host.json).
QUEUE_MAX_DEQUEUE_COUNT = "AzureFunctionsJobHost__extensions__queues__maxDequeueCount"

# Where a setting is set: by infra/ in Azure ("app"), only locally against the sandbox
# ("local"), or by the Functions host / the platform itself ("host").
APP, LOCAL, HOST = "app", "local", "host"


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def setting(
    *names: str,
    default: Any,
    scope: str = HOST,
    parse: Callable[[str], Any] | None = None,
    secret: bool = False,
) -> Any:
    """A Settings field read from the first of `names` that is set (the name lives here only).

    `secret` keeps the value out of repr() (and so out of logs and error messages).
    """
    return field(
        default=default,
        repr=not secret,
        metadata={"env": names, "scope": scope, "parse": parse},
    )


def _optional_int(value: str) -> int | None:
    return max(1, int(value))


MAILBOX_LIMIT_MODES = ("shared", "instance")


def _limits_mode(value: str) -> str:
    mode = value.strip().lower()
    if mode not in MAILBOX_LIMIT_MODES:
        raise ValueError(f"MAILBOX_LIMITS is one of {', '.join(MAILBOX_LIMIT_MODES)}")
    return mode


@dataclass(frozen=True)
class Settings:
    """The app's configuration; build with Settings.load() (explicit > environment > default)."""

    key_vault_url: str = setting(KEY_VAULT_URL, default="", scope=APP)
    # How the app authenticates to Key Vault: "managed_identity" (Azure) or "client_secret"
    # (local sandbox: AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_CLIENT_SECRET).
    key_vault_credential: str = setting(KEY_VAULT_CREDENTIAL, default="managed_identity", scope=APP)
    # Client id of the user-assigned managed identity (Azure) used for Key Vault and Storage.
    azure_client_id: str = setting(AZURE_CLIENT_ID, default="", scope=APP)
    azure_tenant_id: str = setting(AZURE_TENANT_ID, default="", scope=LOCAL)
    azure_client_secret: str = setting(AZURE_CLIENT_SECRET, default="", scope=LOCAL, secret=True)
    azure_authority_host: str = setting(AZURE_AUTHORITY_HOST, default="", scope=LOCAL)
    # Sandbox-only relaxations (never the default): a non-Azure vault host, no instance discovery.
    key_vault_verify_challenge_resource: bool = setting(
        KEY_VAULT_VERIFY_CHALLENGE_RESOURCE, default=True, scope=LOCAL
    )
    authority_instance_discovery: bool = setting(
        AUTHORITY_INSTANCE_DISCOVERY, default=True, scope=LOCAL
    )
    # Defaults for connections that do not name their own (national clouds, the sandbox).
    graph_base_url: str = setting(
        GRAPH_BASE_URL, default="https://graph.microsoft.com/v1.0", scope=APP
    )
    authority_host: str = setting(
        AUTHORITY_HOST, default="https://login.microsoftonline.com", scope=APP
    )
    # Storage: the Functions host's own connection (a connection string locally; identity-based
    # in Azure via __queueServiceUri / __tableServiceUri / __credential / __clientId).
    storage_connection: str = setting(STORAGE_CONNECTION, default="", scope=LOCAL, secret=True)
    storage_queue_service_uri: str = setting(STORAGE_QUEUE_SERVICE_URI, default="", scope=APP)
    storage_table_service_uri: str = setting(STORAGE_TABLE_SERVICE_URI, default="", scope=APP)
    storage_client_id: str = setting("AzureWebJobsStorage__clientId", default="")
    # Public base URL of the app (status URLs, sign-in links); derived from the request if unset.
    public_base_url: str = setting(PUBLIC_BASE_URL, default="", scope=APP)
    mask_addresses_in_logs: bool = setting("MASK_ADDRESSES_IN_LOGS", default=True, scope=APP)
    connection_cache_seconds: float = setting("CONNECTION_CACHE_SECONDS", default=300.0)
    graph_timeout_seconds: float = setting("GRAPH_TIMEOUT_SECONDS", default=30.0)
    graph_retry_budget_seconds: float = setting("GRAPH_RETRY_BUDGET_SECONDS", default=20.0)
    attachment_max_bytes: int = setting("ATTACHMENT_MAX_BYTES", default=150 * 1024 * 1024)
    # Exchange's limit on a whole message (the sender mailbox's MaxSendSize, attachments counted
    # base64-encoded): 35 MB by default, raisable to 150 MB; set it to the tenant's value.
    message_max_bytes: int = setting("MESSAGE_MAX_BYTES", default=35 * 1024 * 1024)
    operation_retention_days: int = setting("OPERATION_RETENTION_DAYS", default=30)
    # Background work (docs/operations.md): how long parked work waits for a sign-in, and how
    # long a worker's claim on a running operation lasts (≥ functionTimeout).
    parked_ttl_hours: float = setting("PARKED_TTL_HOURS", default=72.0)
    operation_claim_seconds: float = setting("OPERATION_CLAIM_SECONDS", default=660.0)
    # The host's maxDequeueCount override; unset: host.json's value (shared.work.hostconfig).
    queue_max_dequeue_count: int | None = setting(
        QUEUE_MAX_DEQUEUE_COUNT, default=None, parse=_optional_int
    )
    # Where the host runs the app from (its host.json); unset: this checkout.
    script_root: str = setting("AzureWebJobsScriptRoot", default="")
    # How long a resumed send waits for the Sent Items copy of a `/send` it issued before it
    # gives up with `send_unconfirmed` (Exchange files the copy once the mail has gone out).
    send_confirm_seconds: float = setting("SEND_CONFIRM_SECONDS", default=900.0)
    # Per-mailbox limits (docs/operations.md, "Mailbox limits"): "shared" keeps them for every
    # instance together in Table Storage (falling back to per instance while it is down);
    # "instance" keeps concurrency per instance only and paces nothing (the old behaviour).
    mailbox_limits: str = setting("MAILBOX_LIMITS", default="shared", parse=_limits_mode)
    # Graph's Outlook limits per app and mailbox, and Exchange's sending rate per mailbox
    # (0: not paced / not counted); a connection's `mailboxLimits` overrides them.
    mailbox_concurrent_requests: int = setting("MAILBOX_CONCURRENT_REQUESTS", default=4)
    mailbox_sends_per_minute: int = setting("MAILBOX_SENDS_PER_MINUTE", default=30)
    mailbox_requests_per_10_minutes: int = setting(
        "MAILBOX_REQUESTS_PER_10_MINUTES", default=10_000
    )
    # How long a claimed slot lasts unless renewed (a killed instance's slots free after it),
    # and how long a call waits for a slot or its departure before it is re-scheduled.
    mailbox_slot_seconds: float = setting("MAILBOX_SLOT_SECONDS", default=15.0)
    mailbox_wait_seconds: float = setting("MAILBOX_WAIT_SECONDS", default=10.0)
    # Sign-in health (docs/operations.md "Sign-in health"): when the timer runs (the host reads
    # the schedule; daily at 04:00 UTC by default), after how many idle days it redeems a
    # delegated sign-in's refresh token (Entra ends it after 90), how many days before that it
    # warns, how many Key Vault writes one run may make, how often it audits permissions, and
    # after how many minutes parked work is reported.
    signin_health_schedule: str = setting(SIGNIN_HEALTH_SCHEDULE, default="0 0 4 * * *", scope=APP)
    signin_refresh_after_days: float = setting("SIGNIN_REFRESH_AFTER_DAYS", default=7.0)
    signin_warn_days: float = setting("SIGNIN_WARN_DAYS", default=14.0)
    signin_max_vault_writes: int = setting("SIGNIN_MAX_VAULT_WRITES", default=50)
    signin_audit_days: float = setting("SIGNIN_AUDIT_DAYS", default=7.0)
    parked_alert_minutes: float = setting("PARKED_ALERT_MINUTES", default=60.0)
    # requests' own CA bundle variables, read once for our sessions (no per-request scan).
    ca_bundle: str = setting("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", default="")

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **explicit: object) -> Settings:
        """Explicit keyword arguments beat the environment, which beats the defaults.

        Raises ValueError when a variable holds something its field cannot take.
        """
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            if f.name in explicit:
                values[f.name] = explicit[f.name]
                continue
            raw = next((env[n] for n in f.metadata["env"] if env.get(n)), None)
            if raw is None:
                continue
            parse = f.metadata["parse"] or (_bool if isinstance(f.default, bool) else None)
            values[f.name] = parse(raw) if parse else type(f.default)(raw)
        return cls(**values)  # type: ignore[arg-type]


def names_in_scope(scope: str) -> tuple[str, ...]:
    """The variable names of every field set in `scope` (APP, LOCAL or HOST)."""
    return tuple(
        name for f in fields(Settings) if f.metadata["scope"] == scope for name in f.metadata["env"]
    )


# Every environment variable infra must set on the Function App (tests/infra checks it).
SETTING_NAMES = names_in_scope(APP)
# Read by the code but only meaningful locally (sandbox); infra must NOT set these.
LOCAL_ONLY_SETTING_NAMES = names_in_scope(LOCAL)


# --- local.settings.json: the same file the Functions Core Tools read, for local runs and the
# admin command line (`--settings`). Never read in Azure, where settings are app settings. ---


class LocalSettingsError(ValueError):
    """local.settings.json is missing, not JSON, or its Values are not strings."""


def read_local_settings(path: Path) -> dict[str, Any]:
    """The parsed file; raises LocalSettingsError with the path when it cannot be used."""
    import json

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise LocalSettingsError(
            f"{path} not found: `make run` writes one (see local.settings.example.json)"
        ) from exc
    except ValueError as exc:
        raise LocalSettingsError(f"{path} is not valid JSON: {exc}") from exc
    values = data.get("Values", {}) if isinstance(data, dict) else None
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        # The real host refuses non-string values too; say which file so it is quick to fix.
        raise LocalSettingsError(f"{path}: every entry of Values must be a string")
    return data


def apply_local_values(values: Mapping[str, str]) -> None:
    """Put local.settings.json's Values into os.environ.

    They win over variables already set (a machine may set REQUESTS_CA_BUNDLE, and the app must
    trust the sandbox CA named in local.settings.json instead).
    """
    for key, value in values.items():
        os.environ[key] = value
