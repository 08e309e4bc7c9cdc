"""Graph's resource shapes: messages (with $select/$expand), folders and attachments."""

from __future__ import annotations

import base64
import json
import sqlite3
from typing import Any
from urllib.parse import quote

from sandbox.graph import bodies, model, odata
from sandbox.graph.errors import bad_request
from sandbox.graph.store import Store
from sandbox.web import Request

# What a message shows without $select (internetMessageHeaders and extended properties only
# when asked for, as Graph does).
DEFAULT_MESSAGE_FIELDS = (
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "receivedDateTime",
    "sentDateTime",
    "hasAttachments",
    "internetMessageId",
    "subject",
    "bodyPreview",
    "importance",
    "parentFolderId",
    "conversationId",
    "conversationIndex",
    "isDeliveryReceiptRequested",
    "isReadReceiptRequested",
    "isRead",
    "isDraft",
    "webLink",
    "inferenceClassification",
    "body",
    "sender",
    "from",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "flag",
)


class Renderer:
    """Turns stored rows into Graph's JSON."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def folder(self, row: sqlite3.Row) -> dict[str, Any]:
        children, total, unread = self.store.folder_counts(row["id"])
        return {
            "id": row["id"],
            "displayName": row["name"],
            "parentFolderId": row["parent_id"] or row["id"],
            "childFolderCount": children,
            "unreadItemCount": unread,
            "totalItemCount": total,
            "isHidden": False,
        }

    def message(self, row: sqlite3.Row, req: Request, immutable: bool) -> dict[str, Any]:
        """The full resource (every property, for $filter); project() trims it for output."""
        data = json.loads(row["data"])
        msg_id = row["immutable_id"] if immutable else row["id"]
        has_files = any(not a["is_inline"] for a in self.store.attachments(row["immutable_id"]))
        out = {"@odata.etag": f'W/"{data.get("changeKey", "")}"', "id": msg_id}
        out.update((k, v) for k, v in data.items() if not k.startswith(model.INTERNAL_PREFIX))
        out["bodyPreview"] = model.preview(data.get("body"))
        out["parentFolderId"] = row["folder_id"]
        out["hasAttachments"] = has_files
        out["webLink"] = f"{req.base_url}/ui/messages/{quote(row['immutable_id'], safe='')}"
        out["body"] = bodies.render(data.get("body"), bodies.preferred(req.headers.get("prefer")))
        return out

    @staticmethod
    def project(
        full: dict[str, Any], select: list[str] | None, expand: dict[str, str | None]
    ) -> dict[str, Any]:
        """The properties $select asks for (or the defaults) plus what $expand adds."""
        names = select or list(DEFAULT_MESSAGE_FIELDS)
        wanted = {n.lower() for n in names}
        out = {k: v for k, v in full.items() if k in ("@odata.etag", "id") or k.lower() in wanted}
        out.pop("singleValueExtendedProperties", None)
        for nav, inner in expand.items():
            if nav.lower() != "singlevalueextendedproperties":
                raise bad_request(f"Expanding '{nav}' is not supported by the sandbox.")
            test = odata.compile_filter(inner)
            props = [p for p in full.get("singleValueExtendedProperties") or [] if test(p)]
            if props:
                out["singleValueExtendedProperties"] = props
        return out

    def attachment(
        self, att: sqlite3.Row, with_bytes: bool = True, with_item: bool = False
    ) -> dict[str, Any]:
        if att["kind"] == "item":
            # itemattachment.md: no contentBytes; the item only with
            # $expand=microsoft.graph.itemattachment/item.
            item: dict[str, Any] = {
                "id": att["id"],
                "@odata.type": "#microsoft.graph.itemAttachment",
                "lastModifiedDateTime": att["modified"],
                "name": att["name"],
                "contentType": None,
                "size": att["size"],
                "isInline": False,
            }
            if with_item:
                fields = json.loads(self.store.content(att))
                item["item"] = {"@odata.type": "#microsoft.graph.message", **fields}
            return item
        out: dict[str, Any] = {
            "@odata.type": "#microsoft.graph.fileAttachment",
            "id": att["id"],
            "lastModifiedDateTime": att["modified"],
            "name": att["name"],
            "contentType": att["content_type"],
            "size": att["size"],
            "isInline": bool(att["is_inline"]),
            "contentId": att["content_id"],
            "contentLocation": None,
        }
        if with_bytes:
            out["contentBytes"] = base64.b64encode(self.store.content(att)).decode()
        return out


def entity_context(req: Request, mailbox_id: str, path: str) -> str:
    """@odata.context of one entity, e.g. `...$metadata#users('id')/messages/$entity`."""
    return f"{req.base_url}/v1.0/$metadata#users('{mailbox_id}')/{path}/$entity"


def collection_context(
    req: Request, mailbox_id: str, path: str, select: list[str] | None = None
) -> str:
    """@odata.context of a collection (with the $select list, as Graph writes it)."""
    chosen = f"({','.join(select)})" if select else ""
    return f"{req.base_url}/v1.0/$metadata#users('{mailbox_id}')/{path}{chosen}"


def with_context(context: str, resource: dict[str, Any]) -> dict[str, Any]:
    """`resource` with @odata.context first, as Graph orders it."""
    return {"@odata.context": context, **resource}


def select_plain(item: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    """$select on a resource without defaults (folders, attachments)."""
    if not select:
        return item
    wanted = {s.lower() for s in select}
    return {k: v for k, v in item.items() if k in ("id", "@odata.type") or k.lower() in wanted}


def recipient(box: Any) -> dict[str, Any]:
    """A recipient object for a directory mailbox."""
    return {"emailAddress": {"name": box.display_name, "address": box.address}}
