"""Resource shapes as Graph returns them (user-post-messages.md, example 1): @odata.context on
a single item ("...$metadata#users('…')/messages/$entity"), a draft's sentDateTime, recipients
with the `name` Graph resolved ("Adele Vance"), conversationIndex; and a received copy carries
the transport's headers (Received, Message-ID, Date, From, To, Subject, ...) in
internetMessageHeaders (message.md: "A collection of message headers defined by RFC5322").
"""

from __future__ import annotations

import base64

import pytest

from tests.conftest import q
from tests.sandbox.graph_client import ADMIN, ANNA, Graph, app_token, draft, eventually

HEADERS = {"$select": "internetMessageHeaders,subject"}


@pytest.fixture
def g(fresh_sandbox) -> Graph:
    return Graph(fresh_sandbox.url, fresh_sandbox.ca, app_token(fresh_sandbox.url))


def test_a_draft_has_context_sent_date_resolved_names_and_a_conversation_index(g):
    msg = draft(g)
    assert msg["@odata.context"].endswith("/messages/$entity")
    assert "$metadata#users('" in msg["@odata.context"]
    assert msg["sentDateTime"] == msg["createdDateTime"]
    names = {r["emailAddress"]["address"]: r["emailAddress"]["name"] for r in msg["toRecipients"]}
    assert names == {ANNA: "Anna de Vries", "klant@example.com": "klant@example.com"}
    index = base64.b64decode(msg["conversationIndex"])
    assert len(index) == 22 and index[0] == 1
    got = g.ok("GET", f"users/{ADMIN}/messages/{q(msg['id'])}")
    assert got["@odata.context"] == msg["@odata.context"]
    folder = g.ok("GET", f"users/{ADMIN}/mailFolders/inbox")
    assert folder["@odata.context"].endswith("/mailFolders/$entity")
    listed = g.ok("GET", f"users/{ADMIN}/messages", params={"$select": "subject"})
    assert listed["@odata.context"].endswith("/messages(subject)")


def test_a_received_copy_carries_transport_headers_and_the_senders_x_headers(g, fresh_sandbox):
    msg = draft(g, internetMessageHeaders=[{"name": "x-docuflow-id", "value": "42"}])
    assert g.post(f"users/{ADMIN}/messages/{q(msg['id'])}/send").status_code == 202
    inbox = f"users/{ANNA}/mailFolders/inbox/messages"
    [received] = eventually(lambda: g.ok("GET", inbox)["value"], fresh_sandbox.transit_seconds())
    headers = g.ok("GET", f"users/{ANNA}/messages/{q(received['id'])}", params=HEADERS)[
        "internetMessageHeaders"
    ]
    by_name = {h["name"]: h["value"] for h in headers}
    for name in ("Received", "Date", "From", "To", "Subject", "Message-ID", "MIME-Version"):
        assert name in by_name, name
    assert by_name["Message-ID"] == msg["internetMessageId"]
    assert by_name["Subject"] == msg["subject"]
    assert ADMIN in by_name["From"]
    assert by_name["x-docuflow-id"] == "42"
