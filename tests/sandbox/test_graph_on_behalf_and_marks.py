"""Send on Behalf, item attachments, and the marks a message carries (categories, flag,
receipts, isRead), over real sockets.

outlook-send-mail-from-other-user.md: with Send on Behalf "the recipient ... has an indication
... that the user of your application sent the message on behalf of another user", exposed as
`sender` (who sent) and `from` (on whose behalf). automatically-save-sent-items-in-delegator-s-
mailbox.md: "By default, when an assistant sends mail as, or on behalf of, a manager, the sent
message is stored in the assistant's Sent Items folder"; MessageCopyForSendOnBehalfEnabled /
MessageCopyForSentAsEnabled store it in both.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from devhost.services import start_sandbox
from sandbox.certs import CA_FILE, CA_KEY_FILE
from sandbox.directory import Directory
from sandbox.seed import DEFAULT_SEED
from tests.conftest import q
from tests.sandbox.graph_client import (
    ADMIN,
    ANNA,
    Graph,
    app_token,
    draft,
    eventually,
    rcpt,
    sent_items,
    user_token,
)

BRAM = "bram@contoso.test"
CARLA = "carla@contoso.test"


def on_behalf(subject: str, sender: str = ANNA) -> dict:
    return {
        "message": {
            "subject": subject,
            "from": rcpt(ADMIN),
            "sender": rcpt(sender),
            "toRecipients": [rcpt(CARLA)],
        }
    }


def received(g: Graph, mailbox: str, subject: str, timeout: float) -> dict:
    def probe():
        items = g.ok("GET", f"users/{mailbox}/mailFolders/inbox/messages")["value"]
        return [m for m in items if m["subject"] == subject]

    found = eventually(probe, timeout)
    assert found, f"{subject!r} never reached {mailbox}"
    return found[0]


@pytest.fixture
def tokens(fresh_sandbox) -> dict[str, Graph]:
    url, ca = fresh_sandbox.url, fresh_sandbox.ca
    return {
        "app": Graph(url, ca, app_token(url)),
        "anna": Graph(url, ca, user_token(url, ANNA)),
        "bram": Graph(url, ca, user_token(url, BRAM)),
    }


def test_anna_sends_on_behalf_of_administratie_through_her_own_mailbox(tokens, fresh_sandbox):
    anna, app = tokens["anna"], tokens["app"]
    anna.ok("POST", f"users/{ANNA}/sendMail", 202, json=on_behalf("namens"))
    got = received(app, CARLA, "namens", fresh_sandbox.transit_seconds())
    assert got["from"]["emailAddress"]["address"] == ADMIN
    assert got["sender"]["emailAddress"]["address"] == ANNA
    headers = app.ok(
        "GET",
        f"users/{CARLA}/messages/{q(got['id'])}",
        params={"$select": "internetMessageHeaders"},
    )["internetMessageHeaders"]
    assert {"name": "Sender", "value": "Anna de Vries <anna@contoso.test>"} in headers
    # The copy is the delegate's (the sending mailbox's); administratie keeps none by default.
    assert [m["subject"] for m in sent_items(app, ANNA)] == ["namens"]
    assert sent_items(app, ADMIN) == []


def test_on_behalf_needs_the_grant_and_the_senders_own_name(tokens, fresh_sandbox):
    bram, anna, app = tokens["bram"], tokens["anna"], tokens["app"]
    denied = bram.post(f"users/{BRAM}/sendMail", json=on_behalf("zonder recht", sender=BRAM))
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "ErrorSendAsDenied"
    # Nobody sends on behalf of another in a third person's name.
    other = anna.post(f"users/{ANNA}/sendMail", json=on_behalf("als bram", sender=BRAM))
    assert other.status_code == 403 and other.json()["error"]["code"] == "ErrorSendAsDenied"
    # An app acts as the mailbox in its URL: anna's mailbox may send on behalf, bram's not.
    app.ok("POST", f"users/{ANNA}/sendMail", 202, json=on_behalf("app namens anna"))
    refused = app.post(f"users/{BRAM}/sendMail", json=on_behalf("app namens bram", sender=BRAM))
    assert refused.status_code == 403
    got = received(app, CARLA, "app namens anna", fresh_sandbox.transit_seconds())
    assert got["sender"]["emailAddress"]["address"] == ANNA
    subjects = [m["subject"] for m in app.ok("GET", f"users/{CARLA}/messages")["value"]]
    assert "zonder recht" not in subjects and "als bram" not in subjects


@pytest.fixture(scope="module")
def copying_sandbox(sandbox, tmp_path_factory):
    """A sandbox whose administratie has both MessageCopyFor… settings on (with the session
    sandbox's CA, which this process trusts)."""
    seed = json.loads(DEFAULT_SEED.read_text(encoding="utf-8"))
    shared = seed["tenants"][0]["sharedMailboxes"][0]
    shared["messageCopyForSendOnBehalfEnabled"] = True
    shared["messageCopyForSentAsEnabled"] = True
    tmp = tmp_path_factory.mktemp("copying")
    path = tmp / "seed.json"
    path.write_text(json.dumps(seed), encoding="utf-8")
    state = tmp / "state"
    state.mkdir()
    for name in (CA_FILE, CA_KEY_FILE):
        shutil.copy(Path(sandbox.ca).with_name(name), state / name)
    service = start_sandbox(port=0, state_dir=state, seed=path)
    try:
        yield service.info["url"], service.info["ca"]
    finally:
        service.stop()


def test_message_copy_settings_file_a_copy_in_the_principals_sent_items(copying_sandbox):
    url, ca = copying_sandbox
    anna, app = Graph(url, ca, user_token(url, ANNA)), Graph(url, ca, app_token(url))
    anna.ok("POST", f"users/{ANNA}/sendMail", 202, json=on_behalf("kopie namens"))
    # svc-docuflow has Send As on administratie: a Send As through its own mailbox.
    svc = Graph(url, ca, user_token(url, "svc-docuflow@contoso.test"))
    as_admin = {
        "message": {"subject": "kopie als", "from": rcpt(ADMIN), "toRecipients": [rcpt(CARLA)]}
    }
    svc.ok("POST", "users/svc-docuflow@contoso.test/sendMail", 202, json=as_admin)

    def admin_subjects():
        return sorted(m["subject"] for m in sent_items(app, ADMIN))

    assert eventually(lambda: admin_subjects() == ["kopie als", "kopie namens"], 20)
    assert [m["subject"] for m in sent_items(app, ANNA)] == ["kopie namens"]
    copy = next(m for m in sent_items(app, ADMIN) if m["subject"] == "kopie namens")
    assert copy["sender"]["emailAddress"]["address"] == ANNA


def test_grants_and_settings_are_data_that_reset_restores():
    seed = json.loads(DEFAULT_SEED.read_text(encoding="utf-8"))
    directory = Directory(seed)
    tenant = "contoso.test"
    assert directory.rights(tenant, ANNA, ADMIN) == {"SendOnBehalf"}
    granted = directory.change_rights(tenant, BRAM, ADMIN, add={"SendOnBehalf", "FullAccess"})
    directory.set_mailbox_settings(tenant, ADMIN, messageCopyForSendOnBehalfEnabled=True)
    assert granted == directory.rights(tenant, BRAM, ADMIN) == {"SendOnBehalf", "FullAccess"}
    assert directory.mailbox_setting(tenant, ADMIN, "messageCopyForSendOnBehalfEnabled")
    with pytest.raises(ValueError):
        directory.change_rights(tenant, BRAM, ADMIN, add={"Owner"})
    assert directory.rights(tenant, BRAM, ADMIN) == {"SendOnBehalf", "FullAccess"}
    with pytest.raises(KeyError):
        directory.change_rights("unknown.test", BRAM, ADMIN, add={"SendAs"})
    assert directory.change_rights(tenant, BRAM, ADMIN, remove={"FullAccess"}) == {"SendOnBehalf"}
    with pytest.raises(KeyError):
        directory.set_mailbox_settings(tenant, ADMIN, archive=True)
    directory.reset()
    assert directory.rights(tenant, BRAM, ADMIN) == frozenset()
    assert not directory.mailbox_setting(tenant, ADMIN, "messageCopyForSendOnBehalfEnabled")


def test_an_item_attachment_carries_a_whole_message(tokens, fresh_sandbox):
    app = tokens["app"]
    made = draft(app, ADMIN, subject="met bijlage", toRecipients=[rcpt(CARLA)])
    item = {
        "@odata.type": "#microsoft.graph.itemAttachment",
        "name": "Oorspronkelijke vraag",
        "item": {
            "@odata.type": "#microsoft.graph.message",
            "subject": "Vraag",
            "body": {"contentType": "text", "content": "Kunt u..."},
            "from": rcpt("klant@example.com"),
            "toRecipients": [rcpt(ADMIN)],
            "internetMessageId": "<vraag-1@example.com>",
        },
    }
    base = f"users/{ADMIN}/messages/{q(made['id'])}/attachments"
    att = app.ok("POST", base, 201, json=item)
    assert att["@odata.type"] == "#microsoft.graph.itemAttachment" and "contentBytes" not in att
    bad = app.post(base, json={**item, "item": {"@odata.type": "#microsoft.graph.event"}})
    assert bad.status_code == 400
    app.ok("POST", f"users/{ADMIN}/messages/{q(made['id'])}/send", 202)
    got = received(app, CARLA, "met bijlage", fresh_sandbox.transit_seconds())
    listed = app.ok("GET", f"users/{CARLA}/messages/{q(got['id'])}/attachments")["value"]
    assert [(a["name"], a["@odata.type"]) for a in listed] == [
        ("Oorspronkelijke vraag", "#microsoft.graph.itemAttachment")
    ]
    one = app.ok(
        "GET",
        f"users/{CARLA}/messages/{q(got['id'])}/attachments/{q(listed[0]['id'])}",
        params={"$expand": "microsoft.graph.itemattachment/item"},
    )
    assert one["item"]["subject"] == "Vraag"
    assert one["item"]["internetMessageId"] == "<vraag-1@example.com>"
    assert one["item"]["from"]["emailAddress"]["address"] == "klant@example.com"


def test_marks_are_checked_kept_and_follow_the_patch_rules(tokens, fresh_sandbox):
    app = tokens["app"]
    flag = {
        "flagStatus": "flagged",
        "startDateTime": {"dateTime": "2026-03-09T09:00:00", "timeZone": "UTC"},
        "dueDateTime": {"dateTime": "2026-03-10T17:00:00", "timeZone": "UTC"},
    }
    made = draft(
        app,
        ADMIN,
        subject="gemarkeerd",
        toRecipients=[rcpt(CARLA)],
        categories=["Verwerkt"],
        flag=flag,
        isReadReceiptRequested=True,
        isDeliveryReceiptRequested=True,
    )
    assert made["categories"] == ["Verwerkt"] and made["flag"]["flagStatus"] == "flagged"
    assert made["flag"]["dueDateTime"]["dateTime"].startswith("2026-03-10T17:00:00")
    url = f"users/{ADMIN}/messages/{q(made['id'])}"
    for bad in (
        {"categories": "Verwerkt"},
        {"categories": [1]},
        {"flag": {"flagStatus": "urgent"}},
        {"flag": {"flagStatus": "flagged", "dueDateTime": flag["dueDateTime"]}},
        {"flag": {"flagStatus": "flagged", "colour": "red"}},
        {"isRead": "yes"},
        {"isReadReceiptRequested": 1},
    ):
        resp = app.call("PATCH", url, json=bad)
        assert resp.status_code == 400, (bad, resp.text)
    app.ok("POST", f"{url}/send", 202)
    sent = eventually(lambda: sent_items(app, ADMIN), fresh_sandbox.transit_seconds())
    assert sent[0]["categories"] == ["Verwerkt"] and sent[0]["flag"]["flagStatus"] == "flagged"
    assert sent[0]["isReadReceiptRequested"] and sent[0]["isDeliveryReceiptRequested"]
    # On a sent message categories, flag and isRead still change; the subject no longer does.
    copy = f"users/{ADMIN}/messages/{q(sent[0]['id'])}"
    done = app.ok(
        "PATCH",
        copy,
        json={"categories": [], "flag": {"flagStatus": "complete"}, "isRead": False},
    )
    assert done["categories"] == [] and done["isRead"] is False
    assert done["flag"]["flagStatus"] == "complete" and "completedDateTime" in done["flag"]
    assert app.call("PATCH", copy, json={"subject": "x"}).status_code == 400
    # The recipient's copy carries the receipt requests, not the sender's own marks.
    got = received(app, CARLA, "gemarkeerd", fresh_sandbox.transit_seconds())
    assert got["isReadReceiptRequested"] and got["categories"] == []
    assert got["flag"] == {"flagStatus": "notFlagged"} and got["isRead"] is False
