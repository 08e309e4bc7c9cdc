"""sentCopyDelayMs: after `/send` the message waits in the Outbox before its Sent Items copy
appears (Graph: the copy "is not created until the message is successfully sent")."""

from __future__ import annotations

import time

import pytest

from tests.sandbox.graph_client import ADMIN, Graph, app_token, draft, sent_items

IMMUTABLE = {"Prefer": 'IdType="ImmutableId"'}


@pytest.fixture
def g(fresh_sandbox) -> Graph:
    graph = Graph(fresh_sandbox.url, fresh_sandbox.ca, app_token(fresh_sandbox.url))
    graph.http.headers.update(IMMUTABLE)
    return graph


def _wait_for_sent(g: Graph, subject: str, timeout: float = 10.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in sent_items(g, ADMIN) if m["subject"] == subject]
        if found:
            return found
        time.sleep(0.1)
    return []


def test_sent_copy_delay_defaults_to_zero_and_resets(fresh_sandbox):
    assert fresh_sandbox.control("GET", "limits").json()["sentCopyDelayMs"] == 0
    fresh_sandbox.control("PATCH", "limits", json={"sentCopyDelayMs": 500})
    fresh_sandbox.reset()
    assert fresh_sandbox.control("GET", "limits").json()["sentCopyDelayMs"] == 0


def test_a_sent_draft_waits_in_the_outbox_before_its_sent_items_copy_appears(g, fresh_sandbox):
    fresh_sandbox.control("PATCH", "limits", json={"sentCopyDelayMs": 1500})
    msg = draft(g, subject="in flight")
    assert g.post(f"users/{ADMIN}/messages/{msg['id']}/send").status_code == 202

    # In between: not a draft any more, not in Sent Items, but in the Outbox.
    assert g.get(f"users/{ADMIN}/messages/{msg['id']}").status_code == 404
    assert sent_items(g, ADMIN) == []
    outbox = g.ok("GET", f"users/{ADMIN}/mailFolders/outbox/messages")["value"]
    assert [(m["subject"], m["isDraft"]) for m in outbox] == [("in flight", False)]

    filed = _wait_for_sent(g, "in flight")
    assert [m["id"] for m in filed] == [msg["id"]]  # the draft's immutable id, as in Graph
    assert g.ok("GET", f"users/{ADMIN}/mailFolders/outbox/messages")["value"] == []
    assert g.ok("GET", f"users/{ADMIN}/messages/{msg['id']}")["isDraft"] is False


def test_without_a_delay_the_copy_is_filed_at_once(g):
    msg = draft(g, subject="at once")
    assert g.post(f"users/{ADMIN}/messages/{msg['id']}/send").status_code == 202
    assert [m["id"] for m in sent_items(g, ADMIN)] == [msg["id"]]
