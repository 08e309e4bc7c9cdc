"""Marking an existing message as handled (read, categories added or replacing, follow-up flag).

One PATCH with only what was asked for. Setting values is idempotent, so a retried or resumed
attempt may simply mark again. Added categories are merged with the message's own
(shared.operations.marks.merged_categories).
"""

from __future__ import annotations

from urllib.parse import quote

from shared.graph.client import mailbox_path
from shared.models import Flag
from shared.operations.context import OperationContext
from shared.operations.marks import graph_marks, merged_categories


def mark(
    ctx: OperationContext,
    mailbox: str,
    message_id: str,
    *,
    mark_as_read: bool | None = None,
    categories: list[str] | None = None,
    replace_categories: bool = False,
    flag: str | Flag | None = None,
) -> None:
    """Apply the marks that were asked for (nothing asked: no call). Raises Graph's errors."""
    path = f"{mailbox_path(mailbox)}/messages/{quote(message_id, safe='')}"
    wanted: list[str] | None = None
    if categories or replace_categories:
        wanted = list(categories or [])
        if not replace_categories:
            current = ctx.graph.get(path, params={"$select": "categories"}) or {}
            wanted = merged_categories(list(current.get("categories") or []), wanted)
        wanted = merged_categories([], wanted)
    changes = graph_marks(categories=wanted, flag=flag, is_read=mark_as_read)
    if changes:
        ctx.graph.patch(path, json=changes)
