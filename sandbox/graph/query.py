"""A collection answer: $filter, $orderby, $top/$skip paging with @odata.nextLink, $select."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from sandbox.graph import odata
from sandbox.web import Request


def page(
    req: Request,
    items: list[dict[str, Any]],
    shape: Callable[[dict[str, Any], list[str] | None, dict[str, str | None]], dict[str, Any]],
    default_top: int = 10,
) -> dict[str, Any]:
    """Filter, order and cut `items` into a page; `shape(item, select, expand)` renders each."""
    test = odata.compile_filter(req.arg("$filter"))
    items = [i for i in items if test(i)]
    odata.sort_items(items, odata.parse_orderby(req.arg("$orderby")))
    top = odata.parse_top(req.arg("$top"), default_top)
    skip = odata.parse_skip(req.arg("$skip"))
    chosen = items[skip : skip + top]
    select = odata.parse_select(req.arg("$select"))
    expand = odata.parse_expand(req.arg("$expand"))
    body: dict[str, Any] = {"@odata.context": f"{req.base_url}/v1.0/$metadata"}
    body["value"] = [shape(i, select, expand) for i in chosen]
    if skip + top < len(items):
        query = {k: v[0] for k, v in req.query.items()}
        query["$skip"] = str(skip + top)
        query["$top"] = str(top)
        body["@odata.nextLink"] = f"{req.base_url}{req.path}?{urlencode(query, quote_via=quote)}"
    return body
