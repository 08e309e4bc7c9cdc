"""Upload sessions, the upload throttle, injected errors and Graph's access tokens, as
Microsoft documents them.

outlook-large-attachments.md: each chunk is answered 200 with "ExpirationDateTime" (that
spelling) and nextExpectedRanges. throttling-limits.md (Outlook): "150 megabytes (MB) upload
(PATCH, POST, PUT) in a 5-minute period" per app and mailbox. Every Graph error carries
`innerError` with request-id, date and client-request-id (errors.md), an injected one too.
Access tokens for Graph are v1.0 tokens (iss https://sts.windows.net/{tenant}/, ver 1.0), as
Entra issues them for resources that accept v1.0 (access-tokens.md).
"""

from __future__ import annotations

import base64

import jwt
import pytest

from tests.conftest import SEED_TENANT_ID, q
from tests.sandbox.graph_client import ADMIN, MB, Graph, app_token, draft, upload


@pytest.fixture
def g(fresh_sandbox) -> Graph:
    return Graph(fresh_sandbox.url, fresh_sandbox.ca, app_token(fresh_sandbox.url))


def open_session(g: Graph, size: int) -> dict:
    msg = draft(g)
    return g.ok(
        "POST",
        f"users/{ADMIN}/messages/{q(msg['id'])}/attachments/createUploadSession",
        201,
        json={"AttachmentItem": {"attachmentType": "file", "name": "a.bin", "size": size}},
    )


def test_chunk_answers_carry_expiration_date_time_as_graph_spells_it(g, fresh_sandbox):
    session = open_session(g, 5 * MB)
    first = upload(session["uploadUrl"], fresh_sandbox.ca, b"\0" * (5 * MB))[0]
    assert first.status_code == 200
    body = first.json()
    assert body["ExpirationDateTime"] == session["expirationDateTime"]
    assert body["nextExpectedRanges"] == [str(4 * MB)]
    assert "expirationDateTime" not in body


def test_uploads_over_the_5_minute_volume_are_throttled_per_app_and_mailbox(g, fresh_sandbox):
    fresh_sandbox.control("PATCH", "limits", json={"uploadBytesPer5Minutes": 6 * MB})
    session = open_session(g, 8 * MB)
    answers = upload(session["uploadUrl"], fresh_sandbox.ca, b"\0" * (8 * MB))
    assert [a.status_code for a in answers] == [200, 429]
    assert answers[1].json()["error"]["code"] == "ApplicationThrottled"
    assert int(answers[1].headers["Retry-After"]) >= 1
    # POST bodies count too, for that app and mailbox only.
    attachment = {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": "b.bin",
        "contentBytes": base64.b64encode(b"\0" * (2 * MB)).decode(),
    }
    msg = draft(g, subject="other mailbox", toRecipients=[])
    over = g.post(f"users/{ADMIN}/messages/{q(msg['id'])}/attachments", json=attachment)
    assert over.status_code == 429
    other = g.post("users/anna@contoso.test/messages", json={"subject": "fits"})
    assert other.status_code == 201


def test_an_injected_503_has_graphs_error_shape_with_inner_error(g, fresh_sandbox):
    fresh_sandbox.add_fault(path=r"^/v1\.0/", action="status", status=503, retryAfter=1, times=1)
    resp = g.get(f"users/{ADMIN}/mailFolders/inbox", headers={"client-request-id": "abc-503"})
    assert resp.status_code == 503
    inner = resp.json()["error"]["innerError"]
    assert inner["client-request-id"] == "abc-503" and inner["date"]
    assert inner["request-id"] == resp.headers["request-id"]
    assert resp.headers["client-request-id"] == "abc-503"


def test_graph_access_tokens_are_v1_tokens(fresh_sandbox):
    claims = jwt.decode(app_token(fresh_sandbox.url), options={"verify_signature": False})
    assert claims["iss"] == f"https://sts.windows.net/{SEED_TENANT_ID}/"
    assert claims["ver"] == "1.0"
    assert "azp" not in claims and claims["appid"]
