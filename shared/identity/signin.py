"""Per-user sign-in helpers (pure): sealed short-lived state, PKCE, nonce, returnUrl allowlist.

The state travels through the browser and Entra ID and comes back on the callback. It is a
Fernet token (AES-128-CBC + HMAC-SHA256 with a timestamp, from `cryptography`): signed so nobody
can change who is being signed in, encrypted so the PKCE verifier and nonce it carries stay
secret, and short-lived (`STATE_TTL_SECONDS`). Its key is one Key Vault secret shared by every
instance (login and callback may run on different instances). A browser-binding value is also
set as a cookie at login and must come back with the callback (login CSRF).
Raises `SignInError` with a message safe to show to the person signing in.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from dataclasses import asdict, dataclass
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from shared.identity.secret_names import SIGNIN_STATE_KEY
from shared.urlsafety import host_allowed

STATE_TTL_SECONDS = 600
STATE_KEY_SECRET = SIGNIN_STATE_KEY
BINDING_COOKIE = "ep_signin"


class SignInError(Exception):
    """The sign-in cannot go on; `message` is safe to show (no token, no state content).

    `reason` names the case and `params` its variable parts, so the result page can say it in
    the browser's language (auth_routes.pages); `message` is the English text, also logged.
    """

    def __init__(
        self, message: str, status: int = 400, *, reason: str = "failed", **params: str
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason
        self.params = params


@dataclass(frozen=True)
class SignInState:
    """What the login step hands to the callback step, sealed in the `state` parameter."""

    connection: str
    user: str
    verifier: str
    nonce: str
    binding: str
    return_url: str | None = None


def new_state_key() -> str:
    """A fresh Fernet key (urlsafe base64 of 32 random bytes)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) as RFC 7636 defines them."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return verifier, challenge


def new_state(connection: str, user: str, return_url: str | None) -> SignInState:
    """A state with a fresh PKCE verifier, nonce and browser binding."""
    verifier, _ = pkce_pair()
    return SignInState(
        connection=connection,
        user=user,
        verifier=verifier,
        nonce=secrets.token_urlsafe(24),
        binding=secrets.token_urlsafe(24),
        return_url=return_url,
    )


def challenge_for(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def seal(state: SignInState, key: str, now: float | None = None) -> str:
    """The state as a Fernet token (URL-safe)."""
    from cryptography.fernet import Fernet

    payload = json.dumps(asdict(state), separators=(",", ":")).encode()
    if now is None:
        return Fernet(key.encode()).encrypt(payload).decode()
    return Fernet(key.encode()).encrypt_at_time(payload, int(now)).decode()


def unseal(token: str, key: str, now: float | None = None) -> SignInState:
    """The state inside `token`; raises SignInError when forged, altered or older than the TTL."""
    from cryptography.fernet import Fernet, InvalidToken

    try:
        f = Fernet(key.encode())
        if now is None:
            payload = f.decrypt(token.encode(), ttl=STATE_TTL_SECONDS)
        else:
            payload = f.decrypt_at_time(token.encode(), STATE_TTL_SECONDS, int(now))
        return SignInState(**json.loads(payload))
    except (InvalidToken, ValueError, TypeError) as exc:
        raise SignInError(
            "This sign-in link has expired or is not valid. Start the sign-in again.",
            reason="state_invalid",
        ) from exc


_HOST_RE = re.compile(r"^[0-9a-z.-]+$")


def check_return_url(url: str | None, allowed_hosts: list[str]) -> str | None:
    """The URL, rebuilt from its parsed parts, when it is http(s) on an allowed host; None for
    none; SignInError otherwise.

    An open redirect after sign-in would let anyone dress a phishing link in our domain, so only
    the connection's `returnUrlHosts` are allowed (https, or http on loopback for local runs).
    Browsers read `\\` as `/` and drop tabs and newlines, so a URL with those, other whitespace
    or control characters, user info (`@`) or percent-escapes in the host is refused rather than
    interpreted: `https://evil.test\\.allowed.test/` must not pass a `*.allowed.test` entry.
    What we redirect to is rebuilt from the parts we checked, never the raw text.
    """
    if not url:
        return None
    if any(c == "\\" or c.isspace() or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in url):
        raise SignInError(
            "returnUrl contains characters that are not allowed.", reason="return_url_characters"
        )
    parts = urlsplit(url)
    host = (parts.hostname or "").casefold()
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not loopback):
        raise SignInError("returnUrl must be an https URL.", reason="return_url_scheme")
    try:
        port = parts.port
    except ValueError:
        raise SignInError("returnUrl has an invalid port.", reason="return_url_port") from None
    if "@" in parts.netloc or not (_HOST_RE.match(host) or host == "::1"):
        raise SignInError(
            "returnUrl points at a host this connection does not allow.", reason="return_url_host"
        )
    if not host_allowed(host, allowed_hosts):
        raise SignInError(
            "returnUrl points at a host this connection does not allow.", reason="return_url_host"
        )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    path = parts.path if parts.path.startswith("/") else f"/{parts.path}"
    return urlunsplit((parts.scheme, netloc, path, parts.query, parts.fragment))


def login_path(connection: str, user: str) -> str:
    """`/api/auth/<connection>/login?user=<upn>` (relative to the app's base URL)."""
    return f"/api/auth/{quote(connection, safe='')}/login?{urlencode({'user': user})}"


def callback_path(connection: str) -> str:
    return f"/api/auth/{quote(connection, safe='')}/callback"


def absolute(base_url: str, path: str) -> str:
    """`path` below `base_url` (no double slash)."""
    return f"{base_url.rstrip('/')}{path}"


def binding_matches(cookie_header: str | None, binding: str) -> bool:
    """True when the request's Cookie header carries our binding cookie with this value."""
    import hmac
    from http.cookies import CookieError, SimpleCookie

    if not cookie_header:
        return False
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(cookie_header)
    except CookieError:
        return False
    morsel = jar.get(BINDING_COOKIE)
    return morsel is not None and hmac.compare_digest(morsel.value, binding)


def base_url(public_base_url: str, request_url: str) -> str:
    """PUBLIC_BASE_URL when set, else scheme://host[:port] of the request (the devhost and the
    Functions host both give the URL the caller used)."""
    if public_base_url:
        return public_base_url.rstrip("/")
    parts = urlsplit(request_url)
    return f"{parts.scheme}://{parts.netloc}"
