"""Attachment URL policy: https, allowlisted host, no internal addresses after resolution."""

import pytest

from shared.errors import ValidationFailed
from shared.urlsafety import check_attachment_url, host_allowed, ip_forbidden


@pytest.mark.parametrize(
    "ip",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.1.1",
        "172.16.0.1",
        "169.254.169.254",
        "168.63.129.16",
        "::1",
        "fe80::1",
        "fd00::1",
        "0.0.0.0",
        "::ffff:127.0.0.1",
    ],
)
def test_internal_addresses_are_forbidden(ip):
    assert ip_forbidden(ip)


def test_public_address_is_allowed():
    assert ip_forbidden("52.97.1.1") is None


def test_host_allowlist_exact_and_wildcard():
    assert host_allowed("Files.Example.com", ["files.example.com"])
    assert host_allowed("a.files.example.com", ["*.files.example.com"])
    assert not host_allowed("evilfiles.example.com", ["*.files.example.com"])
    assert not host_allowed("other.com", [])


def check(url, resolve=lambda h, p: ["52.97.1.1"], allow_private=False):
    check_attachment_url(
        url,
        field="attachments[0].url",
        allowed_hosts=["files.example.com"],
        allow_private=allow_private,
        resolve=resolve,
    )


def test_public_allowlisted_https_url_passes():
    check("https://files.example.com/a.pdf")


@pytest.mark.parametrize(
    "url",
    [
        "http://files.example.com/a.pdf",
        "https://other.example.com/a.pdf",
        "https://user:pw@files.example.com/a.pdf",
    ],
)
def test_scheme_host_and_credentials_are_checked(url):
    with pytest.raises(ValidationFailed) as exc:
        check(url)
    assert exc.value.details[0].field == "attachments[0].url"


def test_allowlisted_name_resolving_to_metadata_address_is_refused():
    with pytest.raises(ValidationFailed) as exc:
        check("https://files.example.com/x", resolve=lambda h, p: ["169.254.169.254"])
    assert (
        "metadata" in exc.value.details[0].message or "link-local" in exc.value.details[0].message
    )


def test_private_hosts_pass_only_when_the_connection_allows_them():
    check("https://files.example.com/x", resolve=lambda h, p: ["127.0.0.1"], allow_private=True)
    with pytest.raises(ValidationFailed):
        check("https://files.example.com/x", resolve=lambda h, p: ["127.0.0.1"])
