"""The message size as Exchange counts it (attachments base64-encoded) and the early refusal."""

from __future__ import annotations

import pytest

from shared.errors import PayloadTooLarge, to_http
from shared.models import Body, Recipient, SendRequest
from shared.operations import message_size
from shared.operations.compose import decoded_sizes

MB = 1024 * 1024
LIMIT = 35 * MB  # Exchange Online's default maximum message size


def request(**fields) -> SendRequest:
    return SendRequest(connection="c", to=["a@contoso.test"], subject="s", **fields)


def test_base64_counts_four_bytes_per_three_plus_line_breaks():
    assert message_size.base64_bytes(3) == 4 + 2
    assert message_size.base64_bytes(57) == 76 + 2  # one full line
    assert message_size.base64_bytes(27 * MB) > 36 * MB


def test_a_27_mb_attachment_is_over_35_mb_and_25_mb_is_not():
    with pytest.raises(PayloadTooLarge) as info:
        message_size.check(request(), [27 * MB], LIMIT)
    status, _, body = to_http(info.value)
    assert status == 413 and body["error"]["code"] == "payload_too_large"
    assert body["error"]["details"][0]["field"] == "attachments"
    message_size.check(request(), [25 * MB], LIMIT)


def test_body_subject_and_recipients_count_too():
    small = message_size.estimate(request(), [])
    big = message_size.estimate(
        request(
            body=Body(content="é" * 1000),
            cc=[Recipient(address="b@contoso.test", name="Bee")],
        ),
        [],
    )
    assert big - small >= 2000 + len("b@contoso.test")


def test_decoded_sizes_are_exact_for_base64_attachments():
    import json

    from shared.api.validation import decode

    body = {
        "connection": "c",
        "from": "a@contoso.test",
        "to": ["a@contoso.test"],
        "attachments": [
            {"name": "a", "contentBytes": "YQ=="},  # 1 byte
            {"name": "b", "contentBytes": "YWI="},  # 2 bytes
            {"name": "c", "contentBytes": "YWJj"},  # 3 bytes
            {"name": "d", "url": "https://files.example.com/d.pdf"},
        ],
    }
    req = decode(SendRequest, json.dumps(body).encode())
    assert decoded_sizes(req) == {0: 1, 1: 2, 2: 3}
