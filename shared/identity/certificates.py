"""A connection's client credential as MSAL wants it: the secret, or a PEM certificate's parts."""

from __future__ import annotations

import hashlib
from typing import Any

from shared.errors import AuthFailed
from shared.identity.connections import Connection


def client_credential(connection: Connection, secret: str) -> Any:
    """What MSAL's `client_credential` wants: the secret, or the certificate as a dict.

    A certificate secret is PEM text holding the private key and the certificate (what Key Vault
    stores for a PEM certificate); MSAL signs a client assertion with the key.
    """
    if connection.credential.type != "certificate":
        return secret
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    try:
        cert = x509.load_pem_x509_certificate(secret.encode())
        key = serialization.load_pem_private_key(secret.encode(), password=None)
    except ValueError as exc:
        raise AuthFailed(
            f"The certificate of connection {connection.name!r} must be PEM with the private "
            "key and the certificate (unencrypted)."
        ) from exc
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "private_key": key_pem,
        "thumbprint": cert.fingerprint(hashes.SHA1()).hex(),  # noqa: S303 - x5t is SHA-1
        "public_certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
    }


def fingerprint(secret: str) -> str:
    # A stable digest (hash() is salted per process) so a rotated credential gets a fresh app.
    return hashlib.sha256(secret.encode()).hexdigest()[:16]
