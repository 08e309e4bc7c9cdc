"""Realistic timing by default: a sent mail waits in the Outbox before its Sent Items copy and
its recipients' copies appear, and a mailbox sends at most 30 mails a minute.

outlook-things-to-know-about-send-mail.md: the send call returns 202 after step 1; transport
moves the message to Sent Items (step 4) and delivers it (steps 5-6) afterwards. Exchange
Online's sending limit is 30 messages a minute. The instant mode (no delay, no rate) is an
explicit choice (docs/sandbox.md, "Timing").
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import INSTANT_TIMING, q
from tests.sandbox.graph_client import ADMIN, ANNA, Graph, app_token, draft, eventually, sent_items

IMMUTABLE = {"Prefer": 'IdType="ImmutableId"'}


@pytest.fixture
def g(fresh_sandbox) -> Graph:
    graph = Graph(fresh_sandbox.url, fresh_sandbox.ca, app_token(fresh_sandbox.url))
    graph.http.headers.update(IMMUTABLE)
    return graph


def inbox_subjects(g: Graph, mailbox: str) -> list[str]:
    return [
        m["subject"] for m in g.ok("GET", f"users/{mailbox}/mailFolders/inbox/messages")["value"]
    ]


def test_the_default_timing_is_realistic_and_a_reset_restores_it(fresh_sandbox):
    limits = fresh_sandbox.limits()
    assert limits["sentCopyDelayMs"] > 0
    assert limits["sendRatePerMinute"] == 30
    assert limits["sendRateMode"] == "reject"
    fresh_sandbox.instant()
    assert {k: fresh_sandbox.limits()[k] for k in INSTANT_TIMING} == INSTANT_TIMING
    fresh_sandbox.reset()
    assert fresh_sandbox.limits()["sentCopyDelayMs"] == limits["sentCopyDelayMs"]
    assert fresh_sandbox.limits()["sendRatePerMinute"] == 30


def test_a_sent_draft_waits_in_the_outbox_before_sent_items_and_recipients_get_it(g, fresh_sandbox):
    fresh_sandbox.control("PATCH", "limits", json={"sentCopyDelayMs": 1500})
    msg = draft(g, subject="in flight")
    assert g.post(f"users/{ADMIN}/messages/{q(msg['id'])}/send").status_code == 202

    # In between: not a draft any more, not in Sent Items, not delivered, but in the Outbox.
    assert g.get(f"users/{ADMIN}/messages/{q(msg['id'])}").status_code == 404
    assert sent_items(g, ADMIN) == []
    assert "in flight" not in inbox_subjects(g, ANNA)
    outbox = g.ok("GET", f"users/{ADMIN}/mailFolders/outbox/messages")["value"]
    assert [(m["subject"], m["isDraft"]) for m in outbox] == [("in flight", False)]

    filed = eventually(lambda: sent_items(g, ADMIN), fresh_sandbox.transit_seconds())
    assert [m["id"] for m in filed] == [msg["id"]]  # the draft's immutable id, as in Graph
    assert g.ok("GET", f"users/{ADMIN}/mailFolders/outbox/messages")["value"] == []
    assert g.ok("GET", f"users/{ADMIN}/messages/{q(msg['id'])}")["isDraft"] is False
    assert "in flight" in inbox_subjects(g, ANNA)


def test_send_mail_goes_through_the_outbox_too(g, fresh_sandbox):
    fresh_sandbox.control("PATCH", "limits", json={"sentCopyDelayMs": 1500})
    message = {"subject": "direct", "toRecipients": [{"emailAddress": {"address": ANNA}}]}
    assert g.post(f"users/{ADMIN}/sendMail", json={"message": message}).status_code == 202
    assert sent_items(g, ADMIN) == []
    filed = eventually(lambda: sent_items(g, ADMIN), fresh_sandbox.transit_seconds())
    assert [m["subject"] for m in filed] == ["direct"]
    assert inbox_subjects(g, ANNA) == ["direct"]


def test_the_copy_is_filed_without_anyone_asking_graph(g, fresh_sandbox):
    """The Outbox drains on its own time, not only when the next Graph request comes in: the
    web view (which reads the store, not Graph) shows the copy once it is due."""
    fresh_sandbox.control("PATCH", "limits", json={"sentCopyDelayMs": 300})
    msg = draft(g, subject="on its own")
    assert g.post(f"users/{ADMIN}/messages/{q(msg['id'])}/send").status_code == 202
    page = f"{fresh_sandbox.url}/ui/mailboxes/contoso.test/{ADMIN}/folders/sentitems"
    deadline = time.monotonic() + fresh_sandbox.transit_seconds()
    seen = False
    while not seen and time.monotonic() < deadline:
        seen = "on its own" in fresh_sandbox.http.get(page, timeout=10).text
        time.sleep(0.1)
    assert seen


def test_instant_mode_files_the_copy_at_once(g, fresh_sandbox):
    fresh_sandbox.instant()
    msg = draft(g, subject="at once")
    assert g.post(f"users/{ADMIN}/messages/{q(msg['id'])}/send").status_code == 202
    assert [m["id"] for m in sent_items(g, ADMIN)] == [msg["id"]]
    assert inbox_subjects(g, ANNA) == ["at once"]


def test_hold_mode_keeps_mail_over_the_rate_in_the_outbox_instead_of_refusing_it(g, fresh_sandbox):
    """sendRateMode "hold": over the rate the send is still accepted (202) and the message
    leaves the Outbox when the rate allows it; "reject" (the default) answers 429."""
    fresh_sandbox.control(
        "PATCH",
        "limits",
        json={"sendRatePerMinute": 1, "sendRateMode": "hold", "sentCopyDelayMs": 0},
    )
    message = {"subject": "held", "toRecipients": [{"emailAddress": {"address": ANNA}}]}
    first = g.post(f"users/{ADMIN}/sendMail", json={"message": message})
    second = g.post(f"users/{ADMIN}/sendMail", json={"message": message})
    assert (first.status_code, second.status_code) == (202, 202)
    assert len(sent_items(g, ADMIN)) == 1
    outbox = g.ok("GET", f"users/{ADMIN}/mailFolders/outbox/messages")["value"]
    assert [m["subject"] for m in outbox] == ["held"]
    bad = fresh_sandbox.http.patch(
        f"{fresh_sandbox.url}/_sandbox/limits", json={"sendRateMode": "queue"}
    )
    assert bad.status_code == 400


def test_mail_in_transit_when_the_sandbox_stops_goes_out_after_a_restart(tmp_path, monkeypatch):
    """With --state the Outbox's schedule survives a restart, as Exchange's transport queue
    would: a mail accepted (202) is never silently lost."""
    from devhost.services import start_sandbox

    first = start_sandbox(port=0, state_dir=tmp_path)
    try:
        url, ca = first.info["url"], first.info["ca"]
        # This sandbox has its own CA (MSAL reads the bundle from the environment).
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca)
        monkeypatch.setenv("SSL_CERT_FILE", ca)
        g = Graph(url, ca, app_token(url))
        g.http.patch(f"{url}/_sandbox/limits", json={"sentCopyDelayMs": 3000}, timeout=10)
        message = {"subject": "survivor", "toRecipients": [{"emailAddress": {"address": ANNA}}]}
        assert g.post(f"users/{ADMIN}/sendMail", json={"message": message}).status_code == 202
    finally:
        first.stop()
    second = start_sandbox(port=0, state_dir=tmp_path)
    try:
        url = second.info["url"]
        g = Graph(url, ca, app_token(url))
        filed = eventually(lambda: sent_items(g, ADMIN), 3 + 15.0)
        assert [m["subject"] for m in filed] == ["survivor"]
        assert inbox_subjects(g, ANNA) == ["survivor"]
    finally:
        second.stop()


def test_the_command_line_serves_realistic_timing_unless_told_instant():
    import argparse

    from sandbox.__main__ import load_seed

    realistic = load_seed(argparse.Namespace(seed=None, timing="realistic"))["limits"]
    assert realistic["sentCopyDelayMs"] > 0 and realistic["sendRatePerMinute"] == 30
    instant = load_seed(argparse.Namespace(seed=None, timing="instant"))["limits"]
    assert {k: instant[k] for k in INSTANT_TIMING} == INSTANT_TIMING
