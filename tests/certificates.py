"""Self-signed test certificates for certificate credentials (Entra ID client assertions)."""

from __future__ import annotations

import trustme


def self_signed_certificate() -> tuple[str, str]:
    """(private key PEM, certificate PEM) of a fresh self-signed RSA certificate.

    trustme's CA certificate is exactly that: self-signed, RSA when asked (MSAL signs client
    assertions with RS256 or PS256, which need an RSA key).
    """
    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    return ca.private_key_pem.bytes().decode(), ca.cert_pem.bytes().decode()
