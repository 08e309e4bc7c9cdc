"""Unit tests of the sandbox's OData query options (pure logic, no I/O)."""

from __future__ import annotations

import pytest

from sandbox.graph import odata

OP_PROP = "String {00020329-0000-0000-C000-000000000046} Name OperationId"
MESSAGES = [
    {
        "subject": "Factuur 1",
        "internetMessageId": "<a@contoso.test>",
        "receivedDateTime": "2026-01-02T10:00:00Z",
        "singleValueExtendedProperties": [{"id": OP_PROP, "value": "op-1"}],
    },
    {
        "subject": "Factuur 2",
        "internetMessageId": "<b@contoso.test>",
        "receivedDateTime": "2026-01-03T10:00:00Z",
        "singleValueExtendedProperties": [{"id": OP_PROP, "value": "op-2"}],
    },
    {"subject": "Other", "internetMessageId": "<c@contoso.test>", "receivedDateTime": None},
]


def matching(expr: str) -> list[str]:
    test = odata.compile_filter(expr)
    return [m["subject"] for m in MESSAGES if test(m)]


def test_filter_by_internet_message_id_finds_exactly_that_message():
    assert matching("internetMessageId eq '<b@contoso.test>'") == ["Factuur 2"]


def test_filter_by_extended_property_lambda_finds_exactly_that_message():
    expr = f"singleValueExtendedProperties/Any(ep: ep/id eq '{OP_PROP}' and ep/value eq 'op-1')"
    assert matching(expr) == ["Factuur 1"]


def test_string_comparison_is_case_insensitive_like_exchange():
    assert matching("subject eq 'OTHER'") == ["Other"]


def test_quotes_are_escaped_by_doubling():
    node = odata.parse_filter("subject eq 'it''s'")
    assert odata.evaluate(node, {"subject": "it's"})


def test_boolean_logic_functions_and_dates():
    assert matching("startswith(subject, 'Factuur') and not (subject eq 'Factuur 1')") == [
        "Factuur 2"
    ]
    assert matching("receivedDateTime ge 2026-01-03T00:00:00Z") == ["Factuur 2"]
    assert matching("contains(subject,'tuur 1') or subject eq 'Other'") == ["Factuur 1", "Other"]


@pytest.mark.parametrize("bad", ["subject eq", "subject eq 'x' and", "(subject eq 'x'", "a ! b"])
def test_malformed_filters_raise_odata_error(bad):
    with pytest.raises(odata.ODataError):
        odata.compile_filter(bad)


def test_orderby_desc_puts_newest_first_and_missing_values_last():
    items = odata.sort_items(list(MESSAGES), odata.parse_orderby("receivedDateTime desc"))
    assert [m["subject"] for m in items] == ["Factuur 2", "Factuur 1", "Other"]


def test_expand_with_inner_filter_and_select_parse():
    expand = odata.parse_expand(f"singleValueExtendedProperties($filter=id eq '{OP_PROP}')")
    assert expand == {"singleValueExtendedProperties": f"id eq '{OP_PROP}'"}
    assert odata.parse_select("subject, from") == ["subject", "from"]
    with pytest.raises(odata.ODataError):
        odata.parse_select("subject;drop")


def test_top_is_1_to_1000_and_anything_else_is_refused():
    """user-list-messages.md: "Use `$top` to customize the page size, within the range of 1
    and 1000" (the sandbox used to clamp 1001 to 1000 silently)."""
    assert odata.parse_top(None, 10) == 10
    assert odata.parse_top("1000", 10) == 1000
    for bad in ("1001", "5000", "0", "-1", "ten"):
        with pytest.raises(odata.ODataError):
            odata.parse_top(bad, 10)
