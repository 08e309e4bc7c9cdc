"""HMAC-SHA256 over "timestamp.body": signing, verifying, and what is refused."""

import hashlib
import hmac

import pytest

from shared.signatures import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureInvalid,
    sign,
    signing_secret_name,
    verify,
)

SECRET = "s3cret"
BODY = b'{"operationId":"1","status":"succeeded"}'
NOW = 1_760_000_000


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body_written_independently():
    headers = sign(SECRET, BODY, now=NOW)
    expected = hmac.new(b"s3cret", b"1760000000." + BODY, hashlib.sha256).hexdigest()
    assert headers == {TIMESTAMP_HEADER: "1760000000", SIGNATURE_HEADER: f"sha256={expected}"}


def test_a_correct_signature_verifies_within_five_minutes_and_header_case_does_not_matter():
    headers = {k.lower(): v for k, v in sign(SECRET, BODY, now=NOW).items()}
    verify(SECRET, headers, BODY, now=NOW + 299)
    verify(SECRET, headers, BODY, now=NOW - 299)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda h, b: (h, b + b" "), "does not match"),
        (lambda h, b: ({**h, SIGNATURE_HEADER: "sha256=" + "0" * 64}, b), "does not match"),
        (lambda h, b: ({**h, SIGNATURE_HEADER: "md5=abc"}, b), "sha256="),
        (lambda h, b: ({TIMESTAMP_HEADER: h[TIMESTAMP_HEADER]}, b), "required"),
        (lambda h, b: ({**h, TIMESTAMP_HEADER: "yesterday"}, b), "Unix seconds"),
    ],
    ids=["body changed", "wrong signature", "other scheme", "no signature", "bad timestamp"],
)
def test_tampered_or_malformed_signatures_are_refused(change, why):
    headers, body = change(sign(SECRET, BODY, now=NOW), BODY)
    with pytest.raises(SignatureInvalid, match=why):
        verify(SECRET, headers, body, now=NOW)


def test_a_stale_or_future_timestamp_is_refused_even_with_a_correct_signature():
    headers = sign(SECRET, BODY, now=NOW)
    for now in (NOW + 301, NOW - 301):
        with pytest.raises(SignatureInvalid, match="5 minutes"):
            verify(SECRET, headers, BODY, now=now)


def test_another_secret_does_not_verify():
    with pytest.raises(SignatureInvalid):
        verify("other", sign(SECRET, BODY, now=NOW), BODY, now=NOW)


def test_the_signing_secret_is_named_after_the_connection_secret():
    assert signing_secret_name("connection-contoso-test") == "connection-contoso-test-signing-key"
