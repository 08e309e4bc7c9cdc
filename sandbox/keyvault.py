"""Key Vault secrets API (one vault per sandbox, at the root): versions, paging, challenge,
soft delete (deleted secrets, recover, purge; on by default with 90 recoverable days)."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any
from urllib.parse import urlencode

from sandbox.context import VAULT_RESOURCE, SandboxContext
from sandbox.tokens import TokenError
from sandbox.web import Request, Response

NAME_RE = re.compile(r"[0-9a-zA-Z-]{1,127}")
PAGE_SIZE = 25
SCHEMA = """
CREATE TABLE IF NOT EXISTS kv_secrets (
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    value TEXT NOT NULL,
    content_type TEXT,
    tags TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS kv_deleted_secrets (
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    value TEXT NOT NULL,
    content_type TEXT,
    tags TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    purge INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);
"""
# The live columns, spelled out once for the moves between the two tables.
_COLUMNS = "name, version, value, content_type, tags, enabled, created, updated, seq"
SOFT_DELETE_SQL = (
    f"INSERT INTO kv_deleted_secrets SELECT {_COLUMNS}, ?, ? FROM kv_secrets "  # noqa: S608 - constant
    "WHERE name = ? COLLATE NOCASE"
)
RECOVER_SQL = (
    f"INSERT INTO kv_secrets SELECT {_COLUMNS} FROM kv_deleted_secrets "  # noqa: S608 - constant
    "WHERE name = ? COLLATE NOCASE"
)


def kv_error(status: int, code: str, message: str, inner: str | None = None) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner}
    return Response.json({"error": error}, status)


class KeyVault:
    """The secrets of the sandbox's one vault, in SQLite (wiped by reset)."""

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.db.script(SCHEMA)
        self.max_value = int(ctx.limits.get("keyVaultMaxValueBytes", 25600))
        # Azure turns soft delete on for every new vault (infra also sets purge protection);
        # 0 days switches it off, as in vaults made before 2020.
        self.recoverable_days = int(ctx.limits.get("keyVaultRecoverableDays", 90))
        # The vault lives in the first tenant that has an app allowed to use it.
        self.tenant_id = next(
            (a.tenant_id for a in ctx.directory.apps() if a.key_vault != "none"),
            ctx.directory.tenants()[0].id,
        )

    def reset(self) -> None:
        self.db.execute("DELETE FROM kv_secrets")
        self.db.execute("DELETE FROM kv_deleted_secrets")

    # --- auth -----------------------------------------------------------------------------
    def authorize(self, request: Request, write: bool) -> Response | None:
        """None when the caller may go on; otherwise the 401/403 Key Vault answers with."""
        authority = f"{self.ctx.base_url}/{self.tenant_id}"
        challenge = f'Bearer authorization="{authority}", resource="{VAULT_RESOURCE}"'
        try:
            principal = self.ctx.tokens.verify(
                request.headers.get("authorization"), VAULT_RESOURCE, request=request
            )
        except TokenError as exc:
            messages = {
                "missing": "AKV10000: Request is missing a Bearer or PoP token.",
                "expired": "AKV10022: Invalid token: the token has expired.",
                "wrong_audience": "AKV10022: Invalid audience.",
                "wrong_tenant": "AKV10032: Invalid issuer.",
                "invalid": "AKV10000: Token validation failed.",
            }
            response = kv_error(401, "Unauthorized", messages.get(exc.code, exc.message))
            response.headers["WWW-Authenticate"] = challenge
            return response
        app = self.ctx.directory.app(principal.app_id)
        allowed = {"readwrite": {"read", "write"}, "read": {"read"}}.get(app.key_vault, set())
        if principal.tenant_id != self.tenant_id or ("write" if write else "read") not in allowed:
            return kv_error(
                403,
                "Forbidden",
                f"Caller is not authorized to perform action on resource. Caller: "
                f"appid={principal.app_id}. Vault: sandbox.",
                inner="ForbiddenByRbac",
            )
        return None

    # --- shapes ---------------------------------------------------------------------------
    def _id(self, name: str, version: str | None = None) -> str:
        base = f"{self.ctx.base_url}/secrets/{name}"
        return f"{base}/{version}" if version else base

    def _attributes(self, row: Any) -> dict[str, Any]:
        attributes = {
            "enabled": bool(row["enabled"]),
            "created": row["created"],
            "updated": row["updated"],
            "recoveryLevel": "Recoverable+Purgeable" if self.recoverable_days else "Purgeable",
        }
        if self.recoverable_days:
            attributes["recoverableDays"] = self.recoverable_days
        return attributes

    def _bundle(self, row: Any, with_value: bool = True) -> dict[str, Any]:
        bundle: dict[str, Any] = {
            "id": self._id(row["name"], row["version"]),
            "attributes": self._attributes(row),
            "tags": json.loads(row["tags"]),
        }
        if with_value:
            bundle["value"] = row["value"]
        if row["content_type"]:
            bundle["contentType"] = row["content_type"]
        return bundle

    def _latest(self, name: str) -> Any:
        return self.db.one(
            "SELECT * FROM kv_secrets WHERE name = ? COLLATE NOCASE ORDER BY seq DESC LIMIT 1",
            (name,),
        )

    @staticmethod
    def _not_found(name: str, version: str | None = None) -> Response:
        what = f"{name}/{version}" if version else name
        return kv_error(
            404,
            "SecretNotFound",
            f"A secret with (name/id) {what} was not found in this key vault. If you recently "
            "deleted this secret you may be able to recover it using the correct recovery "
            "command. For help resolving this issue, please see "
            "https://go.microsoft.com/fwlink/?linkid=2125182",
        )

    def _deleted_bundle(self, row: Any) -> dict[str, Any]:
        """A DeletedSecretBundle: the secret's latest version without its value, plus where
        and until when it can be recovered."""
        bundle = self._bundle(row, with_value=False)
        bundle["recoveryId"] = f"{self.ctx.base_url}/deletedsecrets/{row['name']}"
        bundle["deletedDate"] = row["deleted"]
        bundle["scheduledPurgeDate"] = row["purge"]
        return bundle

    def _latest_deleted(self, name: str) -> Any:
        return self.db.one(
            "SELECT * FROM kv_deleted_secrets WHERE name = ? COLLATE NOCASE "
            "ORDER BY seq DESC LIMIT 1",
            (name,),
        )

    @staticmethod
    def _deleted_not_found(name: str) -> Response:
        return kv_error(404, "SecretNotFound", f"Deleted Secret not found: {name}")

    @staticmethod
    def _bad_name(name: str) -> Response:
        return kv_error(
            400,
            "BadParameter",
            f"The request URI contains an invalid name: {name[:130]}",
        )

    # --- handlers -------------------------------------------------------------------------
    def set_secret(self, request: Request) -> Response:
        name = request.params["name"]
        denied = self.authorize(request, write=True)
        if denied:
            return denied
        if not NAME_RE.fullmatch(name):
            return self._bad_name(name)
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("value"), str):
            return kv_error(
                400, "BadParameter", "Property 'value' is required and must be a string."
            )
        value = body["value"]
        if len(value) > self.max_value:
            return kv_error(
                400,
                "BadParameter",
                f"Secret is beyond the maximum permitted length of {self.max_value} characters.",
            )
        attributes = body.get("attributes") or {}
        now = int(time.time())
        version = uuid.uuid4().hex
        with self.db.transaction() as conn:
            deleted = conn.execute(
                "SELECT name FROM kv_deleted_secrets WHERE name = ? COLLATE NOCASE LIMIT 1",
                (name,),
            ).fetchone()
            if deleted is not None:
                return kv_error(
                    409,
                    "Conflict",
                    f"Secret {deleted['name']} is currently in a deleted but recoverable state, "
                    "and its name cannot be reused; in this state, the secret can only be "
                    "recovered or purged.",
                    inner="ObjectIsDeletedButRecoverable",
                )
            latest = conn.execute(
                "SELECT name FROM kv_secrets WHERE name = ? COLLATE NOCASE LIMIT 1", (name,)
            ).fetchone()
            stored_name = latest["name"] if latest else name
            seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM kv_secrets").fetchone()[0]
            conn.execute(
                "INSERT INTO kv_secrets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    stored_name,
                    version,
                    value,
                    body.get("contentType"),
                    json.dumps(body.get("tags") or {}),
                    1 if attributes.get("enabled", True) else 0,
                    now,
                    now,
                    seq,
                ),
            )
        row = self.db.one(
            "SELECT * FROM kv_secrets WHERE name = ? AND version = ?", (stored_name, version)
        )
        return Response.json(self._bundle(row))

    def get_secret(self, request: Request) -> Response:
        name, version = request.params["name"], request.params.get("version") or None
        denied = self.authorize(request, write=False)
        if denied:
            return denied
        if not NAME_RE.fullmatch(name):
            return self._bad_name(name)
        if version:
            row = self.db.one(
                "SELECT * FROM kv_secrets WHERE name = ? COLLATE NOCASE AND version = ?",
                (name, version),
            )
        else:
            row = self._latest(name)
        if row is None:
            return self._not_found(name, version)
        if not row["enabled"]:
            return kv_error(403, "Forbidden", "Operation get is not allowed on a disabled secret.")
        return Response.json(self._bundle(row))

    def update_secret(self, request: Request) -> Response:
        name, version = request.params["name"], request.params.get("version") or None
        denied = self.authorize(request, write=True)
        if denied:
            return denied
        row = (
            self.db.one(
                "SELECT * FROM kv_secrets WHERE name = ? COLLATE NOCASE AND version = ?",
                (name, version),
            )
            if version
            else self._latest(name)
        )
        if row is None:
            return self._not_found(name, version)
        body = request.json() or {}
        attributes = body.get("attributes") or {}
        enabled = (
            row["enabled"] if "enabled" not in attributes else int(bool(attributes["enabled"]))
        )
        tags = json.dumps(body["tags"]) if "tags" in body else row["tags"]
        content_type = body.get("contentType", row["content_type"])
        self.db.execute(
            "UPDATE kv_secrets SET enabled = ?, tags = ?, content_type = ?, updated = ? "
            "WHERE name = ? AND version = ?",
            (enabled, tags, content_type, int(time.time()), row["name"], row["version"]),
        )
        row = self.db.one(
            "SELECT * FROM kv_secrets WHERE name = ? AND version = ?", (row["name"], row["version"])
        )
        return Response.json(self._bundle(row, with_value=False))

    def delete_secret(self, request: Request) -> Response:
        name = request.params["name"]
        denied = self.authorize(request, write=True)
        if denied:
            return denied
        row = self._latest(name)
        if row is None:
            return self._not_found(name)
        now = int(time.time())
        if not self.recoverable_days:
            self.db.execute("DELETE FROM kv_secrets WHERE name = ? COLLATE NOCASE", (name,))
            # No recoveryId: soft delete is off, so the SDK's delete poller ends at once.
            bundle = self._bundle(row, with_value=False)
            bundle["deletedDate"] = now
            return Response.json(bundle)
        purge = now + self.recoverable_days * 86400
        with self.db.transaction() as conn:
            conn.execute(SOFT_DELETE_SQL, (now, purge, name))
            conn.execute("DELETE FROM kv_secrets WHERE name = ? COLLATE NOCASE", (name,))
        return Response.json(self._deleted_bundle(self._latest_deleted(name)))

    # --- soft delete: /deletedsecrets ---------------------------------------------------------
    def get_deleted_secret(self, request: Request) -> Response:
        name = request.params["name"]
        denied = self.authorize(request, write=False)
        if denied:
            return denied
        row = self._latest_deleted(name)
        if row is None:
            return self._deleted_not_found(name)
        return Response.json(self._deleted_bundle(row))

    def list_deleted_secrets(self, request: Request) -> Response:
        denied = self.authorize(request, write=False)
        if denied:
            return denied
        return self._page(request, self._latest_rows("kv_deleted_secrets"), "/deletedsecrets")

    def purge_deleted_secret(self, request: Request) -> Response:
        name = request.params["name"]
        denied = self.authorize(request, write=True)
        if denied:
            return denied
        if self._latest_deleted(name) is None:
            return self._deleted_not_found(name)
        self.db.execute("DELETE FROM kv_deleted_secrets WHERE name = ? COLLATE NOCASE", (name,))
        return Response(204)

    def recover_deleted_secret(self, request: Request) -> Response:
        name = request.params["name"]
        denied = self.authorize(request, write=True)
        if denied:
            return denied
        if self._latest_deleted(name) is None:
            return self._deleted_not_found(name)
        with self.db.transaction() as conn:
            conn.execute(RECOVER_SQL, (name,))
            conn.execute("DELETE FROM kv_deleted_secrets WHERE name = ? COLLATE NOCASE", (name,))
        return Response.json(self._bundle(self._latest(name), with_value=False))

    def _page(self, request: Request, rows: list[Any], path: str) -> Response:
        try:
            size = min(int(request.arg("maxresults", str(PAGE_SIZE)) or PAGE_SIZE), PAGE_SIZE)
            skip = int(request.arg("$skiptoken", "0") or 0)
        except ValueError:
            return kv_error(400, "BadParameter", "maxresults and $skiptoken must be integers.")
        size = max(size, 1)
        page = rows[skip : skip + size]
        items = []
        for row in page:
            if path == "/deletedsecrets":
                item = self._deleted_bundle(row)
                item["id"] = self._id(row["name"])
            else:
                item = self._bundle(row, with_value=False)
            if path == "/secrets":
                item["id"] = self._id(row["name"])
            items.append(item)
        next_link = None
        if skip + size < len(rows):
            query = {
                "api-version": request.arg("api-version", "7.6"),
                "$skiptoken": str(skip + size),
                "maxresults": str(size),
            }
            next_link = f"{self.ctx.base_url}{path}?{urlencode(query)}"
        return Response.json({"value": items, "nextLink": next_link})

    def _latest_rows(self, table: str) -> list:
        """The newest row of each secret name in `table` (kv_secrets or kv_deleted_secrets)."""
        return self.db.query(
            f"SELECT s.* FROM {table} s JOIN (SELECT name, MAX(seq) AS seq FROM {table} "  # noqa: S608 - table is one of two constants
            "GROUP BY name) latest ON s.name = latest.name AND s.seq = latest.seq ORDER BY s.name"
        )

    def list_secrets(self, request: Request) -> Response:
        denied = self.authorize(request, write=False)
        if denied:
            return denied
        return self._page(request, self._latest_rows("kv_secrets"), "/secrets")

    def list_versions(self, request: Request) -> Response:
        name = request.params["name"]
        denied = self.authorize(request, write=False)
        if denied:
            return denied
        rows = self.db.query(
            "SELECT * FROM kv_secrets WHERE name = ? COLLATE NOCASE ORDER BY seq", (name,)
        )
        return self._page(request, rows, f"/secrets/{name}/versions")


def register(ctx: SandboxContext) -> None:
    """Add the /secrets routes to ctx.router."""
    vault = KeyVault(ctx)
    ctx.extras["keyvault"] = vault
    ctx.extras.setdefault("reset_hooks", []).append(vault.reset)
    name = r"/secrets/(?P<name>[^/]+)"
    deleted = r"/deletedsecrets/(?P<name>[^/]+)"
    ctx.router.add("GET", r"/deletedsecrets/?", vault.list_deleted_secrets)
    ctx.router.add("GET", deleted + r"/?", vault.get_deleted_secret)
    ctx.router.add("DELETE", deleted + r"/?", vault.purge_deleted_secret)
    ctx.router.add("POST", deleted + r"/recover/?", vault.recover_deleted_secret)
    ctx.router.add("GET", r"/secrets/?", vault.list_secrets)
    ctx.router.add("GET", name + r"/versions", vault.list_versions)
    ctx.router.add("PUT", name + r"/?", vault.set_secret)
    ctx.router.add("GET", name + r"/?", vault.get_secret)
    ctx.router.add("PATCH", name + r"/?", vault.update_secret)
    ctx.router.add("DELETE", name + r"/?", vault.delete_secret)
    ctx.router.add("GET", name + r"/(?P<version>[^/]*)", vault.get_secret)
    ctx.router.add("PATCH", name + r"/(?P<version>[^/]+)", vault.update_secret)
