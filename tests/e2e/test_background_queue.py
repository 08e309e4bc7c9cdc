"""Queued work through the devhost, Azurite and the sandbox: async sends, idempotency, permanent
failures, the poison queue, signed callbacks and inbound signatures."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.caller_signing import caller_auth
from tests.e2e.background_support import (
    MAX_DEQUEUE,
    SIGNED_CONNECTION,
    SIGNING_SECRET,
    CallbackReceiver,
    bg_fixture,  # noqa: F401 - provides the `bg` fixture to this module
    finished,
    queue_length,
    sent_copies,
    wait_status,
)
from tests.functional.mailboxes import Mailboxes, until

pytestmark = pytest.mark.timeout(120)

ADMIN = "administratie@contoso.test"
ANNA = "anna@contoso.test"


def mail(subject: str, **extra) -> dict:
    return {
        "connection": "contoso.test",
        "from": ADMIN,
        "to": [ANNA],
        "subject": subject,
        "body": {"contentType": "text", "content": "Queued."},
        "mode": "async",
        **extra,
    }


@pytest.fixture
def boxes(sandbox) -> Mailboxes:
    return Mailboxes(sandbox.url, sandbox.ca)


def test_an_async_send_answers_202_and_ends_succeeded_with_one_sent_copy(bg, boxes):
    resp = bg.post("/api/mail/send", json=mail("async one"))
    assert resp.status_code == 202, resp.text
    body = resp.json()
    op = body["operationId"]
    assert body["status"] == "accepted"
    assert body["statusUrl"].endswith(f"/api/operations/{op}")
    assert resp.headers["Location"] == body["statusUrl"]
    status = wait_status(bg, op, finished)
    assert status["status"] == "succeeded", status
    assert status["attempts"] == 1 and status["result"]["messageId"]
    assert sent_copies(boxes, ADMIN).get(op) == 1


def test_the_status_route_needs_the_function_key_and_knows_unknown_ids(bg):
    assert bg.get(f"/api/operations/{uuid.uuid4()}", key="").status_code == 401
    resp = bg.get(f"/api/operations/{uuid.uuid4()}")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "operation_not_found"


def test_five_concurrent_identical_keys_give_one_operation_and_one_mail(bg, boxes):
    key = f"doc-{uuid.uuid4()}"
    payload = mail("idempotent")
    with ThreadPoolExecutor(5) as pool:
        answers = list(
            pool.map(
                lambda _: bg.post("/api/mail/send", json=payload, headers={"Idempotency-Key": key}),
                range(5),
            )
        )
    assert all(a.status_code == 202 for a in answers), [a.text for a in answers]
    ids = {a.json()["operationId"] for a in answers}
    assert len(ids) == 1
    op = ids.pop()
    assert wait_status(bg, op, finished)["status"] == "succeeded"
    # A later duplicate (after success) still names the first operation and sends nothing.
    again = bg.post("/api/mail/send", json=payload, headers={"Idempotency-Key": key})
    assert again.json()["operationId"] == op and again.json()["status"] == "succeeded"
    other = bg.post("/api/mail/send", json=mail("different"), headers={"Idempotency-Key": key})
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_conflict"
    time.sleep(1.0)  # give a wrongly queued duplicate the chance to show up
    assert sent_copies(boxes, ADMIN).get(op) == 1
    print(f"idempotency: 5 requests -> {len(answers)} answers, 1 operation, 1 mail")


def test_the_idempotency_key_header_wins_over_the_bodys_key(bg):
    header_key = f"hdr-{uuid.uuid4()}"
    first = bg.post(
        "/api/mail/send",
        json=mail("header wins", idempotencyKey=f"body-{uuid.uuid4()}"),
        headers={"Idempotency-Key": header_key},
    )
    second = bg.post(
        "/api/mail/send",
        json=mail("header wins", idempotencyKey=f"body-{uuid.uuid4()}"),
        headers={"Idempotency-Key": header_key},
    )

    assert first.status_code == second.status_code == 202, second.text
    assert second.json()["operationId"] == first.json()["operationId"]
    assert second.json()["duplicate"] is True


def test_a_permanent_error_ends_failed_after_one_attempt(bg):
    # The connection may send as *@contoso.test only: sender_not_allowed is permanent.
    resp = bg.post("/api/mail/send", json=mail("not allowed", **{"from": "ceo@fabrikam.test"}))
    assert resp.status_code == 202
    status = wait_status(bg, resp.json()["operationId"], finished)
    assert status["status"] == "failed"
    assert status["attempts"] == 1
    assert status["error"]["code"] == "sender_not_allowed"


def test_a_message_that_fails_every_time_ends_in_the_poison_queue_saying_so(
    bg, sandbox, azurite, boxes
):
    before = queue_length(azurite.connection_string, "mail-send-poison")
    fault = sandbox.add_fault(
        method="POST", path=r"/users/[^/]+/messages/[^/]+/send$", action="status", status=500
    )
    try:
        resp = bg.post("/api/mail/send", json=mail("always fails"))
        op = resp.json()["operationId"]
        status = wait_status(bg, op, lambda b: b.get("status") == "poisoned", timeout=60)
    finally:
        sandbox.control("DELETE", f"faults/{fault['id']}")
    assert status["status"] == "poisoned", status
    assert status["poisonQueue"] == "mail-send-poison"
    assert status["attempts"] == MAX_DEQUEUE
    assert status["error"]["code"] == "graph_error"
    assert until(
        lambda: queue_length(azurite.connection_string, "mail-send-poison") == before + 1, 20
    )
    assert sent_copies(boxes, ADMIN).get(op) is None


def test_callbacks_arrive_signed_with_the_documented_algorithm(bg, sandbox):
    from http_message_signatures import MappingKeyResolver
    from requests_http_signature import HTTPSignatureAuth, algorithms

    with CallbackReceiver(Path(sandbox.ca).parent) as receiver:
        payload = mail("with callback", connection=SIGNED_CONNECTION, callbackUrl=receiver.url)
        resp = bg.post(
            "/api/mail/send", json=payload, auth=caller_auth(SIGNING_SECRET, SIGNED_CONNECTION)
        )
        assert resp.status_code == 202, resp.text
        op = resp.json()["operationId"]
        assert until(lambda: receiver.received, 60)
    got = receiver.received[0]
    # The receiver's side, as docs/operations.md shows it: the same library, our profile.
    request = requests.Request("POST", receiver.url, data=got.body, headers=got.headers).prepare()
    verified = HTTPSignatureAuth.verify(
        request,
        signature_algorithm=algorithms.HMAC_SHA256,
        key_resolver=MappingKeyResolver(
            public_keys={SIGNED_CONNECTION: SIGNING_SECRET.encode()}, private_keys={}
        ),
        require_components=("@method", "@path", "content-digest"),
    )
    assert verified.parameters["keyid"] == SIGNED_CONNECTION and verified.nonce
    assert abs(time.time() - int(verified.parameters["created"])) < 300
    body = json.loads(got.body)
    assert body["operationId"] == op and body["status"] == "succeeded"
    status = wait_status(bg, op, lambda b: "callback" in b, timeout=20, signing_key=SIGNING_SECRET)
    assert status["callback"]["status"] == "delivered"


@pytest.mark.parametrize(
    "auth",
    [None, caller_auth("wrong-secret", SIGNED_CONNECTION), caller_auth(SIGNING_SECRET, "other")],
    ids=["unsigned", "wrong key", "other keyid"],
)
def test_a_bad_inbound_signature_is_401(bg, auth):
    raw = json.dumps(mail("signed?", connection=SIGNED_CONNECTION)).encode()
    resp = bg.post(
        "/api/mail/send", data=raw, headers={"Content-Type": "application/json"}, auth=auth
    )
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"]["code"] == "unauthorized"
