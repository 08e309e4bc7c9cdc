"""Our RFC 9421 profile: what a signer written independently of our code (requests-http-signature)
produces verifies, and every change to what it covers is refused."""

from __future__ import annotations

import time

import pytest
import requests
from http_message_signatures import MappingKeyResolver
from requests_http_signature import HTTPSignatureAuth, algorithms

from shared.signatures import (
    MAX_AGE_SECONDS,
    MAX_FUTURE_SECONDS,
    SignatureInvalid,
    covered_components,
    sign,
    verify,
)

KEY = "k3y-0123456789abcdefghijklmnopqrstuvwxyzAB"
NAME = "contoso.test"
URL = "https://app.example/api/mail/send?code=function-key"
BODY = b'{"connection":"contoso.test","subject":"hi"}'


def caller_request(
    url: str = URL,
    body: bytes = BODY,
    *,
    idempotency_key: str | None = None,
    covered=("@method", "@path", "content-digest"),
    nonce: bool = True,
    key: str = KEY,
    key_id: str = NAME,
) -> requests.PreparedRequest:
    """A request signed the way the docs tell a caller to, with requests-http-signature."""
    headers = {"Content-Type": "application/json"}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
        covered = (*covered, "idempotency-key")
    auth = HTTPSignatureAuth(
        signature_algorithm=algorithms.HMAC_SHA256,
        key=key.encode(),
        key_id=key_id,
        covered_component_ids=covered,
        use_nonce=nonce,
    )
    return auth(requests.Request("POST", url, data=body, headers=headers).prepare())


def check(req: requests.PreparedRequest, *, url: str | None = None, body: bytes | None = None):
    return verify(
        req.method,
        url or req.url,
        dict(req.headers),
        req.body if body is None else body,
        lambda key_id: KEY if key_id == NAME else None,
    )


def test_a_request_signed_by_the_independent_library_verifies_and_names_its_key_and_nonce():
    req = caller_request(idempotency_key="case-42")
    verified = check(req)
    assert verified.key_id == NAME
    assert verified.nonce
    assert abs(verified.created - time.time()) < 30


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda r: check(r, url=URL.replace("/send", "/draft")), "did not match"),
        (lambda r: check(r, body=BODY + b" "), "Content-Digest"),
        (
            lambda r: verify(
                r.method, r.url, {**r.headers, "Idempotency-Key": "new"}, r.body, lambda k: KEY
            ),
            "idempotency-key",
        ),
        (lambda r: verify(r.method, r.url, dict(r.headers), r.body, lambda k: None), "keyid"),
        (lambda r: verify(r.method, r.url, {}, r.body, lambda k: KEY), "no Signature-Input"),
    ],
    ids=["other route", "changed body", "added idempotency key", "other keyid", "unsigned"],
)
def test_changing_what_the_signature_covers_is_refused(change, why):
    with pytest.raises(SignatureInvalid, match=why):
        change(caller_request())


def test_a_changed_idempotency_key_is_refused_when_it_was_signed():
    req = caller_request(idempotency_key="first")
    headers = {**req.headers, "Idempotency-Key": "second"}
    with pytest.raises(SignatureInvalid, match="did not match"):
        verify(req.method, req.url, headers, req.body, lambda k: KEY)


def test_a_signature_that_does_not_cover_the_path_is_refused():
    req = caller_request(covered=("@method", "content-digest"))
    with pytest.raises(SignatureInvalid, match="@path"):
        check(req)


def test_a_signature_that_does_not_cover_the_body_digest_is_refused():
    from http_message_signatures import HTTPMessageSigner

    req = requests.Request("POST", URL, data=BODY).prepare()
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.HMAC_SHA256,
        key_resolver=MappingKeyResolver(private_keys={NAME: KEY.encode()}, public_keys={}),
    )
    signer.sign(req, key_id=NAME, nonce="n-1", covered_component_ids=("@method", "@path"))
    with pytest.raises(SignatureInvalid, match="content-digest"):
        check(req)


def test_a_signature_without_a_nonce_is_refused():
    with pytest.raises(SignatureInvalid, match="nonce"):
        check(caller_request(nonce=False))


def test_created_may_be_five_minutes_old_and_sixty_seconds_ahead_but_no_more():
    now = time.time()
    headers = sign(KEY, NAME, "POST", URL, {}, BODY, created=now)
    key = lambda k: KEY  # noqa: E731
    verify("POST", URL, headers, BODY, key, now=now + MAX_AGE_SECONDS - 5)
    with pytest.raises(SignatureInvalid, match="past"):
        verify("POST", URL, headers, BODY, key, now=now + MAX_AGE_SECONDS + 5)
    with pytest.raises(SignatureInvalid, match="future"):
        verify("POST", URL, headers, BODY, key, now=now - MAX_FUTURE_SECONDS - 5)
    # 290 s ahead by the real clock (the original finding): refused too.
    ahead = sign(KEY, NAME, "POST", URL, {}, BODY, created=time.time() + 290)
    with pytest.raises(SignatureInvalid, match="future"):
        verify("POST", URL, ahead, BODY, key)


def test_our_signature_verifies_with_the_independent_library_as_a_receiver_would():
    headers = sign(KEY, NAME, "POST", "https://hooks.example/cb?sas=1", {}, BODY)
    req = requests.Request(
        "POST", "https://hooks.example/cb?sas=1", data=BODY, headers=headers
    ).prepare()
    result = HTTPSignatureAuth.verify(
        req,
        signature_algorithm=algorithms.HMAC_SHA256,
        key_resolver=MappingKeyResolver(public_keys={NAME: KEY.encode()}, private_keys={}),
        require_components=("@method", "@path", "content-digest"),
    )
    assert result.parameters["keyid"] == NAME and result.nonce


def test_the_idempotency_key_is_covered_whenever_the_request_has_one():
    assert "idempotency-key" in covered_components({"Idempotency-Key": "x"})
    assert "idempotency-key" not in covered_components({})
