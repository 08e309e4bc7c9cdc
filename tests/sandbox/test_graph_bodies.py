"""Message bodies come back as HTML unless the client asks for text.

user-list-messages.md: "Currently, this operation returns message bodies in only HTML format"
and `Prefer: outlook.body-content-type` "text" or "html" chooses ("If the header is not
specified, the body and uniqueBody properties are returned in HTML format"). An HTML body is
returned as a whole document (user-post-messages.md, example 1: "<html>\\r\\n<head>\\r\\n<meta
http-equiv=\\"Content-Type\\" ...").
"""

from __future__ import annotations

import pytest

from tests.conftest import q
from tests.sandbox.graph_client import ADMIN, Graph, app_token, draft

TEXT = {"Prefer": 'outlook.body-content-type="text"'}


@pytest.fixture
def g(fresh_sandbox) -> Graph:
    return Graph(fresh_sandbox.url, fresh_sandbox.ca, app_token(fresh_sandbox.url))


def test_a_text_body_comes_back_as_html_unless_text_is_preferred(g):
    msg = draft(g, body={"contentType": "text", "content": "Regel 1\nRegel <2> & 3"})
    assert msg["body"]["contentType"] == "html"
    content = msg["body"]["content"]
    assert content.startswith('<html>\r\n<head>\r\n<meta http-equiv="Content-Type"')
    assert "Regel 1<br>" in content and "Regel &lt;2&gt; &amp; 3" in content
    resp = g.get(f"users/{ADMIN}/messages/{q(msg['id'])}", headers=TEXT)
    assert resp.json()["body"] == {"contentType": "text", "content": "Regel 1\nRegel <2> & 3"}
    assert resp.headers["Preference-Applied"] == 'outlook.body-content-type="text"'


def test_an_html_body_is_wrapped_as_a_document_and_flattened_for_text(g):
    msg = draft(g, body={"contentType": "HTML", "content": "<p>Zie <b>bijlage</b></p>"})
    assert msg["body"]["contentType"] == "html"
    assert "<body>\r\n<p>Zie <b>bijlage</b></p>\r\n</body>" in msg["body"]["content"]
    listed = g.ok("GET", f"users/{ADMIN}/messages", headers=TEXT)["value"]
    assert listed[0]["body"] == {"contentType": "text", "content": "Zie bijlage"}
    html = g.ok(
        "GET",
        f"users/{ADMIN}/messages/{q(msg['id'])}",
        headers={"Prefer": 'outlook.body-content-type="html"'},
    )
    assert html["body"]["content"].startswith("<html>")
