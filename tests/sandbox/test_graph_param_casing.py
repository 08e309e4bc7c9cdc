"""The sandbox reads sendMail's parameters case-insensitively, as Graph does (msgraph-sdk sends
"Message" / "SaveToSentItems")."""

from __future__ import annotations

from tests.sandbox.graph_client import ADMIN, ANNA, Graph, app_token, sent_items


def test_send_mail_with_pascal_case_parameters_is_accepted_and_honoured(fresh_sandbox):
    g = Graph(fresh_sandbox.url, fresh_sandbox.ca, app_token(fresh_sandbox.url))
    message = {
        "subject": "pascal case",
        "body": {"contentType": "text", "content": "as msgraph-sdk writes it"},
        "toRecipients": [{"emailAddress": {"address": ANNA}}],
    }
    g.ok("POST", f"users/{ADMIN}/sendMail", 202, json={"Message": message})
    g.ok(
        "POST", f"users/{ADMIN}/sendMail", 202, json={"Message": message, "SaveToSentItems": False}
    )
    copies = [m for m in sent_items(g, ADMIN) if m["subject"] == "pascal case"]
    assert len(copies) == 1  # the second one asked for no copy, and got none
