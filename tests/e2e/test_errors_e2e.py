"""Every error case over HTTP through the devhost; none of them may send a mail."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.functional.mailboxes import Mailboxes, until

ADMIN = "administratie@contoso.test"
ANNA = "anna@contoso.test"
ALL = [ADMIN, ANNA, "bram@contoso.test", "carla@contoso.test", "svc-docuflow@contoso.test"]


@pytest.fixture
def host(fresh_devhost):
    """The devhost with the sandbox reset to its seed and the connection stored."""
    return fresh_devhost


def mail(**fields) -> dict:
    body = {
        "connection": "contoso.test",
        "from": ADMIN,
        "to": [ANNA],
        "subject": f"err {uuid.uuid4()}",
    }
    body.update(fields)
    return body


@pytest.fixture
def boxes(sandbox) -> Mailboxes:
    return Mailboxes(sandbox.url, sandbox.ca)


def sent_count(boxes: Mailboxes) -> int:
    return boxes.count_all(ALL, "sentitems") + boxes.count_all(ALL, "inbox")


def fields(resp) -> set:
    return {d["field"] for d in resp.json()["error"].get("details", [])}


def test_no_or_wrong_function_key_is_401(host):
    url = f"{host.url}/api/mail/send"
    assert requests.post(url, json=mail(), timeout=10).status_code == 401
    wrong = requests.post(url, json=mail(), headers={"x-functions-key": "nope"}, timeout=10)
    assert wrong.status_code == 401
    ok = requests.post(url, params={"code": host.key}, data=b"{", timeout=10)
    assert ok.status_code == 400  # the key in ?code= works; the body is what fails


ROUTES = [
    ("POST", "/api/mail/send"),
    ("POST", "/api/mail/move"),
    ("POST", "/api/mail/draft"),
    ("POST", "/api/mail/reply"),
    ("POST", "/api/mail/forward"),
    ("POST", "/api/mail/export"),
    ("GET", f"/api/operations/{uuid.uuid4()}"),
    ("GET", "/api/health"),
    ("GET", "/api/auth/contoso.test/login"),
]


def mark_log(host) -> str:
    """Put a line of our own in the devhost's log and wait for it; returns its marker.

    The devhost logs a request after answering it, so a line of the test before may still
    come: once our own request is logged, the earlier ones are in too."""
    marker = f"/api/operations/{uuid.uuid4()}"
    assert host.request("GET", marker).status_code == 404
    assert until(lambda: marker in host.logs(), 30)
    return marker


def lines_between(host, first: str, last: str) -> list[str]:
    """The devhost's log lines after the one with marker `first`, before the one with `last`."""
    lines = host.logs().splitlines()  # the tail: a few hundred lines
    start = next(i for i, line in enumerate(lines) if first in line)
    end = next(i for i, line in enumerate(lines) if last in line)
    return lines[start + 1 : end]


def test_a_body_over_100_mb_is_413_at_every_http_function_before_it_runs(host):
    # HTTP streams hand the body to the function as it arrives: the host's cap still comes
    # first, from the declared length, before a byte of it is read.
    first = mark_log(host)
    for method, path in ROUTES:
        resp = requests.request(
            method,
            f"{host.url}{path}",
            headers={"x-functions-key": host.key, "Content-Length": str(100 * 1024 * 1024 + 1)},
            data=b"",
            timeout=10,
        )
        assert resp.status_code == 413, (path, resp.status_code)
    last = mark_log(host)
    ran = [line for line in lines_between(host, first, last) if "Functions." in line]
    assert ran == []


def test_client_errors_are_answered_with_field_details_and_send_nothing(host, boxes):
    before = sent_count(boxes)
    cases = [
        (mail(connection="no-such-connection"), 404, "unknown_connection", set()),
        (mail(**{"from": "bram@fabrikam.test"}), 403, "sender_not_allowed", {"from"}),
        (mail(to=[42]), 400, "validation_failed", {"to[0]"}),
        (mail(to=["not an address"]), 400, "validation_failed", {"to[0]"}),
        (mail(to=["anna@contoso.test\r\nBcc: x@y.nl"]), 400, "validation_failed", {"to[0]"}),
        (mail(headers={f"x-h{i}": "v" for i in range(6)}), 400, "validation_failed", {"headers"}),
        (mail(to=[f"u{i}@contoso.test" for i in range(501)]), 400, "validation_failed", {"to"}),
        (
            mail(attachments=[{"name": "a", "contentBytes": "@@@"}]),
            400,
            "validation_failed",
            {"attachments[0].contentBytes"},
        ),
        (
            mail(attachments=[{"name": "a", "url": "http://127.0.0.1/a"}]),
            400,
            "validation_failed",
            {"attachments[0].url"},
        ),
        (
            mail(attachments=[{"name": "a", "url": "https://files.example.org/a"}]),
            400,
            "validation_failed",
            {"attachments[0].url"},
        ),
        (
            mail(importance="urgent", body={"contentType": "rtf", "content": "x"}),
            400,
            "validation_failed",
            {"importance", "body.contentType"},
        ),
    ]
    for body, status, code, expected_fields in cases:
        resp = host.post("/api/mail/send", json=body)
        assert resp.status_code == status, (body, resp.text)
        error = resp.json()["error"]
        assert error["code"] == code and error["operationId"], resp.text
        assert expected_fields <= fields(resp), resp.text
    malformed = host.post(
        "/api/mail/send", data=b'{"connection": ', headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "validation_failed"
    assert sent_count(boxes) == before


def test_graph_503_within_budget_is_retried_and_the_mail_is_sent_once(host, sandbox, boxes):
    body = mail()
    sandbox.add_fault(
        method="POST",
        path=r"/v1\.0/users/[^/]+/messages$",
        action="status",
        status=503,
        retryAfter=1,
        times=1,
    )
    try:
        resp = host.post("/api/mail/send", json=body)
    finally:
        sandbox.clear_faults()
    assert resp.status_code == 200, resp.text
    assert len(until(lambda: boxes.messages(ANNA, "inbox", body["subject"]))) == 1


def test_graph_503_past_the_budget_is_503_graph_unavailable_with_retry_after(host, sandbox, boxes):
    before = sent_count(boxes)
    # Retry-After beyond GRAPH_RETRY_BUDGET_SECONDS: we give up at once and pass it on.
    sandbox.add_fault(
        method="POST",
        path=r"/v1\.0/users/[^/]+/messages$",
        action="status",
        status=503,
        retryAfter=60,
        times=5,
    )
    try:
        resp = host.post("/api/mail/send", json=mail())
    finally:
        sandbox.clear_faults()
    assert resp.status_code == 503, resp.text
    assert resp.json()["error"]["code"] == "graph_unavailable"
    assert int(resp.headers["Retry-After"]) >= 1
    assert sent_count(boxes) == before


def test_unexpected_bodies_never_leak_a_stack_trace(host):
    resp = host.post("/api/mail/move", json={"connection": "contoso.test"})
    assert resp.status_code == 400
    assert "Traceback" not in resp.text
