"""Graph's limits and throttles over real sockets: 413, header and recipient rules, upload
sessions, 429s with Retry-After, and faults on Graph paths."""

from __future__ import annotations

import base64
import json
import threading

import pytest
import requests

from tests.conftest import q
from tests.sandbox.graph_client import (
    ADMIN,
    ANNA,
    MB,
    Graph,
    app_token,
    draft,
    eventually,
    rcpt,
    sent_items,
    upload,
)


@pytest.fixture(scope="module")
def token(sandbox) -> str:
    return app_token(sandbox.url)


@pytest.fixture
def g(fresh_sandbox, token) -> Graph:
    return Graph(fresh_sandbox.url, fresh_sandbox.ca, token)


def error_of(resp: requests.Response) -> str:
    return resp.json()["error"]["code"]


def test_a_5mb_json_body_is_413(g):
    message = {"subject": "big", "body": {"content": "x" * (5 * MB)}, "toRecipients": [rcpt(ANNA)]}
    resp = g.post(f"users/{ADMIN}/sendMail", data=json.dumps({"message": message}))
    assert resp.status_code == 413
    assert resp.json()["error"]["innerError"]["request-id"]
    assert sent_items(g, ADMIN) == []


def test_six_internet_message_headers_or_a_non_x_name_are_400(g):
    headers = [{"name": f"x-custom-{i}", "value": "v"} for i in range(6)]
    message = {"subject": "h", "toRecipients": [rcpt(ANNA)], "internetMessageHeaders": headers}
    resp = g.post(f"users/{ADMIN}/sendMail", json={"message": message})
    assert resp.status_code == 400
    assert error_of(resp) == "InvalidInternetMessageHeaderCollection"
    message["internetMessageHeaders"] = [{"name": "Received", "value": "spoof"}]
    resp = g.post(f"users/{ADMIN}/sendMail", json={"message": message})
    assert resp.status_code == 400 and error_of(resp) == "InvalidInternetMessageHeader"
    message["internetMessageHeaders"] = headers[:5]
    assert g.post(f"users/{ADMIN}/sendMail", json={"message": message}).status_code == 202


def test_more_than_500_recipients_is_400(g):
    many = [rcpt(f"r{i}@example.com") for i in range(501)]
    resp = g.post(
        f"users/{ADMIN}/sendMail", json={"message": {"subject": "x", "toRecipients": many}}
    )
    assert resp.status_code == 400 and error_of(resp) == "ErrorTooManyRecipients"


def test_attachment_post_over_3mb_is_413(g):
    msg = draft(g)
    body = {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": "big.bin",
        "contentBytes": base64.b64encode(b"\0" * (3 * MB + 1)).decode(),
    }
    resp = g.post(f"users/{ADMIN}/messages/{q(msg['id'])}/attachments", json=body)
    assert resp.status_code == 413


def test_upload_session_refuses_out_of_order_and_oversized_chunks(g, fresh_sandbox):
    msg = draft(g)
    data = bytes(range(256)) * (6 * MB // 256)
    session = g.ok(
        "POST",
        f"users/{ADMIN}/messages/{q(msg['id'])}/attachments/createUploadSession",
        201,
        json={"AttachmentItem": {"attachmentType": "file", "name": "a.bin", "size": len(data)}},
    )
    url = session["uploadUrl"]
    http = requests.Session()
    http.verify = fresh_sandbox.ca
    skipped = http.put(
        url,
        data=data[MB : 2 * MB],
        headers={"Content-Range": f"bytes {MB}-{2 * MB - 1}/{len(data)}"},
    )
    assert skipped.status_code == 416
    too_big = http.put(
        url, data=data[: 5 * MB], headers={"Content-Range": f"bytes 0-{5 * MB - 1}/{len(data)}"}
    )
    assert too_big.status_code == 413
    assert [r.status_code for r in upload(url, fresh_sandbox.ca, data)] == [200, 201]
    small = g.post(
        f"users/{ADMIN}/messages/{q(msg['id'])}/attachments/createUploadSession",
        json={"AttachmentItem": {"attachmentType": "file", "name": "s.bin", "size": 1000}},
    )
    assert small.status_code == 400
    wrong = http.put(url + "x", data=b"x", headers={"Content-Range": "bytes 0-0/1"})
    assert wrong.status_code == 404


def test_a_fifth_concurrent_slow_request_on_one_mailbox_is_429(g, fresh_sandbox, token):
    fresh_sandbox.add_fault(
        method="GET",
        path=r"^/v1\.0/users/anna@contoso\.test/messages$",
        action="delay",
        delayMs=2000,
    )
    start = threading.Barrier(5)
    answers: list[requests.Response] = []

    def call() -> None:
        client = Graph(fresh_sandbox.url, fresh_sandbox.ca, token)
        start.wait(timeout=10)
        answers.append(client.get(f"users/{ANNA}/messages"))

    threads = [threading.Thread(target=call) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(r.status_code for r in answers) == [200, 200, 200, 200, 429]
    [throttled] = [r for r in answers if r.status_code == 429]
    assert error_of(throttled) == "ApplicationThrottled"
    assert int(throttled.headers["Retry-After"]) >= 1
    # Another mailbox has its own slots.
    assert g.get(f"users/{ADMIN}/mailFolders/inbox").status_code == 200


def test_accept_then_drop_on_send_drops_the_connection_but_the_mail_is_sent(g, fresh_sandbox):
    msg = draft(g)
    fresh_sandbox.add_fault(method="POST", path=r"/send$", action="accept_then_drop", times=1)
    with pytest.raises(requests.ConnectionError):
        g.post(f"users/{ADMIN}/messages/{q(msg['id'])}/send")
    imid = msg["internetMessageId"]
    found = eventually(
        lambda: sent_items(g, ADMIN, **{"$filter": f"internetMessageId eq '{imid}'"}),
        fresh_sandbox.transit_seconds(),
    )
    assert [m["subject"] for m in found] == [msg["subject"]]


def test_send_rate_is_on_by_default_and_configurable(g, fresh_sandbox):
    assert fresh_sandbox.limits()["sendRatePerMinute"] == 30  # Exchange's rate, by default
    limits = fresh_sandbox.control("PATCH", "limits", json={"sendRatePerMinute": 2}).json()
    assert limits["sendRatePerMinute"] == 2
    message = {"message": {"subject": "r", "toRecipients": [rcpt(ANNA)]}}
    statuses = [g.post(f"users/{ADMIN}/sendMail", json=message) for _ in range(3)]
    assert [r.status_code for r in statuses] == [202, 202, 429]
    assert int(statuses[2].headers["Retry-After"]) >= 1
    fresh_sandbox.reset()
    assert fresh_sandbox.limits()["sendRatePerMinute"] == 30
    assert g.post(f"users/{ADMIN}/sendMail", json=message).status_code == 202


def test_request_budget_per_ten_minutes_is_configurable(g, fresh_sandbox):
    fresh_sandbox.control("PATCH", "limits", json={"requestsPer10Minutes": 3})
    statuses = [g.get(f"users/{ADMIN}/mailFolders/inbox").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    bad = fresh_sandbox.http.patch(f"{fresh_sandbox.url}/_sandbox/limits", json={"nope": 1})
    assert bad.status_code == 400


def test_status_faults_apply_to_graph_paths(g, fresh_sandbox):
    fresh_sandbox.add_fault(path=r"^/v1\.0/", action="status", status=503, retryAfter=2, times=1)
    first = g.get(f"users/{ADMIN}/mailFolders/inbox")
    assert first.status_code == 503 and first.headers["Retry-After"] == "2"
    assert g.get(f"users/{ADMIN}/mailFolders/inbox").status_code == 200


def test_the_throttle_reports_the_most_concurrent_requests_and_submissions_it_saw(
    g, fresh_sandbox, token
):
    """GET /_sandbox/throttle: what a client tried, refused requests included (the acceptance
    of shared limits reads it), per app+mailbox and per sending mailbox; DELETE forgets it."""
    fresh_sandbox.add_fault(
        method="GET",
        path=r"^/v1\.0/users/anna@contoso\.test/messages$",
        action="delay",
        delayMs=800,
    )
    start = threading.Barrier(6)

    def call() -> None:
        client = Graph(fresh_sandbox.url, fresh_sandbox.ca, token)
        start.wait(timeout=10)
        client.get(f"users/{ANNA}/messages")

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    fresh_sandbox.control("PATCH", "limits", json={"sendRatePerMinute": 2})
    message = {"message": {"subject": "r", "toRecipients": [rcpt(ANNA)]}}
    assert [g.post(f"users/{ADMIN}/sendMail", json=message).status_code for _ in range(3)] == [
        202,
        202,
        429,
    ]

    seen = fresh_sandbox.control("GET", "throttle").json()
    [anna] = [m for m in seen["mailboxes"] if m["mailbox"] == ANNA]
    # Four held their slot; each refused one arrived while they did (it leaves at once).
    assert 5 <= anna["peakConcurrent"] <= 6 and anna["requests"] == 6
    assert anna["refused"] == {"MailboxConcurrency": 2}
    [admin] = [s for s in seen["senders"] if s["mailbox"] == ADMIN]
    assert (admin["submissions"], admin["peakPerWindow"], admin["refused"]) == (3, 3, 1)
    assert seen["sendWindowSeconds"] == 60

    fresh_sandbox.control("DELETE", "throttle")
    assert fresh_sandbox.control("GET", "throttle").json()["mailboxes"] == []
    # The limit's own count stays: the window still holds the two accepted sends.
    assert g.post(f"users/{ADMIN}/sendMail", json=message).status_code == 429
