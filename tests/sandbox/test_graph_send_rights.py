"""Who may send through whose mailbox, over real sockets, as Exchange Online decides it.

outlook-send-mail-from-other-user.md ("Sent Items behavior"): sending through
/users/{from}/sendMail so the copy lands in that mailbox's Sent Items needs Full Access in
addition to Send As or Send on Behalf; an app with Mail.Send sends "normally through the
user's mailbox". Without Full Access Exchange cannot open the mailbox and answers 403
ErrorAccessDenied "Access is denied. Check credentials and try again." (the answer for a mailbox
one has no access to, microsoft-graph-docs issue 9429); another address in `from` without Send
As is 403 ErrorSendAsDenied (example 2 of the same page).
"""

from __future__ import annotations

import pytest

from tests.conftest import q
from tests.sandbox.graph_client import (
    ADMIN,
    ANNA,
    SVC,
    Graph,
    app_token,
    draft,
    eventually,
    rcpt,
    sent_items,
    user_token,
)

SEND_AS_ONLY = "svc-sendas@contoso.test"  # Send As on administratie, no Full Access
BRAM = "bram@contoso.test"


@pytest.fixture(scope="module")
def tokens(sandbox) -> dict[str, str]:
    return {
        "app": app_token(sandbox.url),
        "anna": user_token(sandbox.url, ANNA),
        "sendas": user_token(sandbox.url, SEND_AS_ONLY),
        "svc": user_token(sandbox.url, SVC),
    }


def graph(sandbox, token: str) -> Graph:
    return Graph(sandbox.url, sandbox.ca, token)


def message(subject: str, **fields) -> dict:
    return {"subject": subject, "toRecipients": [rcpt(ANNA), rcpt("x@example.com")], **fields}


def nothing_went_out(sandbox, app: Graph, subject: str) -> bool:
    inbox = app.ok("GET", f"users/{ANNA}/mailFolders/inbox/messages")["value"]
    outbound = sandbox.control("GET", "outbound").json()["value"]
    return subject not in [m["subject"] for m in inbox] + [o["subject"] for o in outbound]


@pytest.mark.parametrize("who", ["anna", "sendas"])
def test_send_mail_through_a_mailbox_without_full_access_is_access_denied(
    fresh_sandbox, tokens, who
):
    """anna (Send on Behalf) and svc-sendas (Send As) may send as administratie, but neither
    has Full Access on it: through its URL Exchange refuses, and nothing is filed or sent."""
    caller, app = graph(fresh_sandbox, tokens[who]), graph(fresh_sandbox, tokens["app"])
    resp = caller.post(
        f"users/{ADMIN}/sendMail", json={"message": message("via url", **{"from": rcpt(ADMIN)})}
    )
    assert resp.status_code == 403, resp.text
    error = resp.json()["error"]
    assert error["code"] == "ErrorAccessDenied"
    assert error["message"] == "Access is denied. Check credentials and try again."
    assert sent_items(app, ADMIN) == []
    assert nothing_went_out(fresh_sandbox, app, "via url")


def test_a_draft_in_a_mailbox_without_full_access_cannot_be_made_or_sent(fresh_sandbox, tokens):
    sendas = graph(fresh_sandbox, tokens["sendas"])
    made = sendas.post(f"users/{ADMIN}/messages", json=message("draft"))
    assert made.status_code == 403 and made.json()["error"]["code"] == "ErrorAccessDenied"
    # A draft someone else put there cannot be sent through that URL either.
    existing = draft(graph(fresh_sandbox, tokens["app"]), subject="theirs")
    sent = sendas.post(f"users/{ADMIN}/messages/{q(existing['id'])}/send")
    assert sent.status_code == 403 and sent.json()["error"]["code"] == "ErrorAccessDenied"


def test_send_as_without_full_access_works_through_me_with_from(fresh_sandbox, tokens):
    """The documented way without Full Access: POST /me/sendMail with `from`; the copy goes to
    the sender's own Sent Items and sender = from (Send As)."""
    sendas, app = graph(fresh_sandbox, tokens["sendas"]), graph(fresh_sandbox, tokens["app"])
    resp = sendas.post("me/sendMail", json={"message": message("via me", **{"from": rcpt(ADMIN)})})
    assert resp.status_code == 202, resp.text
    [copy] = eventually(lambda: sent_items(app, SEND_AS_ONLY), fresh_sandbox.transit_seconds())
    assert copy["from"]["emailAddress"]["address"] == ADMIN
    assert copy["sender"]["emailAddress"]["address"] == ADMIN
    assert sent_items(app, ADMIN) == []


def test_full_access_and_send_as_send_through_the_url_into_its_sent_items(fresh_sandbox, tokens):
    svc, app = graph(fresh_sandbox, tokens["svc"]), graph(fresh_sandbox, tokens["app"])
    assert svc.post(f"users/{ADMIN}/sendMail", json={"message": message("svc")}).status_code == 202
    [copy] = eventually(lambda: sent_items(app, ADMIN), fresh_sandbox.transit_seconds())
    assert copy["from"]["emailAddress"]["address"] == ADMIN


def test_an_app_cannot_put_another_mailbox_in_from_without_send_as(fresh_sandbox, tokens):
    """An app token acts as the URL's mailbox: /users/svc/sendMail with `from` = bram (svc has
    no right on bram) is ErrorSendAsDenied, not a mail from bram."""
    app = graph(fresh_sandbox, tokens["app"])
    resp = app.post(
        f"users/{SVC}/sendMail", json={"message": message("spoof", **{"from": rcpt(BRAM)})}
    )
    assert resp.status_code == 403, resp.text
    assert resp.json()["error"]["code"] == "ErrorSendAsDenied"
    assert nothing_went_out(fresh_sandbox, app, "spoof")
    # svc has Send As on administratie: that `from` is allowed through svc's own mailbox.
    ok = app.post(
        f"users/{SVC}/sendMail", json={"message": message("as adm", **{"from": rcpt(ADMIN)})}
    )
    assert ok.status_code == 202, ok.text
    [copy] = eventually(lambda: sent_items(app, SVC), fresh_sandbox.transit_seconds())
    assert copy["from"]["emailAddress"]["address"] == ADMIN
    assert copy["sender"]["emailAddress"]["address"] == ADMIN
    # And sending as the URL's own mailbox needs nothing more than Mail.Send.
    assert app.post(f"users/{BRAM}/sendMail", json={"message": message("own")}).status_code == 202
