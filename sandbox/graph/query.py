"""A collection answer: query options checked, then $search or $filter, $orderby, paging with
@odata.nextLink ($skip), $count and $select/$expand applied by the caller's `shape`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from sandbox.graph import odata, search
from sandbox.web import Request

Shape = Callable[[dict[str, Any], list[str] | None, dict[str, str | None]], dict[str, Any]]


def page(
    req: Request,
    items: list[dict[str, Any]],
    shape: Shape,
    *,
    type_name: str,
    context: str,
    default_top: int = 10,
    attachment_names: Callable[[dict], str] | None = None,
) -> dict[str, Any]:
    """Filter (or search), order and cut `items` into a page; `shape(item, select, expand)`
    renders each. `context` is the page's @odata.context. Raises ODataError (400)."""
    odata.check_options(list(req.query))
    select = odata.parse_select(req.arg("$select"), type_name)
    expand = odata.parse_expand(req.arg("$expand"), type_name)
    orderby = odata.parse_orderby(req.arg("$orderby"), type_name)
    top = odata.parse_top(req.arg("$top"), default_top)
    skip = odata.parse_skip(req.arg("$skip"))
    count = odata.parse_count(req.arg("$count"))
    filter_text = req.arg("$filter")
    search_text = req.arg("$search")
    if search_text is not None:
        if type_name != "message" or attachment_names is None:
            raise odata.ODataError("$search is not supported on this collection.")
        if orderby:
            raise odata.ODataError(
                "The query parameter '$orderBy' is not supported with '$search'.",
                "SearchWithOrderBy",
            )
        if filter_text:
            raise odata.ODataError("The query parameter '$filter' is not supported with '$search'.")
        test = search.compile_search(search_text, attachment_names)
        items = [i for i in items if test(i)]
        items.sort(key=lambda m: m.get("sentDateTime") or "", reverse=True)
        items = items[: search.MAX_RESULTS]
    elif filter_text:
        node = odata.parse_filter(filter_text)
        odata.check_filter(node, type_name)
        if orderby and type_name == "message":
            odata.check_filter_and_orderby(node, orderby)
        items = [i for i in items if odata.evaluate(node, i)]
    odata.sort_items(items, orderby)
    chosen = items[skip : skip + top]
    body: dict[str, Any] = {"@odata.context": context}
    if count:
        body["@odata.count"] = len(items)
    body["value"] = [shape(i, select, expand) for i in chosen]
    if skip + top < len(items):
        query = {k: v[0] for k, v in req.query.items()}
        query["$skip"] = str(skip + top)
        query["$top"] = str(top)
        body["@odata.nextLink"] = f"{req.base_url}{req.path}?{urlencode(query, quote_via=quote)}"
    return body
