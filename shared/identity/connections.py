"""Named connections: their shape, where they live in Key Vault, and who may send through them.

A connection is the JSON secret `conn-<id>`; its credential, signing key and token caches are
secrets of their own kinds (shared.identity.secret_names). Raises `UnknownConnection` (404, the
same answer for a malformed name and an unknown one) , `ValidationFailed` when a connection to
be saved is not valid, and `AuthFailed` (502, a configuration error for the admin) when a
stored one is not valid or its credential secret is missing.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from shared.errors import AuthFailed, Detail, UnknownConnection, ValidationFailed
from shared.identity import secret_names
from shared.identity.secrets import SecretStore, set_secret_recovering
from shared.settings import Settings

MODES = ("app", "service_account", "user")
CREDENTIAL_TYPES = ("client_secret", "certificate", "token_cache", "password")
# Which credential each mode can use (docs/connections.md): app and user redeem with the app's
# own secret or certificate; a service account keeps an MSAL token cache (or, discouraged, a
# password for ROPC).
MODE_CREDENTIALS = {
    "app": ("client_secret", "certificate"),
    "service_account": ("token_cache", "password"),
    "user": ("client_secret", "certificate"),
}
DEFAULT_GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# The delegated Graph permissions each operation needs in the mailbox it acts on (Graph API
# reference, "Permissions" of each call; docs/permissions.md has the table and a test keeps it
# equal to this one). send: create the draft, add attachments or an upload session, /send, and
# find it in Sent Items after a crash; send_without_copy: one sendMail (saveToSentItems: false);
# draft: create it with its attachments; move: find by internetMessageId, resolve or create the
# folder, move; reply / forward: read the original, createReply(All) / createForward, add
# attachments, /send, find it after a crash.
OPERATION_PERMISSIONS = {
    "send": ("Mail.Send", "Mail.ReadWrite"),
    "send_without_copy": ("Mail.Send",),
    "draft": ("Mail.ReadWrite",),
    "move": ("Mail.ReadWrite",),
    "reply": ("Mail.Send", "Mail.ReadWrite"),
    "forward": ("Mail.Send", "Mail.ReadWrite"),
    "export": ("Mail.Read",),
}
# What a delegated connection asks for unless it names its own `delegatedScopes`: the least that
# covers every operation. A service account always acts in other mailboxes, so it needs the
# .Shared permissions, which include the signed-in user's own mailbox; a user sends as
# themselves. MSAL adds openid, profile and offline_access itself.
DEFAULT_DELEGATED_PERMISSIONS = {
    "service_account": ("Mail.Send.Shared", "Mail.ReadWrite.Shared"),
    "user": ("Mail.Send", "Mail.ReadWrite"),
}
# What delegatedScopes may name (short names on graphScope's resource, or full scope URIs).
DELEGATED_MAIL_PERMISSIONS = (
    "Mail.Send",
    "Mail.Send.Shared",
    "Mail.ReadWrite",
    "Mail.ReadWrite.Shared",
    "Mail.Read",
    "Mail.Read.Shared",
)


class CredentialRef(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    type: str
    # Derived from the connection name and type (shared.identity.secret_names); stored for
    # admins to read. Left out, it is filled in; any other name is refused.
    secret_name: Annotated[str, Meta(pattern=r"^[0-9A-Za-z-]{0,127}$")] = ""


class MailboxLimitOverrides(
    msgspec.Struct, rename="camel", frozen=True, forbid_unknown_fields=True, omit_defaults=True
):
    """A tenant's own mailbox limits, where they differ from the app's (MAILBOX_* settings)."""

    concurrent_requests: Annotated[int, Meta(ge=1, le=64)] | None = None
    sends_per_minute: Annotated[int, Meta(ge=0, le=100_000)] | None = None
    requests_per_10_minutes: Annotated[int, Meta(ge=0, le=10_000_000)] | None = None


class Connection(msgspec.Struct, rename="camel", frozen=True, forbid_unknown_fields=False):
    """One connection as stored in Key Vault (unknown keys are kept out, not refused)."""

    name: Annotated[str, Meta(pattern=secret_names.CONNECTION_NAME_PATTERN)]
    mode: str
    tenant_id: str
    client_id: str
    credential: CredentialRef
    authority_host: str = ""
    graph_base_url: str = ""
    graph_scope: str = DEFAULT_GRAPH_SCOPE
    instance_discovery: bool = True
    allowed_senders: list[str] = []
    attachment_url_hosts: list[str] = []
    allow_private_attachment_hosts: bool = False
    callback_url_hosts: list[str] = []
    # Hosts an archiveUrl (export, `archive` step) may PUT the .eml to (exact, or `*.domain`).
    archive_url_hosts: list[str] = []
    # Incoming requests must carry an RFC 9421 signature with the connection's signing key on
    # top of the function key (shared/api/request_auth.py). On unless explicitly turned off.
    require_signed_requests: bool = True
    # Delegated modes: the account (service_account: the service user; required for `password`).
    account: str = ""
    # Delegated modes: permission names (on graphScope's resource) or full scope URIs;
    # empty = DEFAULT_DELEGATED_PERMISSIONS of the mode.
    delegated_scopes: list[str] = []
    # User mode: hosts a sign-in's returnUrl may point at (exact, or `*.domain`).
    return_url_hosts: list[str] = []
    # The tenant's sending rate and Graph limits per mailbox, when not the app's defaults.
    mailbox_limits: MailboxLimitOverrides = MailboxLimitOverrides()
    # Where sign-in and parked-work events go (signed like callbacks, same URL rules: https,
    # a host on callbackUrlHosts); empty: none (shared.health.notify).
    notify_url: str = ""

    def scopes(self) -> list[str]:
        """The delegated scopes to ask for, as URIs on graphScope's resource (national clouds)."""
        if self.mode not in DEFAULT_DELEGATED_PERMISSIONS:
            return []  # app-only: graphScope (.default), whatever delegatedScopes says
        resource = self.graph_scope.removesuffix("/.default").rstrip("/")
        wanted = self.delegated_scopes or DEFAULT_DELEGATED_PERMISSIONS[self.mode]
        return [s if "/" in s else f"{resource}/{s}" for s in wanted]

    def permissions(self) -> list[str]:
        """The delegated permission names it asks for (scopes() without the resource)."""
        return [s.rsplit("/", 1)[-1] for s in self.scopes()]

    def sender_allowed(self, address: str) -> bool:
        return sender_allowed(self.allowed_senders, address)

    def with_defaults(self, settings: Settings) -> Connection:
        """Fill the Graph and authority hosts from settings when the connection names none."""
        return msgspec.structs.replace(
            self,
            authority_host=self.authority_host or settings.authority_host,
            graph_base_url=self.graph_base_url or settings.graph_base_url,
        )


def connection_secret_name(name: str) -> str:
    """The Key Vault secret of connection `name` (`conn-<slug>-<16 hex>`)."""
    return secret_names.connection_secret(name)


def sender_allowed(patterns: list[str], address: str) -> bool:
    """True when `address` equals a pattern or matches `*@domain` (case-insensitive)."""
    address = address.strip().casefold()
    if "@" not in address:
        return False
    domain = address.rsplit("@", 1)[1]
    for pattern in patterns:
        pattern = pattern.strip().casefold()
        if pattern == address:
            return True
        if pattern.startswith("*@") and pattern[2:] == domain:
            return True
    return False


def parse_connection(raw: str | bytes | dict[str, Any]) -> Connection:
    """Decode and check a stored connection; raises ValidationFailed naming each problem."""
    try:
        if isinstance(raw, dict):
            conn = msgspec.convert(raw, Connection)
        else:
            conn = msgspec.json.decode(raw, type=Connection)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ValidationFailed(
            "The connection is not valid.", details=[Detail("connection", str(exc))]
        ) from exc
    problems: list[Detail] = []
    name_problem = secret_names.connection_name_problem(conn.name)
    if name_problem:
        problems.append(Detail("name", name_problem))
    else:
        own = secret_names.credential_secret_for(conn.name, conn.credential.type)
        if not conn.credential.secret_name:
            conn.credential.secret_name = own
        elif conn.credential.secret_name != own:
            # A connection reads only its own credential, never another connection's secret.
            problems.append(Detail("credential.secretName", f"must be {own} (or left out)"))
    if conn.mode not in MODES:
        problems.append(Detail("mode", f"must be one of {', '.join(MODES)}"))
    if conn.credential.type not in CREDENTIAL_TYPES:
        problems.append(Detail("credential.type", f"must be one of {', '.join(CREDENTIAL_TYPES)}"))
    elif conn.mode in MODE_CREDENTIALS and conn.credential.type not in MODE_CREDENTIALS[conn.mode]:
        allowed = ", ".join(MODE_CREDENTIALS[conn.mode])
        problems.append(Detail("credential.type", f"mode {conn.mode} uses one of {allowed}"))
    if conn.credential.type == "password" and "@" not in conn.account:
        problems.append(Detail("account", "the password option needs the account's UPN"))
    for key, wire in (("authority_host", "authorityHost"), ("graph_base_url", "graphBaseUrl")):
        value = getattr(conn, key)
        if value and not value.startswith("https://"):
            # MSAL and Graph need https; the sandbox serves https too.
            problems.append(Detail(wire, "must be an https URL"))
    if conn.notify_url and not conn.notify_url.startswith("https://"):
        problems.append(Detail("notifyUrl", "must be an https URL"))
    for i, pattern in enumerate(conn.allowed_senders):
        if "@" not in pattern:
            problems.append(Detail(f"allowedSenders[{i}]", "use an address or *@domain"))
    problems += _scope_problems(conn)
    if problems:
        raise ValidationFailed("The connection is not valid.", details=problems)
    return conn


def _scope_problems(conn: Connection) -> list[Detail]:
    """delegatedScopes: known mail permissions only (MSAL adds the OIDC scopes itself and
    refuses them when passed). An app connection keeps but ignores them (it may change mode)."""
    problems = []
    for i, scope in enumerate(conn.delegated_scopes):
        permission = scope.rsplit("/", 1)[-1]
        if "/" in scope and not scope.startswith("https://"):
            problems.append(Detail(f"delegatedScopes[{i}]", "a scope URI must be https"))
        elif permission not in DELEGATED_MAIL_PERMISSIONS:
            known = ", ".join(DELEGATED_MAIL_PERMISSIONS)
            problems.append(Detail(f"delegatedScopes[{i}]", f"use one of {known}"))
    return problems


def new_signing_key() -> str:
    """A fresh HMAC-SHA256 key for a connection: 32 random bytes, base64url (no padding)."""
    import base64
    import secrets

    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")


def save_connection(
    client: Any,
    connection: dict[str, Any],
    credential_value: str | None,
    *,
    signing_key: str | None = None,
) -> Connection:
    """Validate `connection` and write it (its credential and signing key, if given) to Key Vault.

    `client` is an azure-keyvault-secrets SecretClient. The credential and the signing key are
    written first so a connection never points at a secret that does not exist yet. Every
    secret is tagged with its kind and owning connection. Returns the parsed connection.
    """
    conn = parse_connection(connection)
    # A removed connection's names stay soft-deleted for the vault's retention: recover them.
    if credential_value is not None:
        kind = "token-cache" if conn.credential.type == "token_cache" else "credential"
        set_secret_recovering(
            client,
            conn.credential.secret_name,
            credential_value,
            content_type="text/plain",
            tags=secret_names.tags(kind, conn.name),
        )
    if signing_key is not None:
        set_secret_recovering(
            client,
            secret_names.signing_key_secret(conn.name),
            signing_key,
            content_type="text/plain",
            tags=secret_names.tags("signing-key", conn.name),
        )
    set_secret_recovering(
        client,
        connection_secret_name(conn.name),
        msgspec.json.encode(conn).decode(),
        content_type="application/json",
        tags=secret_names.tags("connection", conn.name),
    )
    return conn


UNKNOWN_CONNECTION = "There is no connection with this name."


class ConnectionRegistry:
    """Connections by name, read through the SecretStore's TTL cache."""

    def __init__(self, secrets: SecretStore, settings: Settings) -> None:
        self.secrets = secrets
        self.settings = settings

    def get(self, name: str) -> Connection:
        """Raises UnknownConnection (malformed or unknown: one answer), AuthFailed, and
        SecretsUnavailable."""
        if not secret_names.valid_connection_name(name):
            # Checked before any lookup: a malformed name costs no Key Vault read and answers
            # exactly like an unknown one, whatever secrets exist.
            raise UnknownConnection(UNKNOWN_CONNECTION)
        secret_name = connection_secret_name(name)
        raw = self.secrets.get(secret_name)
        if raw is None:
            raise UnknownConnection(UNKNOWN_CONNECTION)
        try:
            conn = parse_connection(raw)
        except ValidationFailed as exc:
            # The caller's request is fine; the stored connection is not: a configuration
            # error for the admin (field names only, never the secret's content).
            fields = ", ".join(sorted({d.field for d in exc.details if d.field})) or "connection"
            raise AuthFailed(
                f"Connection {name!r} is misconfigured: the Key Vault secret {secret_name} is "
                f"not a valid connection ({fields}). Store it again with "
                "`python -m admin connections add`."
            ) from None
        # The stored name must be this name exactly (the secret name holds a hash of it).
        if conn.name != name:
            raise UnknownConnection(UNKNOWN_CONNECTION)
        return conn.with_defaults(self.settings)

    def signing_key(self, conn: Connection) -> str | None:
        """The connection's signing key (None when it has none)."""
        return self.secrets.get(secret_names.signing_key_secret(conn.name))

    def credential(self, conn: Connection) -> str:
        value = self.secrets.get(conn.credential.secret_name)
        if value is None:
            raise AuthFailed(
                f"Connection {conn.name!r} is misconfigured: its credential secret "
                f"{conn.credential.secret_name} is missing from Key Vault. Store it with "
                "`python -m admin connections add ... --secret-stdin`."
            )
        return value
