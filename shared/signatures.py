"""Our profile of HTTP Message Signatures (RFC 9421) with Content-Digest (RFC 9530).

One profile for both directions: a caller signs its requests with its connection's key, and we
sign callbacks with the same key. Algorithm `hmac-sha256` (the key is the text of the
connection's signing key, as UTF-8 bytes); `keyid` is the connection name. Covered components:
`@method`, `@path`, `content-digest`, and `idempotency-key` whenever the message has that
header; parameters `created` (at most 5 minutes old, at most 60 s ahead), `nonce` (required,
single use: the caller of `verify` remembers it, see shared.api.replay) and `keyid`.
The maintained `http-message-signatures` library does the canonicalisation and cryptography;
it is imported on first use (cold start). Pure: no I/O. Raises `SignatureInvalid`.
"""

from __future__ import annotations

import datetime
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

ALGORITHM = "hmac-sha256"
MAX_AGE_SECONDS = 300
MAX_FUTURE_SECONDS = 60
# A nonce is remembered until its signature can no longer pass the `created` window.
REPLAY_WINDOW_SECONDS = MAX_AGE_SECONDS + MAX_FUTURE_SECONDS
IDEMPOTENCY_HEADER = "idempotency-key"
REQUIRED_COMPONENTS = ("@method", "@path", "content-digest")
MAX_NONCE_LENGTH = 128
SIGNATURE_HEADERS = ("Signature-Input", "Signature", "Content-Digest")


class SignatureInvalid(Exception):
    """The signature is missing, malformed, stale or wrong (the message says which)."""


@dataclass(frozen=True)
class Verified:
    """What a valid signature says: who signed (keyid), its nonce and creation time."""

    key_id: str
    nonce: str
    created: int


@dataclass
class _Message:
    """The request shape the library reads: method, absolute URL, headers."""

    method: str
    url: str
    headers: Any


def _key_bytes(key: str | bytes) -> bytes:
    return key if isinstance(key, bytes) else key.encode("utf-8")


def _has_header(headers: Mapping[str, str], name: str) -> bool:
    return any(k.lower() == name for k in headers)


def covered_components(headers: Mapping[str, str]) -> tuple[str, ...]:
    """The components a message with `headers` must cover."""
    if _has_header(headers, IDEMPOTENCY_HEADER):
        return (*REQUIRED_COMPONENTS, IDEMPOTENCY_HEADER)
    return REQUIRED_COMPONENTS


def sign(
    key: str | bytes,
    key_id: str,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    nonce: str | None = None,
    created: float | None = None,
) -> dict[str, str]:
    """The Content-Digest, Signature-Input and Signature headers that sign this message."""
    from http_message_signatures import algorithms
    from http_message_signatures.resolvers import MappingKeyResolver
    from http_message_signatures.signatures import HTTPMessageSigner
    from http_message_signatures.structures import CaseInsensitiveDict

    message = _Message(method.upper(), url, CaseInsensitiveDict(dict(headers)))
    for name in SIGNATURE_HEADERS:
        message.headers.pop(name, None)
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.HMAC_SHA256,  # pyright: ignore[reportPrivateImportUsage]
        key_resolver=MappingKeyResolver(private_keys={key_id: _key_bytes(key)}, public_keys={}),
    )
    when = datetime.datetime.fromtimestamp(
        time.time() if created is None else created, tz=datetime.UTC
    )
    signer.sign(
        message,
        key_id=key_id,
        created=when,
        nonce=nonce or secrets.token_urlsafe(16),
        label="sig1",
        covered_component_ids=covered_components(message.headers),
        body=body,
    )
    return {name: message.headers[name] for name in SIGNATURE_HEADERS}


def verify(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    key_for: Callable[[str], str | bytes | None],
    *,
    now: float | None = None,
) -> Verified:
    """Check the message's signature; `key_for(keyid)` gives the key (None: not this keyid).

    Raises SignatureInvalid when the signature is missing or malformed, does not cover what
    our profile requires, is outside the `created` window, has no nonce, or does not match.
    """
    from http_message_signatures import algorithms
    from http_message_signatures.exceptions import HTTPMessageSignaturesException
    from http_message_signatures.resolvers import HTTPSignatureKeyResolver
    from http_message_signatures.signatures import HTTPMessageVerifier

    class _Keys(HTTPSignatureKeyResolver):
        def resolve_public_key(self, key_id: str) -> bytes | None:
            key = key_for(key_id)
            return None if key is None else _key_bytes(key)

    class _Verifier(HTTPMessageVerifier):
        # The library's own check of `created` in the future uses this tolerance.
        max_clock_skew = datetime.timedelta(seconds=MAX_FUTURE_SECONDS)

    if not _has_header(headers, "signature-input") or not _has_header(headers, "signature"):
        raise SignatureInvalid("The request has no Signature-Input and Signature headers.")
    message = _Message(method.upper(), url, dict(headers))
    # The library re-exports its algorithms without __all__ (pyright: "private import").
    hmac_sha256 = algorithms.HMAC_SHA256  # pyright: ignore[reportPrivateImportUsage]
    verifier = _Verifier(signature_algorithm=hmac_sha256, key_resolver=_Keys())
    try:
        results = verifier.verify(
            message,
            max_age=None,  # our own window below, with `now` for tests
            require_components=covered_components(headers),
            body=body,
        )
    except HTTPMessageSignaturesException as exc:
        raise SignatureInvalid(_reason(exc)) from None
    except (ValueError, TypeError, KeyError) as exc:
        raise SignatureInvalid(
            f"The signature headers are malformed ({type(exc).__name__})."
        ) from None
    if len(results) != 1:
        raise SignatureInvalid("Send exactly one signature.")
    params = results[0].parameters
    created, nonce, key_id = params.get("created"), params.get("nonce"), params.get("keyid")
    if not isinstance(created, int):
        raise SignatureInvalid("The signature has no `created` parameter.")
    current = time.time() if now is None else now
    if created > current + MAX_FUTURE_SECONDS:
        raise SignatureInvalid(f"`created` is more than {MAX_FUTURE_SECONDS} s in the future.")
    if created < current - MAX_AGE_SECONDS:
        raise SignatureInvalid(f"`created` is more than {MAX_AGE_SECONDS} s in the past.")
    if not isinstance(nonce, str) or not nonce or len(nonce) > MAX_NONCE_LENGTH:
        raise SignatureInvalid(f"The signature needs a `nonce` of 1-{MAX_NONCE_LENGTH} chars.")
    return Verified(str(key_id), nonce, created)


def _reason(exc: Exception) -> str:
    """A short reason from the library's exception (never a key; values only as it names them)."""
    text = str(exc) or type(exc).__name__
    if "resolve verification key" in text:
        return "The keyid is not this connection's name."
    return text[:200]
