"""The directory built from the seed: tenants, app registrations, users, mailboxes and grants."""

from __future__ import annotations

import hmac
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

RIGHTS = frozenset({"FullAccess", "SendAs", "SendOnBehalf"})
# Per-mailbox settings of Set-Mailbox the sandbox models, with Exchange's defaults (off: "By
# default, when an assistant sends mail as, or on behalf of, a manager, the sent message is
# stored in the assistant's Sent Items folder", automatically-save-sent-items-in-delegator-s-
# mailbox). On: the message is also stored in the mailbox's own Sent Items.
MAILBOX_SETTINGS = {
    "messageCopyForSentAsEnabled": False,
    "messageCopyForSendOnBehalfEnabled": False,
}


@dataclass(frozen=True)
class Tenant:
    id: str
    domain: str
    display_name: str


@dataclass
class App:
    """An app registration; `certificates` holds PEM certificates and can grow at run time."""

    client_id: str
    tenant_id: str
    display_name: str
    secrets: tuple[str, ...]
    certificates: list[str]
    application_permissions: frozenset[str]
    delegated_permissions: frozenset[str]
    key_vault: str  # "readwrite", "read" or "none"
    redirect_uris: tuple[str, ...] = ()
    # Exchange RBAC for Applications: the mailboxes its management scope covers (lower-case
    # addresses); None = no scope, the application permissions reach every mailbox.
    mailbox_scope: frozenset[str] | None = None


@dataclass(frozen=True)
class User:
    id: str
    upn: str
    display_name: str
    mfa_required: bool
    tenant_id: str
    password: str = field(default="", repr=False, compare=False)


@dataclass(frozen=True)
class Mailbox:
    id: str
    address: str
    display_name: str
    kind: str  # "user" or "shared"
    tenant_id: str


class Directory:
    """Case-insensitive look-ups over the seed; a look-up in another tenant finds nothing."""

    def __init__(self, seed: dict[str, Any]) -> None:
        self._lock = threading.Lock()
        self._tenants: dict[str, Tenant] = {}
        self._apps: dict[str, App] = {}
        self._users: dict[tuple[str, str], User] = {}
        self._mailboxes: dict[tuple[str, str], Mailbox] = {}
        self._mailbox_list: list[Mailbox] = []
        self._rights: dict[tuple[str, str, str], frozenset[str]] = {}
        self._settings: dict[tuple[str, str], dict[str, bool]] = {}
        for raw in seed["tenants"]:
            self._load_tenant(raw)
        self._seed_certificates = {a.client_id: list(a.certificates) for a in self._apps.values()}
        # Grants and mailbox settings are data: a control endpoint may change them at run
        # time (like Add-MailboxPermission / Set-Mailbox); reset() goes back to the seed's.
        self._seed_rights = dict(self._rights)
        self._seed_settings = {k: dict(v) for k, v in self._settings.items()}
        self._seed_scopes = {a.client_id: a.mailbox_scope for a in self._apps.values()}

    def _load_tenant(self, raw: dict[str, Any]) -> None:
        tenant = Tenant(raw["id"].lower(), raw["domain"].lower(), raw.get("displayName", ""))
        self._tenants[tenant.id] = tenant
        self._tenants[tenant.domain] = tenant
        for a in raw.get("apps", []):
            app = App(
                client_id=a["clientId"].lower(),
                tenant_id=tenant.id,
                display_name=a.get("displayName", ""),
                secrets=tuple(a.get("secrets", [])),
                certificates=list(a.get("certificates", [])),
                application_permissions=frozenset(a.get("applicationPermissions", [])),
                delegated_permissions=frozenset(a.get("delegatedPermissions", [])),
                key_vault=a.get("keyVault", "none"),
                redirect_uris=tuple(a.get("redirectUris", [])),
                mailbox_scope=(
                    frozenset(m.lower() for m in a["mailboxScope"])
                    if a.get("mailboxScope") is not None
                    else None
                ),
            )
            self._apps[app.client_id] = app
        for u in raw.get("users", []):
            user = User(
                id=u["id"].lower(),
                upn=u["upn"].lower(),
                display_name=u.get("displayName", u["upn"]),
                mfa_required=bool(u.get("mfaRequired", False)),
                tenant_id=tenant.id,
                password=u.get("password", ""),
            )
            self._users[(tenant.id, user.upn)] = user
            self._users[(tenant.id, user.id)] = user
            self._add_mailbox(Mailbox(user.id, user.upn, user.display_name, "user", tenant.id))
            self._load_settings(tenant.id, user.upn, u)
        for m in raw.get("sharedMailboxes", []):
            mailbox = Mailbox(
                m["id"].lower(), m["address"].lower(), m.get("displayName", ""), "shared", tenant.id
            )
            self._add_mailbox(mailbox)
            self._load_settings(tenant.id, mailbox.address, m)
        for g in raw.get("grants", []):
            rights = frozenset(g.get("rights", [])) & RIGHTS
            key = (tenant.id, g["trustee"].lower(), g["mailbox"].lower())
            self._rights[key] = self._rights.get(key, frozenset()) | rights

    def _load_settings(self, tenant_id: str, address: str, raw: dict[str, Any]) -> None:
        self._settings[(tenant_id, address.lower())] = {
            name: bool(raw.get(name, default)) for name, default in MAILBOX_SETTINGS.items()
        }

    def _add_mailbox(self, mailbox: Mailbox) -> None:
        self._mailboxes[(mailbox.tenant_id, mailbox.address)] = mailbox
        self._mailboxes[(mailbox.tenant_id, mailbox.id)] = mailbox
        self._mailbox_list.append(mailbox)

    def tenant(self, id_or_domain: str | None) -> Tenant | None:
        return self._tenants.get((id_or_domain or "").lower())

    def tenants(self) -> list[Tenant]:
        return list({t.id: t for t in self._tenants.values()}.values())

    def app(self, client_id: str | None) -> App | None:
        return self._apps.get((client_id or "").lower())

    def apps(self, tenant_id: str | None = None) -> list[App]:
        return [a for a in self._apps.values() if tenant_id in (None, a.tenant_id)]

    def user(self, tenant_id: str | None, upn_or_id: str | None) -> User | None:
        tenant = self.tenant(tenant_id)
        if tenant is None:
            return None
        return self._users.get((tenant.id, (upn_or_id or "").lower()))

    def users(self, tenant_id: str | None = None) -> list[User]:
        unique = {u.id: u for u in self._users.values()}
        return [u for u in unique.values() if tenant_id in (None, u.tenant_id)]

    def mailbox(self, tenant_id: str | None, id_or_address: str | None) -> Mailbox | None:
        tenant = self.tenant(tenant_id)
        if tenant is None:
            return None
        return self._mailboxes.get((tenant.id, (id_or_address or "").lower()))

    def mailboxes(self, tenant_id: str | None = None) -> list[Mailbox]:
        tenant = self.tenant(tenant_id) if tenant_id else None
        if tenant_id and tenant is None:
            return []
        return [m for m in self._mailbox_list if tenant is None or m.tenant_id == tenant.id]

    def rights(
        self, tenant_id: str | None, trustee_upn: str, mailbox_address: str
    ) -> frozenset[str]:
        """Mailbox permissions of `trustee_upn` on `mailbox_address` (empty across tenants)."""
        tenant = self.tenant(tenant_id)
        if tenant is None:
            return frozenset()
        key = (tenant.id, trustee_upn.lower(), mailbox_address.lower())
        return self._rights.get(key, frozenset())

    def mailbox_setting(self, tenant_id: str | None, address: str, name: str) -> bool:
        """A Set-Mailbox setting of MAILBOX_SETTINGS (its default for unknown mailboxes)."""
        tenant = self.tenant(tenant_id)
        values = self._settings.get((tenant.id if tenant else "", address.lower()), {})
        return values.get(name, MAILBOX_SETTINGS[name])

    def set_mailbox_settings(self, tenant_id: str | None, address: str, **values: bool) -> None:
        """Change Set-Mailbox settings of a mailbox (until reset); raises KeyError for an
        unknown tenant, mailbox or setting."""
        box = self.mailbox(tenant_id, address)
        if box is None:
            raise KeyError(address)
        unknown = set(values) - set(MAILBOX_SETTINGS)
        if unknown:
            raise KeyError(f"unknown settings {sorted(unknown)}")
        with self._lock:
            current = self._settings.setdefault(
                (box.tenant_id, box.address), dict(MAILBOX_SETTINGS)
            )
            current.update({k: bool(v) for k, v in values.items()})

    def change_rights(
        self,
        tenant_id: str | None,
        trustee_upn: str,
        mailbox_address: str,
        *,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
    ) -> frozenset[str]:
        """Grant `add` and take away `remove` (until reset), as Add-MailboxPermission,
        Add-RecipientPermission, Set-Mailbox -GrantSendOnBehalfTo and their Remove- forms do;
        returns the trustee's rights on the mailbox now.

        Raises KeyError for an unknown tenant and ValueError for an unknown right.
        """
        tenant = self.tenant(tenant_id)
        if tenant is None:
            raise KeyError(tenant_id)
        added, removed = frozenset(add), frozenset(remove)
        unknown = (added | removed) - RIGHTS
        if unknown:
            raise ValueError(
                f"unknown right {', '.join(sorted(unknown))}; use {', '.join(sorted(RIGHTS))}"
            )
        key = (tenant.id, trustee_upn.lower(), mailbox_address.lower())
        with self._lock:
            rights = (self._rights.get(key, frozenset()) | added) - removed
            if rights:
                self._rights[key] = rights
            else:
                self._rights.pop(key, None)
            return rights

    def grants(self, tenant_id: str) -> list[dict[str, Any]]:
        """Every grant in the tenant: {mailbox, trustee, rights} (Get-MailboxPermission's view)."""
        with self._lock:
            items = sorted(self._rights.items())
        return [
            {"mailbox": mailbox, "trustee": trustee, "rights": sorted(rights)}
            for (tenant, trustee, mailbox), rights in items
            if tenant == tenant_id and rights
        ]

    def set_app_scope(self, client_id: str, mailboxes: list[str] | None) -> App:
        """Limit an app's application permissions to `mailboxes` (None: no limit). KeyError for
        an unknown app."""
        app = self.app(client_id)
        if app is None:
            raise KeyError(client_id)
        with self._lock:
            app.mailbox_scope = (
                None if mailboxes is None else frozenset(m.lower() for m in mailboxes)
            )
        return app

    def app_scope_allows(self, client_id: str, address: str) -> bool:
        """Whether the app's management scope covers the mailbox (True without a scope)."""
        app = self.app(client_id)
        if app is None or app.mailbox_scope is None:
            return True
        box = self.mailbox(app.tenant_id, address)
        names = {address.lower()} | ({box.address, box.id} if box else set())
        return bool(names & app.mailbox_scope)

    def add_certificate(self, client_id: str, pem: str) -> None:
        """Register a public certificate for an app's client assertions (until reset)."""
        app = self.app(client_id)
        if app is None:
            raise KeyError(client_id)
        with self._lock:
            app.certificates.append(pem)

    def check_password(self, user: User, password: str) -> bool:
        """Whether `password` is the user's seed password (constant-time compare)."""
        return bool(user.password) and hmac.compare_digest(
            user.password.encode(), (password or "").encode()
        )

    def reset(self) -> None:
        """Forget certificates, grants, mailbox settings and app scopes changed at run time
        (back to the seed's)."""
        with self._lock:
            for app in self._apps.values():
                app.certificates[:] = list(self._seed_certificates.get(app.client_id, []))
                app.mailbox_scope = self._seed_scopes.get(app.client_id)
            self._rights = dict(self._seed_rights)
            self._settings = {k: dict(v) for k, v in self._seed_settings.items()}
