"""What a PATCH (and a create) may set, as Exchange decides it.

message-update.md lists the updatable properties; subject, body, internetMessageId and replyTo
are "Updatable only if isDraft = true" and `from` "must correspond to the actual mailbox used".
Read-only properties echoed back are refused (ErrorInvalidPropertySet "Set action is invalid for
property."), `from` on a message that is not a draft too ("Message is not draft."), and
internetMessageHeaders can be set only when the message is created (message.md: read-only).
"""

from __future__ import annotations

import pytest

from tests.conftest import q
from tests.sandbox.graph_client import ADMIN, ANNA, Graph, app_token, draft, eventually, rcpt

IMMUTABLE = {"Prefer": 'IdType="ImmutableId"'}


@pytest.fixture
def g(fresh_sandbox) -> Graph:
    return Graph(fresh_sandbox.url, fresh_sandbox.ca, app_token(fresh_sandbox.url))


def error_of(resp) -> tuple[int, str, str]:
    error = resp.json()["error"]
    return resp.status_code, error["code"], error["message"]


@pytest.mark.parametrize(
    "field, value",
    [
        ("id", "AAMkAD="),
        ("createdDateTime", "2020-01-01T00:00:00Z"),
        ("isDraft", False),
        ("conversationId", "AAQkAD="),
        ("webLink", "https://example.com"),
        ("hasAttachments", True),
    ],
)
def test_echoing_a_read_only_property_is_invalid_property_set(g, field, value):
    msg = draft(g)
    resp = g.call("PATCH", f"users/{ADMIN}/messages/{q(msg['id'])}", json={field: value})
    assert error_of(resp) == (400, "ErrorInvalidPropertySet", "Set action is invalid for property.")
    made = g.post(f"users/{ADMIN}/messages", json={"subject": "x", field: value})
    assert error_of(made)[:2] == (400, "ErrorInvalidPropertySet")


def test_from_of_a_sent_message_and_headers_after_creation_cannot_change(g, fresh_sandbox):
    msg = draft(g, internetMessageHeaders=[{"name": "x-docuflow", "value": "1"}])
    path = f"users/{ADMIN}/messages/{q(msg['id'])}"
    headers = g.call(
        "PATCH", path, json={"internetMessageHeaders": [{"name": "x-other", "value": "2"}]}
    )
    assert error_of(headers)[:2] == (400, "ErrorInvalidPropertySet")
    # A received (not draft) message: `from` is not the draft's to change.
    g.ok("POST", f"{path}/send", 202, headers=IMMUTABLE)
    inbox = f"users/{ANNA}/mailFolders/inbox/messages"
    [received] = eventually(lambda: g.ok("GET", inbox)["value"], fresh_sandbox.transit_seconds())
    on_received = f"users/{ANNA}/messages/{q(received['id'])}"
    resp = g.call("PATCH", on_received, json={"from": rcpt("bram@contoso.test")})
    assert error_of(resp) == (400, "ErrorInvalidPropertySet", "Message is not draft.")
    subject = g.call("PATCH", on_received, json={"subject": "changed"})
    assert error_of(subject)[:2] == (400, "ErrorInvalidPropertyUpdateSentMessage")
    assert g.ok("PATCH", on_received, json={"isRead": True})["isRead"] is True
