"""Client authentication at the token endpoint: secret (post or basic), certificate assertion."""

from __future__ import annotations

import base64
import hmac
from urllib.parse import unquote

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from sandbox.directory import App
from sandbox.entra.errors import EntraError
from sandbox.tokens import b64url
from sandbox.web import Request

# The appidacr / azpacr values a token carries for each way a client authenticated.
PUBLIC, SECRET, CERTIFICATE = "0", "1", "2"


def _basic(request: Request) -> tuple[str, str] | None:
    """(client id, secret) of an HTTP Basic header (both form-URL-decoded), or None."""
    auth = request.headers.get("authorization") or ""
    if not auth.lower().startswith("basic "):
        return None
    try:
        user, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return "", ""
    return unquote(user), unquote(secret)


def client_id_of(request: Request, form: dict[str, str]) -> str:
    """The client id from the form or the Basic header; raises EntraError 900144 if absent."""
    client_id = form.get("client_id")
    if not client_id:
        basic = _basic(request)
        client_id = basic[0] if basic else None
    if not client_id:
        raise EntraError(
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        )
    return client_id


def authenticate(request: Request, form: dict[str, str], app: App) -> str:
    """Check the client's secret or assertion: SECRET, CERTIFICATE, or PUBLIC (none sent).

    Raises EntraError invalid_client (7000215 wrong secret, 700027 bad assertion), HTTP 401.
    """
    secret = form.get("client_secret")
    basic = _basic(request)
    if basic is not None:
        secret = basic[1]
    if secret is not None:
        if any(hmac.compare_digest(secret.encode(), s.encode()) for s in app.secrets):
            return SECRET
        raise EntraError(
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is "
            f"the client secret value, not the client secret ID, for a secret added to app "
            f"'{app.client_id}'.",
            status=401,
        )
    assertion = form.get("client_assertion")
    if assertion:
        check_assertion(request, assertion, app)
        return CERTIFICATE
    return PUBLIC


def check_assertion(request: Request, assertion: str, app: App) -> None:
    """A client assertion JWT signed (RS256/PS256) with one of the app's certificates, with
    iss = sub = the client id and this token endpoint as audience; raises EntraError 700027."""

    def refuse(reason: str) -> EntraError:
        return EntraError(
            "invalid_client",
            700027,
            f"Client assertion failed signature validation. [Reason - {reason}]",
            status=401,
        )

    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError as exc:
        raise refuse("The assertion is not a JWT.") from exc
    alg = header.get("alg")
    if alg not in ("RS256", "PS256"):
        raise refuse(f"Unsupported algorithm {alg}.")
    for pem in app.certificates:
        cert = x509.load_pem_x509_certificate(pem.encode())
        x5t = b64url(cert.fingerprint(hashes.SHA1()))  # noqa: S303 - x5t is SHA-1 by spec
        x5t256 = b64url(cert.fingerprint(hashes.SHA256()))
        # MSAL pads its thumbprints with "="; compare without padding.
        sent = {k: str(header[k]).rstrip("=") for k in ("x5t", "x5t#S256") if k in header}
        if sent.get("x5t", x5t) != x5t or sent.get("x5t#S256", x5t256) != x5t256:
            continue
        try:
            claims = jwt.decode(
                assertion,
                cert.public_key(),
                algorithms=[alg],
                options={"verify_aud": False, "require": ["exp", "iss", "sub", "aud"]},
            )
        except jwt.PyJWTError:
            continue
        if claims["iss"].lower() != app.client_id or claims["sub"].lower() != app.client_id:
            raise refuse("The assertion's iss and sub must be the client id.")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if not any(
            a.startswith(request.base_url) and a.endswith("/oauth2/v2.0/token") for a in audiences
        ):
            raise refuse("The assertion's audience is not this token endpoint.")
        return
    raise refuse("The key was not found.")
