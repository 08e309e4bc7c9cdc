"""Release-review fixes in URL handling (pure): returnUrl open redirect, one host matcher,
non-global and wrapped addresses, port 443 only, redacted URLs, the inline attachment size."""

from __future__ import annotations

import base64
import json

import pytest

from shared import urlsafety
from shared.errors import ValidationFailed
from shared.identity import signin
from shared.identity.signin import SignInError, check_return_url
from shared.operations.attachments import UPLOAD_THRESHOLD
from shared.urlsafety import check_attachment_url, ip_forbidden, redact_url

ALLOWED = ["*.allowed.test", "app.example.test", "127.0.0.1"]


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.test\\.allowed.test/x",  # browsers read \ as /: host evil.test
        "https://evil.test\\@a.allowed.test/",
        "https://a.allowed.test\t/x",
        "https://a.allowed.test/x\ny",
        "https://a.allowed.test/x y",
        "https://a.allowed.test/\x00",
        "https://user@a.allowed.test/",
        "https://evil.test%5c.allowed.test/",
        "https://evil.test%2f.allowed.test/",
        "https://a.allowed.test:99999/",
        "http://a.allowed.test/",
        "javascript://a.allowed.test/%0aalert(1)",
    ],
)
def test_a_return_url_that_a_browser_could_read_as_another_host_is_refused(url):
    with pytest.raises(SignInError):
        check_return_url(url, ALLOWED)


def test_an_allowed_return_url_is_rebuilt_from_its_checked_parts():
    assert check_return_url("https://A.Allowed.test/p?q=1#f", ALLOWED) == (
        "https://a.allowed.test/p?q=1#f"
    )
    assert check_return_url("https://app.example.test", ALLOWED) == "https://app.example.test/"
    assert check_return_url("http://127.0.0.1:8080/done", ALLOWED) == "http://127.0.0.1:8080/done"


def test_sign_in_and_url_safety_share_one_host_matcher():
    assert signin.host_allowed is urlsafety.host_allowed
    assert urlsafety.host_allowed("a.allowed.test", [" *.Allowed.test. "])
    assert not urlsafety.host_allowed("evilallowed.test", ["*.allowed.test"])
    assert not urlsafety.host_allowed("", ["*.allowed.test"])


@pytest.mark.parametrize(
    "ip",
    [
        "100.64.0.1",  # carrier-grade NAT (shared address space), not private by Python
        "100.127.255.254",
        "192.0.2.10",  # documentation
        "198.18.0.1",  # benchmarking
        "2002:7f00:1::1",  # 6to4 wrapping 127.0.0.1
        "2002:a00:1::1",  # 6to4 wrapping 10.0.0.1
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1
        "::ffff:169.254.169.254",  # IPv4-mapped metadata
        "fe80::1%eth0",
        "64:ff9b:1::a00:1",  # local-use NAT64
    ],
)
def test_non_global_and_wrapped_internal_addresses_are_forbidden(ip):
    assert ip_forbidden(ip)


@pytest.mark.parametrize("ip", ["52.97.1.1", "2002:3461:101::1", "2603:1026::1"])
def test_public_addresses_stay_allowed(ip):
    assert ip_forbidden(ip) is None


def test_only_port_443_unless_the_connection_allows_private_hosts():
    def public(host, port):
        return ["52.97.1.1"]

    with pytest.raises(ValidationFailed) as caught:
        check_attachment_url(
            "https://files.example.test:8443/a.pdf",
            field="attachments[0].url",
            allowed_hosts=["files.example.test"],
            allow_private=False,
            resolve=public,
        )
    assert "443" in caught.value.details[0].message

    check_attachment_url(
        "https://files.example.test:443/a.pdf",
        field="attachments[0].url",
        allowed_hosts=["files.example.test"],
        allow_private=False,
        resolve=public,
    )
    check_attachment_url(
        "https://127.0.0.1:8443/a.pdf",
        field="attachments[0].url",
        allowed_hosts=["127.0.0.1"],
        allow_private=True,
    )


def test_a_carrier_grade_nat_host_is_refused_for_attachments():
    with pytest.raises(ValidationFailed) as caught:
        check_attachment_url(
            "https://files.example.test/a.pdf",
            field="attachments[0].url",
            allowed_hosts=["files.example.test"],
            allow_private=False,
            resolve=lambda host, port: ["100.64.1.2"],
        )
    assert "non-public" in caught.value.details[0].message


def test_redacted_urls_keep_no_query_fragment_or_user_info():
    url = "https://u:p@files.example.test/a.pdf?sv=2024&sig=SECRET#frag"

    assert redact_url(url) == "https://files.example.test/a.pdf"


def test_an_inline_attachment_at_the_threshold_stays_under_graphs_4_mb_request_cap():
    # A fileAttachment POST of the largest inline size, with a long name and content id.
    item = {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": "n" * 255 + ".pdf",
        "contentType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "contentBytes": base64.b64encode(b"\0" * UPLOAD_THRESHOLD).decode(),
        "isInline": True,
        "contentId": "c" * 255,
    }

    assert len(json.dumps(item).encode()) < 4_000_000
    assert UPLOAD_THRESHOLD < 3_000_000
