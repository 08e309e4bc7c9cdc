"""The caller's side of request signing, written with requests-http-signature (independent of
our code): what DocuFlow does per docs/security.md."""

from __future__ import annotations

from requests_http_signature import HTTPSignatureAuth, algorithms

COVERED = ("@method", "@path", "content-digest")


def caller_auth(key: str, connection: str, *, idempotency_key: bool = False) -> HTTPSignatureAuth:
    """A requests `auth=` that signs a request for `connection` with its signing key."""
    covered = (*COVERED, "idempotency-key") if idempotency_key else COVERED
    return HTTPSignatureAuth(
        signature_algorithm=algorithms.HMAC_SHA256,
        key=key.encode("utf-8"),
        key_id=connection,
        covered_component_ids=covered,
        use_nonce=True,
    )
