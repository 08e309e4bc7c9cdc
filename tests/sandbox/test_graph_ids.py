"""Ids as Exchange makes them, and what happens to a client that mishandles them.

Graph's REST ids are base64 and carry '=', and '/' and '+' too (a real one in
microsoft-graph-docs issue 10167: "...B7PeJIR+T0QrZBmAeE5ZneBwDa/z/LP4...AAA="; Microsoft's own
examples end in '=': "AAMkADI5MAAIT3drCAAA=", attachment-createuploadsession.md), so a client
must percent-encode an id in a URL path. A garbage id is 400 ErrorInvalidIdMalformed "Id is
malformed." (public reports, e.g. gaiin-platform/amplify-genai-backend issue 380); a well-formed
id of nothing is 404 ErrorItemNotFound. Immutable ids are URL-safe base64 with '='
(outlook-immutable-id.md).
"""

from __future__ import annotations

import pytest

from tests.conftest import q
from tests.sandbox.graph_client import ADMIN, Graph, app_token, draft

IMMUTABLE = {"Prefer": 'IdType="ImmutableId"'}


@pytest.fixture
def g(fresh_sandbox) -> Graph:
    return Graph(fresh_sandbox.url, fresh_sandbox.ca, app_token(fresh_sandbox.url))


def error_of(resp) -> tuple[int, str]:
    return resp.status_code, resp.json()["error"]["code"]


def test_rest_ids_carry_slash_plus_and_equals_and_immutable_ids_are_url_safe(g):
    msg = draft(g)
    folder = g.ok("GET", f"users/{ADMIN}/mailFolders/inbox")
    for value in (msg["id"], folder["id"], msg["parentFolderId"]):
        assert "/" in value and "+" in value and value.endswith("=")
    immutable = g.ok("GET", f"users/{ADMIN}/messages/{q(msg['id'])}", headers=IMMUTABLE)["id"]
    assert immutable.endswith("=") and "/" not in immutable and "+" not in immutable


def test_an_id_that_is_not_percent_encoded_fails(g):
    msg = draft(g)
    raw = g.get(f"users/{ADMIN}/messages/{msg['id']}")  # '/' splits it, '+' reads as a space
    assert raw.status_code == 400
    encoded = g.get(f"users/{ADMIN}/messages/{q(msg['id'])}")
    assert encoded.status_code == 200 and encoded.json()["id"] == msg["id"]
    only_plus = msg["id"].replace("/", "%2F")  # '+' left raw
    assert error_of(g.get(f"users/{ADMIN}/messages/{only_plus}")) == (
        400,
        "ErrorInvalidIdMalformed",
    )
    # '=' may stay raw, as in Microsoft's examples.
    assert g.get(f"users/{ADMIN}/messages/{q(msg['id'])[:-3]}=").status_code == 200


@pytest.mark.parametrize("garbage", ["not-an-id", "12345", "AAMkAD%3D%3D", "x" * 200])
def test_a_garbage_id_is_400_malformed_and_a_well_formed_unknown_one_404(g, garbage):
    resp = g.get(f"users/{ADMIN}/messages/{garbage}")
    assert error_of(resp) == (400, "ErrorInvalidIdMalformed")
    assert resp.json()["error"]["message"] == "Id is malformed."
    msg = draft(g)
    g.call("DELETE", f"users/{ADMIN}/messages/{q(msg['id'])}")
    assert error_of(g.get(f"users/{ADMIN}/messages/{q(msg['id'])}")) == (404, "ErrorItemNotFound")
    bad_folder = g.get(f"users/{ADMIN}/mailFolders/{garbage}/messages")
    assert error_of(bad_folder) == (400, "ErrorInvalidIdMalformed")
    move = g.post(
        f"users/{ADMIN}/messages/{q(draft(g)['id'])}/move", json={"destinationId": garbage}
    )
    assert error_of(move) == (400, "ErrorInvalidIdMalformed")
