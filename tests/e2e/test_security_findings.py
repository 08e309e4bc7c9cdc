"""The security review's attacks, replayed through the devhost, the sandbox and Azurite: each one
is refused (or harmless) now, and nothing is sent. The caller signs with requests-http-signature,
written independently of our code, as docs/security.md tells DocuFlow to."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import requests

from devhost.bootstrap import SANDBOX_CLIENT_SECRET
from shared.identity import secret_names
from tests.caller_signing import caller_auth
from tests.e2e.connections_kit import admin, admin_json, sandbox_flags, sent_items_subjects
from tests.e2e.connections_kit import stored_secret as read_secret
from tests.functional.mailboxes import Mailboxes

ADMIN = "administratie@contoso.test"
ANNA = "anna@contoso.test"

pytestmark = pytest.mark.timeout(240)


def signed_flags(url: str) -> list[str]:
    """The sandbox flags without the sign-in tests' --allow-unsigned: the default, signed."""
    return [f for f in sandbox_flags(url) if f != "--allow-unsigned"]


def add_signed(devhost, tmp_path: Path, *extra: str) -> tuple[str, str]:
    """A new app connection created by the CLI with its defaults; returns (name, signing key)."""
    name = f"sec-{uuid.uuid4().hex[:8]}.contoso.test"
    key_file = tmp_path / f"{name}.key"
    done = admin(
        devhost,
        "add",
        name,
        "--mode",
        "app",
        "--sender",
        "*@contoso.test",
        "--secret-stdin",
        "--signing-key-out",
        str(key_file),
        *signed_flags(devhost.sandbox_url),
        *extra,
        stdin=SANDBOX_CLIENT_SECRET,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return name, key_file.read_text().strip()


def mail(connection: str, subject: str, **extra) -> dict:
    return {
        "connection": connection,
        "from": ADMIN,
        "to": [ANNA],
        "subject": subject,
        "body": {"contentType": "text", "content": "security review"},
        **extra,
    }


def signed_request(devhost, path: str, body: dict, key: str, name: str, **headers: str):
    """A prepared request (function key + RFC 9421 signature) that can be sent again as is."""
    raw = json.dumps(body).encode()
    request = requests.Request(
        "POST",
        f"{devhost.url}{path}",
        data=raw,
        headers={"Content-Type": "application/json", "x-functions-key": devhost.key, **headers},
    ).prepare()
    return caller_auth(key, name, idempotency_key="Idempotency-Key" in headers)(request)


def resend(devhost, prepared: requests.PreparedRequest, *, url: str | None = None, **headers):
    """Send a captured request again, optionally to another URL or with changed headers."""
    copy = prepared.copy()
    if url:
        copy.url = url
    copy.headers.update(headers)
    return devhost.http.send(copy, timeout=120)


def sent(sandbox, subject: str) -> int:
    return sent_items_subjects(sandbox, ADMIN).count(subject)


# --- acceptance: a signed request is accepted once, and every variation of it is refused ----


def test_a_signed_request_is_accepted_once_and_its_replays_and_variations_are_401(
    fresh_devhost, sandbox, tmp_path
):
    name, key = add_signed(fresh_devhost, tmp_path)
    subject = f"signed once {uuid.uuid4().hex[:6]}"
    first = signed_request(fresh_devhost, "/api/mail/send", mail(name, subject), key, name)

    accepted = resend(fresh_devhost, first)
    replayed = resend(fresh_devhost, first)
    rerouted = resend(fresh_devhost, first, url=f"{fresh_devhost.url}/api/mail/draft")
    other_key = resend(fresh_devhost, first, **{"Idempotency-Key": "another"})
    changed = first.copy()
    changed.body = first.body.replace(b"security review", b"security REVIEW")  # same length
    changed_body = fresh_devhost.http.send(changed, timeout=120)
    unsigned = fresh_devhost.post("/api/mail/send", json=mail(name, subject))

    assert accepted.status_code == 200, accepted.text
    for resp in (replayed, rerouted, other_key, changed_body, unsigned):
        assert resp.status_code == 401, resp.text
        assert resp.json()["error"]["code"] == "unauthorized"
    assert "replay" in replayed.json()["error"]["message"]
    assert sent(sandbox, subject) == 1


def graph_calls(sandbox, since: int) -> list[str]:
    entries = sandbox.control("GET", f"requests?since={since}&limit=500").json()["value"]
    return [f"{e['method']} {e['path']}" for e in entries if e["path"].startswith("/v1.0/")]


def test_an_export_without_the_connections_signature_is_401_before_graph_is_asked(
    fresh_devhost, sandbox, tmp_path
):
    name, key = add_signed(fresh_devhost, tmp_path)
    subject = f"export signed {uuid.uuid4().hex[:6]}"
    sent_mail = resend(
        fresh_devhost,
        signed_request(fresh_devhost, "/api/mail/send", mail(name, subject), key, name),
    )
    assert sent_mail.status_code == 200, sent_mail.text
    Mailboxes(sandbox.url, sandbox.ca).settle(ADMIN)
    export = {"connection": name, "mailbox": ADMIN, "messageId": sent_mail.json()["messageId"]}
    first = signed_request(fresh_devhost, "/api/mail/export", export, key, name)

    # The function key alone, or another key's signature: refused, and Graph never asked.
    since = sandbox.control("GET", "requests?limit=1").json()["lastSeq"]
    unsigned = fresh_devhost.post("/api/mail/export", json=export)
    other_key = resend(
        fresh_devhost, signed_request(fresh_devhost, "/api/mail/export", export, "x" * 43, name)
    )
    assert graph_calls(sandbox, since) == []
    # Signed: the .eml, streamed; its replay: refused before Graph again.
    accepted = resend(fresh_devhost, first)
    since = sandbox.control("GET", "requests?limit=1").json()["lastSeq"]
    replayed = resend(fresh_devhost, first)
    assert graph_calls(sandbox, since) == []

    for resp in (unsigned, other_key, replayed):
        assert resp.status_code == 401, resp.text
        assert resp.json()["error"]["code"] == "unauthorized"
    assert accepted.status_code == 200, accepted.text[:300]
    assert accepted.headers["Content-Type"] == "message/rfc822"
    assert f"Subject: {subject}".encode() in accepted.content


# --- finding 1: replacing a connection keeps its security fields ---------------------------


def test_finding_1_replacing_a_connection_keeps_it_signed_and_the_cli_sets_every_field(
    fresh_devhost, sandbox, tmp_path
):
    name, key = add_signed(fresh_devhost, tmp_path, "--callback-host", "hooks.example.com")
    # The original attack: `add` again (e.g. to rotate the client secret), no security options.
    again = admin(fresh_devhost, "add", name, "--secret-stdin", stdin=SANDBOX_CLIENT_SECRET)
    assert again.returncode == 0, again.stdout + again.stderr
    stored = json.loads(read_secret(sandbox, secret_names.connection_secret(name)) or "{}")
    unsigned = fresh_devhost.post("/api/mail/send", json=mail(name, "unsigned after replace"))

    assert stored["requireSignedRequests"] is True
    assert stored["callbackUrlHosts"] == ["hooks.example.com"]
    assert read_secret(sandbox, secret_names.signing_key_secret(name)) == key  # not rotated
    assert unsigned.status_code == 401
    assert sent(sandbox, "unsigned after replace") == 0

    # Every field has an option; the explicit opt-out shows in `list`.
    done = admin(
        fresh_devhost,
        *("add", name, "--allow-unsigned", "--no-instance-discovery"),
        *("--allow-private-attachment-hosts", "--attachment-host", "files.example.com"),
        *("--return-url-host", "app.example.com", "--graph-scope", "https://g.example/.default"),
        *("--delegated-scope", "https://g.example/Mail.Send", "--account", "svc@contoso.test"),
        *("--clear", "callback-host"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    stored = json.loads(read_secret(sandbox, secret_names.connection_secret(name)) or "{}")
    listed = {c["name"]: c for c in admin_json(fresh_devhost, "list")["connections"]}
    human = admin(fresh_devhost, "list").stdout

    assert stored["requireSignedRequests"] is False
    assert stored["instanceDiscovery"] is False and stored["allowPrivateAttachmentHosts"]
    assert stored["attachmentUrlHosts"] == ["files.example.com"]
    assert stored["returnUrlHosts"] == ["app.example.com"]
    assert stored["graphScope"] == "https://g.example/.default"
    assert stored["delegatedScopes"] == ["https://g.example/Mail.Send"]
    assert stored["account"] == "svc@contoso.test" and stored["callbackUrlHosts"] == []
    assert stored["allowedSenders"] == ["*@contoso.test"]  # not given: kept
    assert listed[name]["requireSignedRequests"] is False
    assert "UNSIGNED allowed" in human


# --- finding 2: a signed draft is not a send; no replay; no far-future timestamps ----------


def test_finding_2_a_signed_draft_sent_to_send_replayed_or_requeued_sends_nothing(
    fresh_devhost, sandbox, tmp_path
):
    name, key = add_signed(fresh_devhost, tmp_path)
    subject = f"draft only {uuid.uuid4().hex[:6]}"
    draft = signed_request(fresh_devhost, "/api/mail/draft", mail(name, subject), key, name)
    created = resend(fresh_devhost, draft)
    as_send = resend(fresh_devhost, draft, url=f"{fresh_devhost.url}/api/mail/send")
    as_send_again = resend(fresh_devhost, draft, url=f"{fresh_devhost.url}/api/mail/send")

    queued = signed_request(
        fresh_devhost,
        "/api/mail/send",
        mail(name, subject, mode="async"),
        key,
        name,
        **{"Idempotency-Key": "k-1"},
    )
    first_async = resend(fresh_devhost, queued)
    new_key = resend(fresh_devhost, queued, **{"Idempotency-Key": "k-2"})

    assert created.status_code == 201, created.text
    assert as_send.status_code == 401 and as_send_again.status_code == 401
    assert first_async.status_code == 202, first_async.text
    assert new_key.status_code == 401


def test_finding_2_a_timestamp_290_seconds_ahead_is_refused(fresh_devhost, sandbox, tmp_path):
    import datetime

    name, key = add_signed(fresh_devhost, tmp_path)

    class Ahead(type(caller_auth(key, name))):
        def get_created(self, request):
            return datetime.datetime.now() + datetime.timedelta(seconds=290)

    auth = Ahead(
        signature_algorithm=caller_auth(key, name).signer.signature_algorithm,
        key=key.encode(),
        key_id=name,
        covered_component_ids=("@method", "@path", "content-digest"),
        use_nonce=True,
    )
    resp = fresh_devhost.post("/api/mail/send", json=mail(name, "from the future"), auth=auth)
    assert resp.status_code == 401 and "future" in resp.json()["error"]["message"]
    assert sent(sandbox, "from the future") == 0


# --- finding 3: idempotency keys are per operation kind -------------------------------------


def test_finding_3_a_drafts_idempotency_key_does_not_answer_for_a_send(
    fresh_devhost, sandbox, tmp_path
):
    from tests.e2e.background_support import finished, wait_status

    name, key = add_signed(fresh_devhost, tmp_path)
    subject = f"same key {uuid.uuid4().hex[:6]}"
    body = mail(name, subject, mode="async")
    auth = caller_auth(key, name, idempotency_key=True)
    headers = {"Idempotency-Key": f"K-{uuid.uuid4().hex[:6]}"}
    draft = fresh_devhost.post("/api/mail/draft", json=body, headers=headers, auth=auth)
    send = fresh_devhost.post("/api/mail/send", json=body, headers=headers, auth=auth)

    assert draft.status_code == 202 and send.status_code == 202, draft.text + send.text
    assert not send.json().get("duplicate")
    assert send.json()["operationId"] != draft.json()["operationId"]
    done = wait_status(
        fresh_devhost,
        send.json()["operationId"],
        finished,
        signing_key=key,
        connection=name,
    )
    assert done["status"] == "succeeded" and done["operation"] == "send", done
    assert sent(sandbox, subject) == 1


def test_a_signed_reply_is_not_a_forward_and_its_key_answers_for_no_forward(
    fresh_devhost, sandbox, tmp_path
):
    """The answer routes take the same guards: a signed reply replayed, re-routed to
    /api/mail/forward or unsigned is 401; a forward under the reply's idempotency key is its
    own operation, not the reply's answer."""
    from tests.functional.mailboxes import Mailboxes, until

    boxes = Mailboxes(sandbox.url, sandbox.ca)
    name, key = add_signed(fresh_devhost, tmp_path)
    subject = f"answer guards {uuid.uuid4().hex[:6]}"
    auth = caller_auth(key, name)
    asked = fresh_devhost.post(
        "/api/mail/send", json={**mail(name, subject), "from": ANNA, "to": [ADMIN]}, auth=auth
    )
    assert asked.status_code == 200, asked.text
    found = until(lambda: boxes.messages(ADMIN, "inbox", subject), sandbox.transit_seconds())
    assert found, "the original never arrived"
    answer = {"connection": name, "mailbox": ADMIN, "messageId": found[0]["id"], "to": [ANNA]}
    headers = {"Idempotency-Key": f"K-{uuid.uuid4().hex[:6]}"}
    first = signed_request(fresh_devhost, "/api/mail/reply", answer, key, name, **headers)

    accepted = resend(fresh_devhost, first)
    replayed = resend(fresh_devhost, first)
    rerouted = resend(fresh_devhost, first, url=f"{fresh_devhost.url}/api/mail/forward")
    unsigned = fresh_devhost.post("/api/mail/reply", json=answer, headers=headers)
    forwarded = fresh_devhost.post(
        "/api/mail/forward",
        json=answer,
        headers=headers,
        auth=caller_auth(key, name, idempotency_key=True),
    )

    assert accepted.status_code == 200, accepted.text
    for resp in (replayed, rerouted, unsigned):
        assert resp.status_code == 401, resp.text
        assert resp.json()["error"]["code"] == "unauthorized"
    assert forwarded.status_code == 200, forwarded.text
    assert forwarded.json()["operationId"] != accepted.json()["operationId"]
    boxes.settle(ADMIN)
    assert sent(sandbox, f"RE: {subject}") == 1 and sent(sandbox, f"FW: {subject}") == 1


# --- findings 4 and 5: names never reach another connection's secrets -----------------------


def test_finding_4_removing_a_connection_leaves_a_similar_names_user_sign_ins(
    fresh_devhost, sandbox
):
    from tests.functional.conftest import secret_client

    base = f"rm{uuid.uuid4().hex[:6]}"
    names = [
        base,
        f"{base}.user",
        base + "x" * (62 - len(base)) + "1",
        base + "x" * (62 - len(base)) + "2",
    ]
    for name in names:
        done = admin(
            fresh_devhost,
            *("add", name, "--mode", "user", "--sender", "*@contoso.test", "--secret-stdin"),
            *sandbox_flags(fresh_devhost.sandbox_url),
            stdin=SANDBOX_CLIENT_SECRET,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    client = secret_client(fresh_devhost.sandbox_url)
    sign_ins = {}
    for name in names:
        # A stored user sign-in, named and tagged as the app stores one.
        secret = secret_names.user_cache_secret(name, ANNA)
        client.set_secret(secret, "{}", tags=secret_names.tags("user-cache", name, user=ANNA))
        sign_ins[name] = secret
    client.close()

    removed = admin_json(fresh_devhost, "remove", base)
    removed_long = admin_json(fresh_devhost, "remove", names[2])

    assert sign_ins[base] in removed["removedSecrets"]
    assert read_secret(sandbox, sign_ins[base]) is None
    assert read_secret(sandbox, sign_ins[names[2]]) is None
    for survivor in (names[1], names[3]):
        assert read_secret(sandbox, sign_ins[survivor]) == "{}", survivor
        assert sign_ins[survivor] not in removed["removedSecrets"] + removed_long["removedSecrets"]


def test_finding_5_names_cannot_reach_other_secrets_and_every_unknown_name_is_the_same_404(
    fresh_devhost, sandbox, tmp_path
):
    name, key = add_signed(fresh_devhost, tmp_path)
    attacker = admin(
        fresh_devhost,
        *("add", f"{name}.signing.key", "--mode", "app", "--secret-stdin"),
        *signed_flags(fresh_devhost.sandbox_url),
        stdin=SANDBOX_CLIENT_SECRET,
    )
    assert attacker.returncode == 1 and "must not end in" in attacker.stderr
    assert read_secret(sandbox, secret_names.signing_key_secret(name)) == key

    answers = []
    for probe in (
        "contoso.test-client-secret",  # an existing secret under the old layout
        f"{name}-signing-key",
        "nobody.contoso.test",
        "X" * 200,
        "Contoso.Test",
    ):
        resp = fresh_devhost.post("/api/mail/send", json=mail(probe, "probe"))
        body = resp.json()
        body["error"].pop("operationId", None)
        answers.append((resp.status_code, body))
    assert all(a == (404, answers[0][1]) for a in answers), answers
    assert answers[0][1]["error"]["code"] == "unknown_connection"


# --- finding 7: the anonymous sign-in route -------------------------------------------------


def test_finding_7_the_anonymous_login_route_refuses_bad_names_without_key_vault_reads(
    fresh_devhost, sandbox
):
    before = sandbox.requests_log()[-1]["seq"] if sandbox.requests_log() else 0
    answers = [
        fresh_devhost.get(f"/api/auth/{probe}/login", params={"user": ANNA}, key="")
        for probe in ("Y" * 200, "bad_name", "a" * 64)
    ]
    vault_reads = [
        e
        for e in sandbox.control("GET", "requests", params={"since": before}).json()["value"]
        if "/secrets/" in e.get("path", "")
    ]
    assert [r.status_code for r in answers] == [400, 400, 400]
    assert len({r.text for r in answers}) == 1
    assert vault_reads == []


# --- finding 10: callbackUrl needs a signing key, and its query does not stay ----------------


def test_finding_10_a_callback_url_on_a_connection_without_a_signing_key_is_refused(
    fresh_devhost, sandbox
):
    # The sandbox connection of `make run` has no signing key.
    resp = fresh_devhost.post(
        "/api/mail/send",
        json=mail("contoso.test", "no key", mode="async", callbackUrl="https://127.0.0.1/cb"),
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["details"][0]["field"] == "callbackUrl"
    assert "signing key" in resp.json()["error"]["details"][0]["message"]
    assert sent(sandbox, "no key") == 0


def test_finding_10_a_finished_operation_keeps_no_callback_query(
    fresh_devhost, sandbox, azurite, tmp_path
):
    from azure.data.tables import TableClient

    from tests.e2e.background_support import CallbackReceiver, finished, wait_status
    from tests.functional.mailboxes import until

    name, key = add_signed(
        fresh_devhost, tmp_path, "--callback-host", "127.0.0.1", "--allow-private-attachment-hosts"
    )
    with CallbackReceiver(Path(sandbox.ca).parent) as receiver:
        url = receiver.url + "?sv=2024&sig=SASSECRET"
        resp = fresh_devhost.post(
            "/api/mail/send",
            json=mail(name, "callback sas", mode="async", callbackUrl=url),
            auth=caller_auth(key, name),
        )
        assert resp.status_code == 202, resp.text
        op = resp.json()["operationId"]
        assert until(lambda: receiver.received, 60)
    status = wait_status(
        fresh_devhost,
        op,
        lambda b: finished(b) and "callback" in b,
        signing_key=key,
        connection=name,
    )
    table = TableClient.from_connection_string(azurite.connection_string, "operations")
    entity = table.get_entity(op, "op")
    table.close()

    assert status["callback"]["status"] == "delivered"
    assert "SASSECRET" not in json.dumps(dict(entity))
    assert entity["callbackUrl"] == receiver.url
