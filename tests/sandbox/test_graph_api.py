"""Graph mail over real sockets: drafts, attachments, sending, moving, folders, filters, rights.

GIVEN the sandbox with its default seed, WHEN an off-the-shelf client (MSAL + requests) calls
Graph v1.0, THEN it sees Exchange Online's shapes, permissions and errors.
"""

from __future__ import annotations

import base64
import os

import pytest

from tests.conftest import q
from tests.sandbox.graph_client import (
    ADMIN,
    ANNA,
    MB,
    OP_PROP,
    SVC,
    Graph,
    app_token,
    draft,
    eventually,
    files_of,
    rcpt,
    sent_items,
    upload,
    user_token,
)


@pytest.fixture(scope="module")
def tokens(sandbox) -> dict[str, str]:
    return {
        "app": app_token(sandbox.url),
        "svc": user_token(sandbox.url, SVC),
        "anna": user_token(sandbox.url, ANNA),
    }


@pytest.fixture
def as_app(fresh_sandbox, tokens) -> Graph:
    return Graph(fresh_sandbox.url, fresh_sandbox.ca, tokens["app"])


@pytest.fixture
def as_svc(fresh_sandbox, tokens) -> Graph:
    return Graph(fresh_sandbox.url, fresh_sandbox.ca, tokens["svc"])


@pytest.fixture(params=["app", "svc"])
def caller(request, fresh_sandbox, tokens) -> Graph:
    """The processor's two ways in: an app token and the service account's delegated token."""
    return Graph(fresh_sandbox.url, fresh_sandbox.ca, tokens[request.param])


def test_draft_with_small_and_10mb_attachments_is_sent_to_sent_items_and_inbox(
    as_app, fresh_sandbox
):
    caller = as_app  # a delegated token cannot open upload sessions in another's mailbox
    small, large = os.urandom(20_000), os.urandom(10 * MB)
    msg = draft(caller, singleValueExtendedProperties=[{"id": OP_PROP, "value": "op-42"}])
    assert msg["isDraft"] is True
    base = f"users/{ADMIN}/messages/{q(msg['id'])}"
    caller.ok(
        "POST",
        f"{base}/attachments",
        201,
        json={
            "@odata.type": "#microsoft.graph.fileAttachment",
            "name": "small.bin",
            "contentType": "application/octet-stream",
            "contentBytes": base64.b64encode(small).decode(),
        },
    )
    session = caller.ok(
        "POST",
        f"{base}/attachments/createUploadSession",
        201,
        json={
            "AttachmentItem": {"attachmentType": "file", "name": "large.pdf", "size": len(large)}
        },
    )
    assert session["nextExpectedRanges"] == ["0-"] and session["expirationDateTime"]
    answers = upload(session["uploadUrl"], fresh_sandbox.ca, large)
    assert [a.status_code for a in answers] == [200, 200, 201]
    assert answers[0].json()["nextExpectedRanges"] == [str(4 * MB)]

    sent = caller.post(f"{base}/send")
    assert sent.status_code == 202 and sent.content == b""
    gone = caller.get(base)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "ErrorItemNotFound"

    imid = msg["internetMessageId"]
    transit = fresh_sandbox.transit_seconds()
    filed = eventually(
        lambda: sent_items(caller, ADMIN, **{"$filter": f"internetMessageId eq '{imid}'"}),
        transit,
    )
    [copy] = filed
    assert copy["isDraft"] is False and copy["hasAttachments"] is True
    assert copy["from"]["emailAddress"]["address"] == ADMIN
    assert copy["sender"]["emailAddress"]["address"] == ADMIN
    assert files_of(caller, ADMIN, copy["id"]) == {"small.bin": small, "large.pdf": large}

    anna = Graph(fresh_sandbox.url, fresh_sandbox.ca, app_token(fresh_sandbox.url))
    inbox = anna.ok("GET", f"users/{ANNA}/mailFolders/inbox/messages")["value"]
    [received] = [m for m in inbox if m["internetMessageId"] == imid]  # delivered with the copy
    assert received["id"] != copy["id"]
    assert files_of(anna, ANNA, received["id"]) == {"small.bin": small, "large.pdf": large}
    outbound = fresh_sandbox.control("GET", "outbound").json()["value"]
    assert [o["recipients"] for o in outbound] == [["klant@example.com"]]


def test_delegated_upload_sessions_work_only_in_the_signed_in_users_own_mailbox(
    as_svc, fresh_sandbox
):
    """known-issues.md, "Attaching large files to messages with delegated permissions can
    fail": with delegated permissions "createUploadSession succeeds only if the message or
    event is in the signed-in user's mailbox" (403 otherwise). A limit lifts it."""
    item = {"AttachmentItem": {"attachmentType": "file", "name": "big.pdf", "size": 5 * MB}}

    def open_session(mailbox: str):
        msg = draft(as_svc, mailbox)
        path = f"users/{mailbox}/messages/{q(msg['id'])}/attachments/createUploadSession"
        return as_svc.post(path, json=item)

    shared = open_session(ADMIN)
    assert shared.status_code == 403 and shared.json()["error"]["code"] == "ErrorAccessDenied"
    assert open_session(SVC).status_code == 201
    fresh_sandbox.control("PATCH", "limits", json={"delegatedUploadSessionsInOtherMailboxes": True})
    assert open_session(ADMIN).status_code == 201


def test_send_mail_as_shared_mailbox_files_the_copy_in_its_sent_items_not_the_callers(
    as_svc, fresh_sandbox
):
    message = {"subject": "Als administratie", "toRecipients": [rcpt("a@example.com")]}
    resp = as_svc.post(f"users/{ADMIN}/sendMail", json={"message": message})
    assert resp.status_code == 202 and resp.content == b""
    [copy] = eventually(lambda: sent_items(as_svc, ADMIN), fresh_sandbox.transit_seconds())
    assert copy["subject"] == "Als administratie"
    assert copy["from"]["emailAddress"]["address"] == ADMIN
    assert sent_items(as_svc, SVC) == []
    assert as_svc.ok("GET", "me/mailFolders/sentitems/messages")["value"] == []


def test_save_to_sent_items_false_saves_no_copy(caller, fresh_sandbox):
    message = {"subject": "Geen kopie", "toRecipients": [rcpt(ANNA)]}
    resp = caller.post(
        f"users/{ADMIN}/sendMail", json={"message": message, "saveToSentItems": False}
    )
    assert resp.status_code == 202
    inbox = f"users/{ANNA}/mailFolders/inbox/messages"
    # Once anna has it, the mail has gone out: only then is "no copy" a result.
    assert eventually(lambda: caller.ok("GET", inbox)["value"], fresh_sandbox.transit_seconds())
    assert sent_items(caller, ADMIN) == []
    assert caller.ok("GET", f"users/{ADMIN}/mailFolders/outbox/messages")["value"] == []


def test_send_on_behalf_through_me_makes_the_trustee_the_sender(fresh_sandbox, tokens, as_app):
    """outlook-send-mail-from-other-user.md, example 1: with Send on Behalf, POST /me/sendMail
    with `from` = the other mailbox is 202; sender = the signed-in user, and the copy lands in
    the signed-in user's own Sent Items ("Sent Items behavior")."""
    anna = Graph(fresh_sandbox.url, fresh_sandbox.ca, tokens["anna"])
    message = {"subject": "Namens", "toRecipients": [rcpt("x@example.com")], "from": rcpt(ADMIN)}
    assert anna.post("me/sendMail", json={"message": message}).status_code == 202
    [copy] = eventually(lambda: sent_items(as_app, ANNA), fresh_sandbox.transit_seconds())
    assert copy["from"]["emailAddress"]["address"] == ADMIN
    assert copy["sender"]["emailAddress"]["address"] == ANNA
    assert sent_items(as_app, ADMIN) == []


def test_move_by_folder_id_and_by_well_known_name_changes_the_id(caller):
    msg = draft(caller)
    folder = caller.ok(
        "POST", f"users/{ADMIN}/mailFolders/inbox/childFolders", 201, json={"displayName": "Werk"}
    )
    moved = caller.ok(
        "POST",
        f"users/{ADMIN}/messages/{q(msg['id'])}/move",
        201,
        json={"destinationId": folder["id"]},
    )
    assert moved["id"] != msg["id"] and moved["parentFolderId"] == folder["id"]
    old = caller.get(f"users/{ADMIN}/messages/{q(msg['id'])}")
    assert old.status_code == 404 and old.json()["error"]["code"] == "ErrorItemNotFound"
    archived = caller.ok(
        "POST",
        f"users/{ADMIN}/messages/{q(moved['id'])}/move",
        201,
        json={"destinationId": "archive"},
    )
    archive = caller.ok("GET", f"users/{ADMIN}/mailFolders/archive")
    assert archived["id"] != moved["id"] and archived["parentFolderId"] == archive["id"]
    assert caller.get(f"users/{ADMIN}/messages/{q(moved['id'])}").status_code == 404


def test_immutable_ids_survive_a_move_when_asked_for(as_app):
    prefer = {"Prefer": 'IdType="ImmutableId"'}
    msg = as_app.ok("POST", f"users/{ADMIN}/messages", 201, json={"subject": "x"}, headers=prefer)
    moved = as_app.ok(
        "POST",
        f"users/{ADMIN}/messages/{q(msg['id'])}/move",
        201,
        json={"destinationId": "archive"},
        headers=prefer,
    )
    assert moved["id"] == msg["id"]
    assert as_app.ok("GET", f"users/{ADMIN}/messages/{q(msg['id'])}")["subject"] == "x"


def test_folders_nest_and_a_duplicate_name_is_folder_exists(caller):
    inbox = f"users/{ADMIN}/mailFolders/inbox"
    done = caller.ok("POST", f"{inbox}/childFolders", 201, json={"displayName": "Verwerkt"})
    year = caller.ok(
        "POST",
        f"users/{ADMIN}/mailFolders/{q(done['id'])}/childFolders",
        201,
        json={"displayName": "2026"},
    )
    assert year["parentFolderId"] == done["id"]
    dup = caller.post(f"{inbox}/childFolders", json={"displayName": "verwerkt"})
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "ErrorFolderExists"
    found = caller.ok(
        "GET", f"{inbox}/childFolders", params={"$filter": "displayName eq 'Verwerkt'"}
    )["value"]
    assert [f["id"] for f in found] == [done["id"]]
    path = caller.ok(
        "GET",
        f"users/{ADMIN}/mailFolders/{q(done['id'])}/childFolders",
        params={"$filter": "displayName eq '2026'"},
    )["value"]
    assert [f["id"] for f in path] == [year["id"]]
    top = caller.ok("GET", f"users/{ADMIN}/mailFolders", params={"$top": "50"})["value"]
    assert {"Inbox", "Drafts", "Sent Items", "Archive", "Deleted Items"} <= {
        f["displayName"] for f in top
    }


def test_filters_by_internet_message_id_and_extended_property_find_exactly_one(caller):
    made = [
        draft(caller, singleValueExtendedProperties=[{"id": OP_PROP, "value": f"op-{i}"}])
        for i in range(3)
    ]
    target = made[1]
    by_imid = caller.ok(
        "GET",
        f"users/{ADMIN}/messages",
        params={"$filter": f"internetMessageId eq '{target['internetMessageId']}'"},
    )["value"]
    assert [m["id"] for m in by_imid] == [target["id"]]
    by_prop = caller.ok(
        "GET",
        f"users/{ADMIN}/mailFolders/drafts/messages",
        params={
            "$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{OP_PROP}' "
            "and ep/value eq 'op-1')",
            "$expand": f"singleValueExtendedProperties($filter=id eq '{OP_PROP}')",
            "$select": "id,subject",
        },
    )["value"]
    assert [m["id"] for m in by_prop] == [target["id"]]
    assert by_prop[0]["singleValueExtendedProperties"] == [{"id": OP_PROP, "value": "op-1"}]
    assert "body" not in by_prop[0]


def test_paging_follows_next_link_newest_first(caller):
    ids = [draft(caller, subject=f"m{i}")["id"] for i in range(5)]
    page = caller.ok(
        "GET", f"users/{ADMIN}/messages", params={"$top": "2", "$orderby": "receivedDateTime desc"}
    )
    seen = [m["id"] for m in page["value"]]
    while "@odata.nextLink" in page:
        page = caller.ok("GET", page["@odata.nextLink"])
        seen += [m["id"] for m in page["value"]]
    assert sorted(seen) == sorted(ids) and len(seen) == 5


def test_patch_updates_a_draft_and_delete_removes_it(caller):
    msg = draft(caller)
    path = f"users/{ADMIN}/messages/{q(msg['id'])}"
    changed = caller.ok("PATCH", path, json={"subject": "Nieuw", "importance": "high"})
    assert changed["subject"] == "Nieuw" and changed["importance"] == "high"
    assert caller.call("DELETE", path).status_code == 204
    assert caller.get(path).status_code == 404


def test_send_as_someone_without_rights_is_send_as_denied(as_svc):
    message = {"subject": "x", "toRecipients": [rcpt(ANNA)]}
    # Through bram's URL: svc cannot even open bram's mailbox (no Full Access).
    resp = as_svc.post("users/bram@contoso.test/sendMail", json={"message": message})
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "ErrorAccessDenied"
    spoof = {**message, "from": rcpt("bram@contoso.test")}
    resp = as_svc.post("me/sendMail", json={"message": spoof})
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "ErrorSendAsDenied"
    read = as_svc.get("users/bram@contoso.test/messages")
    assert read.status_code == 403 and read.json()["error"]["code"] == "ErrorAccessDenied"


def test_unknown_and_foreign_mailboxes_are_invalid_user(as_app, fresh_sandbox):
    from tests.conftest import FABRIKAM_CLIENT_ID, FABRIKAM_CLIENT_SECRET, FABRIKAM_TENANT_ID

    for who in ("nobody@contoso.test", "ceo@fabrikam.test"):
        resp = as_app.get(f"users/{who}/messages")
        assert resp.status_code == 404, resp.text
        assert resp.json()["error"]["code"] == "ErrorInvalidUser"
        assert who in resp.json()["error"]["message"]
    fabrikam = Graph(
        fresh_sandbox.url,
        fresh_sandbox.ca,
        app_token(
            fresh_sandbox.url, FABRIKAM_TENANT_ID, FABRIKAM_CLIENT_ID, FABRIKAM_CLIENT_SECRET
        ),
    )
    assert fabrikam.get(f"users/{ANNA}/messages").status_code == 404
    assert fabrikam.ok("GET", "users/ceo@fabrikam.test/mailFolders/inbox")["displayName"] == "Inbox"


def test_missing_token_is_401_with_graph_error_shape_and_echoed_ids(fresh_sandbox):
    anonymous = Graph(fresh_sandbox.url, fresh_sandbox.ca, None)
    resp = anonymous.get(f"users/{ADMIN}/messages", headers={"client-request-id": "abc-123"})
    assert resp.status_code == 401
    error = resp.json()["error"]
    assert error["code"] == "InvalidAuthenticationToken"
    assert error["innerError"]["client-request-id"] == "abc-123"
    assert error["innerError"]["request-id"] == resp.headers["request-id"]
    assert resp.headers["client-request-id"] == "abc-123"


def test_app_token_on_me_is_a_bad_request(as_app):
    resp = as_app.get("me/messages")
    assert resp.status_code == 400 and "delegated" in resp.json()["error"]["message"]
