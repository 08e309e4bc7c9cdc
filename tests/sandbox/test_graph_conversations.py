"""Replies, forwards and conversations in the sandbox, as Exchange Online does them.

message-createreply.md / message-createreplyall.md / message-createforward.md: `comment` or
`message.body`, not both (400); reply-all goes to replyTo (else from) and the original's
recipients per RFC 2822, without the replying mailbox; createForward needs the toRecipients
parameter or the message's toRecipients, exactly one (400 otherwise). The answer shares the
original's conversationId; its recipients see In-Reply-To / References / Thread-Index.
"""

from __future__ import annotations

import base64

import pytest

from tests.conftest import q
from tests.sandbox.graph_client import (
    ADMIN,
    ANNA,
    Graph,
    app_token,
    eventually,
    rcpt,
    sent_items,
)

BRAM = "bram@contoso.test"
CARLA = "carla@contoso.test"


@pytest.fixture
def g(fresh_sandbox) -> Graph:
    return Graph(fresh_sandbox.url, fresh_sandbox.ca, app_token(fresh_sandbox.url))


def inbox(g: Graph, mailbox: str, subject: str) -> list[dict]:
    value = g.ok("GET", f"users/{mailbox}/mailFolders/inbox/messages")["value"]
    return [m for m in value if m["subject"] == subject]


def deliver(g: Graph, sandbox, sender: str, subject: str, **fields) -> dict:
    """`sender` mails ADMIN (and whoever `fields` add); returns ADMIN's received copy."""
    body = {
        "message": {
            "subject": subject,
            "body": {"contentType": "text", "content": "Kunt u de factuur sturen?\nDank!"},
            "toRecipients": [rcpt(ADMIN)],
            **fields,
        }
    }
    g.ok("POST", f"users/{sender}/sendMail", 202, json=body)
    found = eventually(lambda: inbox(g, ADMIN, subject), sandbox.transit_seconds())
    assert found, "the original never arrived"
    return found[0]


def headers_of(g: Graph, mailbox: str, message_id: str) -> dict[str, str]:
    msg = g.ok(
        "GET",
        f"users/{mailbox}/messages/{q(message_id)}",
        params={"$select": "internetMessageHeaders"},
    )
    return {h["name"]: h["value"] for h in msg["internetMessageHeaders"]}


def addresses(recipients: list[dict]) -> list[str]:
    return [r["emailAddress"]["address"] for r in recipients]


def test_create_reply_threads_the_draft_and_its_recipient_sees_the_headers(g, fresh_sandbox):
    original = deliver(g, fresh_sandbox, ANNA, "Vraag over factuur")
    draft = g.ok(
        "POST",
        f"users/{ADMIN}/messages/{q(original['id'])}/createReply",
        201,
        json={"comment": "Zie bijlage <b>hier</b>"},
    )
    assert draft["isDraft"] is True
    assert draft["subject"] == "RE: Vraag over factuur"
    assert addresses(draft["toRecipients"]) == [ANNA]
    assert draft["conversationId"] == original["conversationId"]
    parent = base64.b64decode(original["conversationIndex"])
    child = base64.b64decode(draft["conversationIndex"])
    assert child[: len(parent)] == parent and len(child) == len(parent) + 5
    # The comment is escaped text above the quoted original.
    content = draft["body"]["content"]
    assert "Zie bijlage &lt;b&gt;hier&lt;/b&gt;" in content
    assert content.index("Zie bijlage") < content.index("Kunt u de factuur sturen?")
    drafts = g.ok("GET", f"users/{ADMIN}/mailFolders/drafts/messages")["value"]
    assert [m["id"] for m in drafts] == [draft["id"]]

    g.ok("POST", f"users/{ADMIN}/messages/{q(draft['id'])}/send", 202)
    got = eventually(lambda: inbox(g, ANNA, draft["subject"]), fresh_sandbox.transit_seconds())
    assert len(got) == 1 and got[0]["conversationId"] == original["conversationId"]
    headers = headers_of(g, ANNA, got[0]["id"])
    assert headers["In-Reply-To"] == original["internetMessageId"]
    assert headers["References"] == original["internetMessageId"]
    assert headers["Thread-Index"] == draft["conversationIndex"]
    # A reply to the reply references the whole chain.
    again = g.ok("POST", f"users/{ANNA}/messages/{q(got[0]['id'])}/createReply", 201, json={})
    assert again["subject"] == "RE: Vraag over factuur"
    g.ok("POST", f"users/{ANNA}/messages/{q(again['id'])}/send", 202)
    back = eventually(lambda: inbox(g, ADMIN, again["subject"]), fresh_sandbox.transit_seconds())
    chain = headers_of(g, ADMIN, back[0]["id"])["References"].split()
    assert chain == [original["internetMessageId"], got[0]["internetMessageId"]]
    assert eventually(lambda: sent_items(g, ADMIN), fresh_sandbox.transit_seconds())


def test_reply_all_follows_rfc_2822_and_leaves_the_replier_out(g, fresh_sandbox):
    original = deliver(
        g,
        fresh_sandbox,
        ANNA,
        "Overleg",
        toRecipients=[rcpt(ADMIN), rcpt(BRAM)],
        ccRecipients=[rcpt(CARLA), rcpt(ADMIN)],
        replyTo=[rcpt("secretariaat@example.com")],
    )
    draft = g.ok("POST", f"users/{ADMIN}/messages/{q(original['id'])}/createReplyAll", 201, json={})
    # replyTo instead of from, then the original's To; Cc stays Cc; administratie left out.
    assert addresses(draft["toRecipients"]) == ["secretariaat@example.com", BRAM]
    assert addresses(draft["ccRecipients"]) == [CARLA]
    single = g.ok("POST", f"users/{ADMIN}/messages/{q(original['id'])}/createReply", 201)
    assert addresses(single["toRecipients"]) == ["secretariaat@example.com"]
    assert single["ccRecipients"] == []


def test_comment_and_body_together_are_refused_and_body_replaces_the_quote(g, fresh_sandbox):
    original = deliver(g, fresh_sandbox, ANNA, "Body of comment")
    url = f"users/{ADMIN}/messages/{q(original['id'])}/createReply"
    both = g.post(
        url,
        json={"comment": "a", "message": {"body": {"contentType": "text", "content": "b"}}},
    )
    assert both.status_code == 400, both.text
    assert g.ok("GET", f"users/{ADMIN}/mailFolders/drafts/messages")["value"] == []
    own = g.ok(
        "POST",
        url,
        201,
        json={"message": {"body": {"contentType": "text", "content": "Alleen dit"}}},
        headers={"Prefer": 'outlook.body-content-type="text"'},
    )
    assert own["body"]["content"] == "Alleen dit"  # the original is not quoted


def test_create_forward_needs_recipients_once_and_carries_the_attachments(g, fresh_sandbox):
    data = base64.b64encode(b"%PDF-1.7 factuur").decode()
    original = deliver(
        g,
        fresh_sandbox,
        ANNA,
        "Factuur",
        attachments=[
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": "factuur.pdf",
                "contentBytes": data,
            }
        ],
    )
    url = f"users/{ADMIN}/messages/{q(original['id'])}/createForward"
    neither = g.post(url, json={"comment": "zie onder"})
    both = g.post(
        url,
        json={"toRecipients": [rcpt(BRAM)], "message": {"toRecipients": [rcpt(CARLA)]}},
    )
    assert neither.status_code == 400 and both.status_code == 400
    forward = g.ok("POST", url, 201, json={"toRecipients": [rcpt(BRAM)], "comment": "fyi"})
    assert forward["subject"] == "FW: Factuur" and addresses(forward["toRecipients"]) == [BRAM]
    assert forward["conversationId"] == original["conversationId"]
    files = g.ok("GET", f"users/{ADMIN}/messages/{q(forward['id'])}/attachments")["value"]
    assert [(f["name"], f["contentBytes"]) for f in files] == [("factuur.pdf", data)]


def test_reply_and_forward_actions_send_at_once_with_a_copy(g, fresh_sandbox):
    original = deliver(g, fresh_sandbox, ANNA, "Direct")
    g.ok("POST", f"users/{ADMIN}/messages/{q(original['id'])}/reply", 202, json={"comment": "ok"})
    g.ok(
        "POST",
        f"users/{ADMIN}/messages/{q(original['id'])}/forward",
        202,
        json={"toRecipients": [rcpt(BRAM)]},
    )
    assert eventually(lambda: inbox(g, ANNA, "RE: Direct"), fresh_sandbox.transit_seconds())
    assert eventually(lambda: inbox(g, BRAM, "FW: Direct"), fresh_sandbox.transit_seconds())
    subjects = sorted(m["subject"] for m in sent_items(g, ADMIN))
    assert subjects == ["FW: Direct", "RE: Direct"]
    assert g.ok("GET", f"users/{ADMIN}/mailFolders/drafts/messages")["value"] == []


def test_an_answer_to_a_message_of_another_mailbox_is_not_found(g, fresh_sandbox):
    original = deliver(g, fresh_sandbox, ANNA, "Elders")
    resp = g.post(f"users/{BRAM}/messages/{q(original['id'])}/createReply", json={})
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "ErrorItemNotFound"
    garbage = g.post(f"users/{ADMIN}/messages/not-an-id/createReply", json={})
    assert garbage.status_code == 400
    assert garbage.json()["error"]["code"] == "ErrorInvalidIdMalformed"
