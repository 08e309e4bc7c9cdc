"""Every setting the function app reads: names as constants, one typed object read once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

# --- Names of the app settings (environment variables). infra/ sets each of these. ---
KEY_VAULT_URL = "KEY_VAULT_URL"
# Client id of the user-assigned managed identity (Azure) used for Key Vault and Storage.
AZURE_CLIENT_ID = "AZURE_CLIENT_ID"
# How the app authenticates to Key Vault: "managed_identity" (Azure) or "client_secret"
# (local sandbox: AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_CLIENT_SECRET).
KEY_VAULT_CREDENTIAL = "KEY_VAULT_CREDENTIAL"
AZURE_TENANT_ID = "AZURE_TENANT_ID"
AZURE_CLIENT_SECRET = "AZURE_CLIENT_SECRET"  # noqa: S105 - a setting name; local sandbox only
AZURE_AUTHORITY_HOST = "AZURE_AUTHORITY_HOST"
# Sandbox-only relaxations (never the default): a non-Azure vault host, no instance discovery.
KEY_VAULT_VERIFY_CHALLENGE_RESOURCE = "KEY_VAULT_VERIFY_CHALLENGE_RESOURCE"
AUTHORITY_INSTANCE_DISCOVERY = "AUTHORITY_INSTANCE_DISCOVERY"
# Defaults for connections that do not name their own (national clouds, the sandbox).
GRAPH_BASE_URL = "GRAPH_BASE_URL"
AUTHORITY_HOST = "AUTHORITY_HOST"
# Storage: the Functions host's own connection (connection string locally; identity-based in
# Azure via AzureWebJobsStorage__queueServiceUri / __tableServiceUri / __credential / __clientId).
STORAGE_CONNECTION = "AzureWebJobsStorage"
STORAGE_QUEUE_SERVICE_URI = "AzureWebJobsStorage__queueServiceUri"
STORAGE_TABLE_SERVICE_URI = "AzureWebJobsStorage__tableServiceUri"
# Public base URL of the function app (status URLs, sign-in links); derived from the host if unset.
PUBLIC_BASE_URL = "PUBLIC_BASE_URL"
MASK_ADDRESSES_IN_LOGS = "MASK_ADDRESSES_IN_LOGS"
CONNECTION_CACHE_SECONDS = "CONNECTION_CACHE_SECONDS"
GRAPH_TIMEOUT_SECONDS = "GRAPH_TIMEOUT_SECONDS"
GRAPH_RETRY_BUDGET_SECONDS = "GRAPH_RETRY_BUDGET_SECONDS"
ATTACHMENT_MAX_BYTES = "ATTACHMENT_MAX_BYTES"
# Exchange's limit on a whole message (the sender mailbox's MaxSendSize, attachments counted
# base64-encoded): 35 MB by default, raisable to 150 MB; set it to the tenant's value.
MESSAGE_MAX_BYTES = "MESSAGE_MAX_BYTES"
OPERATION_RETENTION_DAYS = "OPERATION_RETENTION_DAYS"
# Background work (docs/operations.md): how long parked work waits for a sign-in, how long a
# worker's claim on a running operation lasts (≥ functionTimeout), the queue's maxDequeueCount.
STORAGE_CLIENT_ID = "AzureWebJobsStorage__clientId"
PARKED_TTL_HOURS = "PARKED_TTL_HOURS"
OPERATION_CLAIM_SECONDS = "OPERATION_CLAIM_SECONDS"
QUEUE_MAX_DEQUEUE_COUNT = "AzureFunctionsJobHost__extensions__queues__maxDequeueCount"
# How long a resumed send waits for the Sent Items copy of a `/send` it issued before it gives
# up with `send_unconfirmed` (Exchange files the copy only once the mail has gone out).
SEND_CONFIRM_SECONDS = "SEND_CONFIRM_SECONDS"

# --- Fixed names shared with infra/ and the devhost. ---
QUEUE_SEND = "mail-send"
QUEUE_MOVE = "mail-move"
QUEUE_DRAFT = "mail-draft"
QUEUES = (QUEUE_SEND, QUEUE_MOVE, QUEUE_DRAFT)
OPERATIONS_TABLE = "operations"
# Single-use request-signature nonces (shared.api.replay), created on first use.
NONCES_TABLE = "requestnonces"


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """The app's configuration; build with Settings.load() (explicit > environment > default)."""

    key_vault_url: str = ""
    key_vault_credential: str = "managed_identity"
    azure_client_id: str = ""
    azure_tenant_id: str = ""
    azure_authority_host: str = ""
    key_vault_verify_challenge_resource: bool = True
    authority_instance_discovery: bool = True
    graph_base_url: str = "https://graph.microsoft.com/v1.0"
    authority_host: str = "https://login.microsoftonline.com"
    storage_connection: str = ""
    storage_queue_service_uri: str = ""
    storage_table_service_uri: str = ""
    public_base_url: str = ""
    mask_addresses_in_logs: bool = True
    connection_cache_seconds: float = 300.0
    graph_timeout_seconds: float = 30.0
    graph_retry_budget_seconds: float = 20.0
    attachment_max_bytes: int = 150 * 1024 * 1024
    message_max_bytes: int = 35 * 1024 * 1024
    operation_retention_days: int = 30
    parked_ttl_hours: float = 72.0
    operation_claim_seconds: float = 660.0
    queue_max_dequeue_count: int = 5
    send_confirm_seconds: float = 900.0

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **explicit: object) -> Settings:
        """Explicit keyword arguments beat the environment, which beats the defaults."""
        env = os.environ if env is None else env
        names = {
            "key_vault_url": KEY_VAULT_URL,
            "key_vault_credential": KEY_VAULT_CREDENTIAL,
            "azure_client_id": AZURE_CLIENT_ID,
            "azure_tenant_id": AZURE_TENANT_ID,
            "azure_authority_host": AZURE_AUTHORITY_HOST,
            "key_vault_verify_challenge_resource": KEY_VAULT_VERIFY_CHALLENGE_RESOURCE,
            "authority_instance_discovery": AUTHORITY_INSTANCE_DISCOVERY,
            "graph_base_url": GRAPH_BASE_URL,
            "authority_host": AUTHORITY_HOST,
            "storage_connection": STORAGE_CONNECTION,
            "storage_queue_service_uri": STORAGE_QUEUE_SERVICE_URI,
            "storage_table_service_uri": STORAGE_TABLE_SERVICE_URI,
            "public_base_url": PUBLIC_BASE_URL,
            "mask_addresses_in_logs": MASK_ADDRESSES_IN_LOGS,
            "connection_cache_seconds": CONNECTION_CACHE_SECONDS,
            "graph_timeout_seconds": GRAPH_TIMEOUT_SECONDS,
            "graph_retry_budget_seconds": GRAPH_RETRY_BUDGET_SECONDS,
            "attachment_max_bytes": ATTACHMENT_MAX_BYTES,
            "message_max_bytes": MESSAGE_MAX_BYTES,
            "operation_retention_days": OPERATION_RETENTION_DAYS,
            "parked_ttl_hours": PARKED_TTL_HOURS,
            "operation_claim_seconds": OPERATION_CLAIM_SECONDS,
            "queue_max_dequeue_count": QUEUE_MAX_DEQUEUE_COUNT,
            "send_confirm_seconds": SEND_CONFIRM_SECONDS,
        }
        values: dict[str, object] = {}
        for f in fields(cls):
            if f.name in explicit:
                values[f.name] = explicit[f.name]
                continue
            raw = env.get(names[f.name])
            if raw is None or raw == "":
                continue
            kind = type(f.default)
            values[f.name] = _bool(raw) if kind is bool else kind(raw)
        return cls(**values)  # type: ignore[arg-type]


# Every environment variable the code reads; infra tests check that the Function App sets them.
SETTING_NAMES = (
    KEY_VAULT_URL,
    KEY_VAULT_CREDENTIAL,
    AZURE_CLIENT_ID,
    GRAPH_BASE_URL,
    AUTHORITY_HOST,
    STORAGE_QUEUE_SERVICE_URI,
    STORAGE_TABLE_SERVICE_URI,
    PUBLIC_BASE_URL,
    MASK_ADDRESSES_IN_LOGS,
)
# Read by the code but only meaningful locally (sandbox); infra must NOT set these.
LOCAL_ONLY_SETTING_NAMES = (
    AZURE_TENANT_ID,
    AZURE_CLIENT_SECRET,
    AZURE_AUTHORITY_HOST,
    KEY_VAULT_VERIFY_CHALLENGE_RESOURCE,
    AUTHORITY_INSTANCE_DISCOVERY,
    STORAGE_CONNECTION,
)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings.load()


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
