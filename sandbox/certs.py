"""The sandbox's local CA (kept in the state dir across restarts) and its TLS certificate."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import trustme

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"


def load_or_create_ca(state_dir: Path) -> trustme.CA:
    """The CA stored in `state_dir`, or a new one written there (key readable by the owner only)."""
    cert_path, key_path = state_dir / CA_FILE, state_dir / CA_KEY_FILE
    if cert_path.exists() and key_path.exists():
        return trustme.CA.from_pem(cert_path.read_bytes(), key_path.read_bytes())
    ca = trustme.CA(organization_name="exchange-processor sandbox")
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(ca.private_key_pem.bytes())
    cert_path.write_bytes(ca.cert_pem.bytes())
    return ca


def server_context(ca: trustme.CA, host: str = "127.0.0.1") -> ssl.SSLContext:
    """A TLS server context with a fresh certificate for loopback names, signed by `ca`."""
    identities = {host, "127.0.0.1", "localhost", "::1"}
    cert = ca.issue_cert(*sorted(identities))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    cert.configure_cert(ctx)
    return ctx
