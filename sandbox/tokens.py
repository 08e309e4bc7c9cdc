"""Tokens: RS256 signing key + JWKS, access tokens (v1.0, as Entra issues them for Graph and Key
Vault), id tokens (v2.0), refresh tokens, revocation, verify."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.clock import SandboxClock
from sandbox.context import GRAPH_RESOURCE, VAULT_RESOURCE, Principal
from sandbox.db import Database
from sandbox.directory import Directory, User
from sandbox.user_states import UserStates

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
VAULT_APP_ID = "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"
AUDIENCES = {
    GRAPH_RESOURCE: {GRAPH_RESOURCE, GRAPH_RESOURCE + "/", GRAPH_APP_ID},
    VAULT_RESOURCE: {VAULT_RESOURCE, VAULT_RESOURCE + "/", VAULT_APP_ID},
}
SIGNING_KEY_FILE = "signing-key.pem"

SCHEMA = """
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    issued_at REAL NOT NULL,
    last_used REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS revocations (
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    error TEXT NOT NULL,
    revoked_at REAL NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
"""


class TokenError(Exception):
    """An access token was refused; code: missing|invalid|expired|wrong_audience|wrong_tenant."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def service_principal_id(client_id: str) -> str:
    """A stable object id for an app's service principal (the `oid` of app-only tokens)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox-sp:{client_id.lower()}"))


def _load_or_create_key(state_dir: Path) -> rsa.RSAPrivateKey:
    path = state_dir / SIGNING_KEY_FILE
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return key


class Tokens:
    """Issues and verifies the sandbox's tokens; refresh tokens and revocations live in SQLite."""

    def __init__(
        self, directory: Directory, db: Database, state_dir: Path, base_url: str, settings: dict
    ) -> None:
        self.directory = directory
        self.db = db
        self.base_url = base_url.rstrip("/")
        self._seed_settings = dict(settings)
        self._lock = threading.Lock()
        self._key = _load_or_create_key(state_dir)
        public_der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = b64url(hashlib.sha256(public_der).digest())[:27]
        self.db.script(SCHEMA)
        # Refresh tokens, revocations and user states live in sandbox time (sandbox.clock).
        self.clock = SandboxClock(db)
        self.user_states = UserStates(db, self.clock)
        self.reset()

    # --- settings -------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the seed's token settings; previously issued access tokens are not expired."""
        with self._lock:
            self.access_lifetime = int(self._seed_settings.get("accessTokenLifetimeSeconds", 3600))
            self.device_code_lifetime = int(
                self._seed_settings.get("deviceCodeLifetimeSeconds", 900)
            )
            self.refresh_inactivity = (
                float(self._seed_settings.get("refreshTokenInactivityDays", 90)) * 86400
            )
            self.expired_before = 0.0
        self.db.execute("DELETE FROM revocations")
        self.clock.reset()
        self.user_states.reset()

    def expire_all(self) -> None:
        """Every access token issued so far counts as expired (tests of the refresh path)."""
        with self._lock:
            self.expired_before = time.time() + 0.001

    def issuer(self, tenant_id: str) -> str:
        """The v2.0 issuer: id tokens and the discovery document name it."""
        return f"{self.base_url}/{tenant_id}/v2.0"

    @staticmethod
    def access_issuer(tenant_id: str) -> str:
        """The issuer of access tokens for Graph and Key Vault: v1.0 tokens, because those
        resources accept v1.0 (their accessTokenAcceptedVersion is not 2), so Entra issues
        them from sts.windows.net whichever endpoint was asked (access-tokens.md)."""
        return f"https://sts.windows.net/{tenant_id}/"

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})

    # --- issuing --------------------------------------------------------------------------
    def access_token(
        self,
        *,
        tenant_id: str,
        client_id: str,
        resource: str,
        user: User | None = None,
        scopes: list[str] | None = None,
        roles: list[str] | None = None,
        client_auth: str = "0",
    ) -> tuple[str, int]:
        """A signed access token for `resource`; returns (token, expires_in seconds)."""
        now = time.time()
        lifetime = self.access_lifetime
        app = self.directory.app(client_id)
        claims: dict[str, Any] = {
            "aud": resource,
            "iss": self.access_issuer(tenant_id),
            "iat": int(now),
            "nbf": int(now) - 1,
            "exp": int(now) + lifetime,
            # Fractional issue time: lets `expire_all` cut exactly between two tokens of one second.
            "sandbox_iat": now,
            "tid": tenant_id,
            "appid": client_id,
            "appidacr": client_auth,
            "app_displayname": app.display_name if app else "",
            "ver": "1.0",
            "uti": secrets.token_urlsafe(16),
            "jti": str(uuid.uuid4()),
        }
        if user is not None:
            claims.update(
                {
                    "idtyp": "user",
                    "oid": user.id,
                    "sub": user.id,
                    "upn": user.upn,
                    "preferred_username": user.upn,
                    "unique_name": user.upn,
                    "name": user.display_name,
                    "scp": " ".join(scopes or []),
                    "amr": ["pwd", "mfa"] if user.mfa_required else ["pwd"],
                }
            )
        else:
            sp = service_principal_id(client_id)
            claims.update({"idtyp": "app", "oid": sp, "sub": sp, "roles": list(roles or [])})
        return self._sign(claims), lifetime

    def id_token(self, *, tenant_id: str, client_id: str, user: User, nonce: str | None) -> str:
        now = int(time.time())
        claims = {
            "aud": client_id,
            "iss": self.issuer(tenant_id),
            "iat": now,
            "nbf": now - 1,
            "exp": now + 3600,
            "tid": tenant_id,
            "oid": user.id,
            "sub": user.id,
            "preferred_username": user.upn,
            "name": user.display_name,
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        return self._sign(claims)

    @staticmethod
    def client_info(tenant_id: str, user: User) -> str:
        """What MSAL needs to key its account cache: base64url JSON {uid, utid}."""
        return b64url(json.dumps({"uid": user.id, "utid": tenant_id}).encode())

    # --- refresh tokens -------------------------------------------------------------------
    @staticmethod
    def _hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def issue_refresh(
        self, *, tenant_id: str, client_id: str, user: User, scopes: list[str]
    ) -> str:
        token = "sbx-rt." + secrets.token_urlsafe(48)
        now = self.clock.now(tenant_id, user.id)
        self.db.execute(
            "INSERT INTO refresh_tokens VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self._hash(token), tenant_id, client_id.lower(), user.id, " ".join(scopes), now, now),
        )
        return token

    def find_refresh(self, token: str) -> dict[str, Any] | None:
        """The stored refresh token (tenant_id, client_id, user_id, scopes, issued_at, ...)."""
        row = self.db.one("SELECT * FROM refresh_tokens WHERE token_hash = ?", (self._hash(token),))
        return dict(row) if row else None

    def touch_refresh(self, token: str, tenant_id: str, user_id: str) -> None:
        """Record a use of the refresh token (the user's sandbox time)."""
        self.db.execute(
            "UPDATE refresh_tokens SET last_used = ? WHERE token_hash = ?",
            (self.clock.now(tenant_id, user_id), self._hash(token)),
        )

    def idle_seconds(self, record: dict[str, Any]) -> float:
        """How long the stored refresh token has not been used, in its user's sandbox time."""
        return self.clock.now(record["tenant_id"], record["user_id"]) - record["last_used"]

    def revoke(self, tenant_id: str, user_id: str, error: str) -> None:
        """Refresh tokens of the user issued until now fail with `error`."""
        self.db.execute(
            "INSERT OR REPLACE INTO revocations VALUES (?, ?, ?, ?)",
            (tenant_id, user_id, error, self.clock.now(tenant_id, user_id)),
        )

    def revocation(self, tenant_id: str, user_id: str, issued_at: float) -> str | None:
        """The revoke error that applies to a refresh token issued at `issued_at`, if any."""
        row = self.db.one(
            "SELECT error, revoked_at FROM revocations WHERE tenant_id = ? AND user_id = ?",
            (tenant_id, user_id),
        )
        if row and issued_at <= row["revoked_at"]:
            return row["error"]
        return None

    # --- verifying ------------------------------------------------------------------------
    def verify(
        self,
        authorization_header: str | None,
        resource: str,
        *,
        request: Any = None,
        tenant: str | None = None,
    ) -> Principal:
        """The principal of a bearer token for `resource`; raises TokenError.

        With `request`, its log gets tenant/app/user; with `tenant`, the token must be of it.
        """
        scheme, _, token = (authorization_header or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise TokenError("missing", "The request has no bearer access token.")
        try:
            header = jwt.get_unverified_header(token.strip())
            if header.get("kid") != self.kid:
                raise TokenError("invalid", "The token was not signed by this sandbox.")
            claims = jwt.decode(
                token.strip(),
                self._key.public_key(),
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False, "require": ["exp", "tid"]},
            )
        except jwt.PyJWTError as exc:
            raise TokenError(
                "invalid", "The access token is malformed or its signature is invalid."
            ) from exc
        tenant_obj = self.directory.tenant(claims.get("tid"))
        app = self.directory.app(claims.get("appid"))
        if request is not None:
            request.log["tenant"] = tenant_obj.domain if tenant_obj else claims.get("tid")
            request.log["app"] = claims.get("appid")
            request.log["user"] = claims.get("upn")
        now = time.time()
        issued = claims.get("sandbox_iat", claims.get("iat", 0))
        if claims["exp"] <= now or issued < self.expired_before:
            raise TokenError("expired", "The access token has expired.")
        if (
            claims.get("idtyp") == "user"
            and tenant_obj is not None
            and issued < self.clock.advanced_at(tenant_obj.id, str(claims.get("oid", "")))
        ):
            # The user's clock moved past this one-hour token since it was issued.
            raise TokenError("expired", "The access token has expired.")
        if claims.get("aud") not in AUDIENCES.get(resource, {resource}):
            raise TokenError("wrong_audience", f"The access token is not for {resource}.")
        issuer_ok = tenant_obj is not None and claims.get("iss") == self.access_issuer(
            tenant_obj.id
        )
        if tenant_obj is None or not issuer_ok:
            raise TokenError("wrong_tenant", "The token's tenant is unknown to this sandbox.")
        if app is None or app.tenant_id != tenant_obj.id:
            raise TokenError("wrong_tenant", "The token's app is not registered in its tenant.")
        if tenant is not None:
            wanted = self.directory.tenant(tenant)
            if wanted is None or wanted.id != tenant_obj.id:
                raise TokenError("wrong_tenant", "The token belongs to another tenant.")
        delegated = claims.get("idtyp") == "user"
        return Principal(
            tenant_id=tenant_obj.id,
            app_id=app.client_id,
            kind="user" if delegated else "app",
            audience=resource,
            user=claims.get("upn") if delegated else None,
            oid=claims.get("oid"),
            scopes=frozenset((claims.get("scp") or "").split()) if delegated else frozenset(),
            roles=frozenset(claims.get("roles") or []) if not delegated else frozenset(),
        )
