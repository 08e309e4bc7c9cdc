"""OData query options over real sockets: Graph refuses what it does not know (400) instead of
answering an empty or unfiltered page, supports $search and $count on messages, and enforces
its $filter + $orderby rule.

user-list-messages.md: $top "within the range of 1 and 1000"; with $filter and $orderby the
ordered properties must appear in the filter, first and in the same order, else
InefficientFilter "The restriction or sort order is too complex for this operation.".
query-parameters.md: $search on messages (KQL; from, subject and body by default) cannot be
combined with $filter or $orderby. Unknown properties: 400 "Could not find a property named
'x' on type 'microsoft.graph.message'." (RequestBroker--ParseUri in $filter; "Parsing OData
Select and Expand failed" in $select, as public reports show it).
"""

from __future__ import annotations

import pytest

from tests.sandbox.graph_client import ADMIN, Graph, app_token, draft, rcpt

MESSAGES = f"users/{ADMIN}/messages"


@pytest.fixture
def g(fresh_sandbox) -> Graph:
    graph = Graph(fresh_sandbox.url, fresh_sandbox.ca, app_token(fresh_sandbox.url))
    draft(graph, subject="Factuur maart", body={"contentType": "text", "content": "pizza"})
    draft(graph, subject="Offerte", toRecipients=[rcpt("bram@contoso.test")])
    draft(graph, subject="Factuur april")
    return graph


def refused(g: Graph, path: str, code: str, **params: str) -> dict:
    resp = g.get(path, params=params)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == code, error
    return error


def test_an_unknown_property_in_filter_select_orderby_or_expand_is_400(g):
    error = refused(g, MESSAGES, "RequestBroker--ParseUri", **{"$filter": "subjekt eq 'x'"})
    assert error["message"] == (
        "Could not find a property named 'subjekt' on type 'microsoft.graph.message'."
    )
    error = refused(g, MESSAGES, "BadRequest", **{"$select": "id,subjekt"})
    assert error["message"].startswith("Parsing OData Select and Expand failed")
    refused(g, MESSAGES, "RequestBroker--ParseUri", **{"$orderby": "ontvangen desc"})
    refused(g, MESSAGES, "BadRequest", **{"$expand": "bijlagen"})
    refused(g, MESSAGES, "RequestBroker--ParseUri", **{"$filter": "from/emailAdres/address eq 'x'"})
    refused(g, f"users/{ADMIN}/mailFolders", "BadRequest", **{"$select": "isRead"})
    # Known properties, nested and in lambdas, pass.
    found = g.ok(
        "GET",
        MESSAGES,
        params={"$filter": "toRecipients/any(r: r/emailAddress/address eq 'bram@contoso.test')"},
    )["value"]
    assert [m["subject"] for m in found] == ["Offerte"]


def test_top_outside_1_to_1000_and_unknown_options_are_400(g):
    refused(g, MESSAGES, "BadRequest", **{"$top": "1001"})
    refused(g, MESSAGES, "BadRequest", **{"$top": "0"})
    refused(g, MESSAGES, "BadRequest", **{"$skiptoken": "abc"})
    refused(g, MESSAGES, "BadRequest", **{"$count": "yes"})
    assert len(g.ok("GET", MESSAGES, params={"$top": "1000"})["value"]) == 3


def test_count_gives_the_total_beside_a_page(g):
    page = g.ok("GET", MESSAGES, params={"$count": "true", "$top": "1"})
    assert page["@odata.count"] == 3 and len(page["value"]) == 1
    assert "@odata.count" not in g.ok("GET", MESSAGES)


def test_search_finds_by_default_properties_and_by_named_ones(g):
    def subjects(query: str) -> list[str]:
        return sorted(
            m["subject"] for m in g.ok("GET", MESSAGES, params={"$search": query})["value"]
        )

    assert subjects('"pizza"') == ["Factuur maart"]  # in the body
    assert subjects('"factuur"') == ["Factuur april", "Factuur maart"]
    assert subjects('"subject:offerte"') == ["Offerte"]
    assert subjects('"to:bram@contoso.test"') == ["Offerte"]
    assert subjects('"factuur AND NOT april"') == ["Factuur maart"]
    assert subjects('"nergens"') == []


def test_search_refuses_what_graph_refuses(g):
    refused(g, MESSAGES, "SearchWithOrderBy", **{"$search": '"x"', "$orderby": "subject"})
    refused(g, MESSAGES, "BadRequest", **{"$search": '"x"', "$filter": "isRead eq true"})
    refused(g, MESSAGES, "BadRequest", **{"$search": "unquoted"})
    refused(g, f"users/{ADMIN}/mailFolders", "BadRequest", **{"$search": '"inbox"'})


def test_filter_and_orderby_follow_graphs_rule_or_are_inefficient_filter(g):
    ok = g.ok(
        "GET",
        MESSAGES,
        params={
            "$filter": "receivedDateTime ge 2020-01-01T00:00:00Z and startswith(subject,'Fact')",
            "$orderby": "receivedDateTime desc",
        },
    )["value"]
    assert sorted(m["subject"] for m in ok) == ["Factuur april", "Factuur maart"]
    for filt, order in (
        ("startswith(subject,'Fact')", "receivedDateTime desc"),  # not in the filter
        ("subject eq 'x' and receivedDateTime ge 2020-01-01T00:00:00Z", "receivedDateTime"),
        (
            "receivedDateTime ge 2020-01-01T00:00:00Z and subject eq 'x'",
            "subject,receivedDateTime",
        ),
    ):
        error = refused(g, MESSAGES, "InefficientFilter", **{"$filter": filt, "$orderby": order})
        assert (
            error["message"] == "The restriction or sort order is too complex for this operation."
        )
