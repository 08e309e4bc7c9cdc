"""Graph v1.0 mail endpoints: one envelope (auth, mailbox, throttle, errors) around each call."""

from __future__ import annotations

import base64
import copy
import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlencode

from sandbox.context import GRAPH_RESOURCE, Principal, SandboxContext
from sandbox.graph import model, odata
from sandbox.graph.errors import (
    GraphError,
    bad_request,
    error_response,
    id_headers,
    invalid_user,
    item_not_found,
    send_as_denied,
    too_large,
)
from sandbox.graph.permissions import check_mailbox_access, resolve_sender
from sandbox.graph.store import Store, new_id, now_iso
from sandbox.graph.throttle import Throttle
from sandbox.graph.uploads import Uploads
from sandbox.tokens import TokenError
from sandbox.web import BadRequestBody, Request, Response

_MB = r"(?:users/(?P<user>[^/]+)|me)"
_DEFAULT_FIELDS = (
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
_TOKEN_MESSAGES = {
    "missing": "Access token is empty.",
    "expired": "Lifetime validation failed, the token is expired.",
}


@dataclass
class Call:
    """What one operation gets: the request, the caller and the mailbox in the URL."""

    req: Request
    principal: Principal
    mailbox: Any  # sandbox.directory.Mailbox
    params: dict[str, str]

    @property
    def immutable(self) -> bool:
        return 'idtype="immutableid"' in (self.req.headers.get("prefer") or "").lower()


Op = Callable[[Call], Response]


class GraphApi:
    """The Graph surface: routes `/v1.0/...` to operations on the Store."""

    def __init__(self, ctx: SandboxContext, store: Store, throttle: Throttle) -> None:
        self.ctx = ctx
        self.store = store
        self.throttle = throttle
        self.uploads = Uploads(ctx, store)
        # Sent drafts waiting in the Outbox (sentCopyDelayMs): (due, mailbox, outbox immutable
        # id, the draft's immutable id, Sent Items folder id).
        self._outbox: list[tuple[float, str, str, str, str]] = []
        self._outbox_lock = threading.Lock()
        self.routes: list[tuple[frozenset[str], re.Pattern[str], Op]] = []
        add = self._add
        add("GET POST", rf"{_MB}/mailFolders", self.folders)
        add("GET", rf"{_MB}/mailFolders/(?P<folder>[^/]+)", self.get_folder)
        add("GET POST", rf"{_MB}/mailFolders/(?P<folder>[^/]+)/childFolders", self.folders)
        add("GET POST", rf"{_MB}/mailFolders/(?P<folder>[^/]+)/messages", self.messages)
        add("GET POST", rf"{_MB}/messages", self.messages)
        msg = rf"{_MB}(?:/mailFolders/[^/]+)?/messages/(?P<message>[^/]+)"
        add("GET PATCH DELETE", msg, self.message)
        add("POST", rf"{msg}/send", self.send_draft)
        add("POST", rf"{msg}/move", self.move)
        add("POST", rf"{msg}/copy", self.copy)
        add("GET POST", rf"{msg}/attachments", self.attachments)
        add("POST", rf"{msg}/attachments/createUploadSession", self.create_upload)
        add("GET DELETE", rf"{msg}/attachments/(?P<attachment>[^/]+)", self.attachment)
        add("GET", rf"{msg}/attachments/(?P<attachment>[^/]+)/\$value", self.attachment_value)
        add("POST", rf"{_MB}/sendMail", self.send_mail)

    def _add(self, methods: str, pattern: str, op: Op) -> None:
        self.routes.append((frozenset(methods.split()), re.compile(pattern, re.I), op))

    # -- the envelope ------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        """Every /v1.0 request: size, token, route, mailbox, throttle, operation, errors."""
        try:
            response = self._handle(req)
        except GraphError as err:
            response = error_response(req, err)
        except (BadRequestBody, odata.ODataError) as exc:
            response = error_response(req, bad_request(str(exc)))
        response.headers.update(id_headers(req))
        return response

    def _handle(self, req: Request) -> Response:
        self.release_outbox()
        maximum = int(self.ctx.limits.get("maxRequestBytes", 4 * 1024 * 1024))
        if len(req.body) > maximum:
            raise too_large(maximum)
        try:
            principal = self.ctx.tokens.verify(
                req.headers.get("authorization"), GRAPH_RESOURCE, request=req
            )
        except TokenError as exc:
            message = _TOKEN_MESSAGES.get(exc.code, exc.message)
            raise GraphError(401, "InvalidAuthenticationToken", message) from exc
        rest = req.params.get("rest", "")
        op, params = self._match(req.method, rest)
        mailbox = self._mailbox(principal, params.get("user"))
        self.store.ensure_mailbox(mailbox.id)
        key = (principal.tenant_id, principal.app_id, principal.user or "", mailbox.id)
        with self.throttle.slot(key):
            # Inside the slot: an injected `delay` fault then holds a concurrency slot, as a
            # slow Exchange backend would.
            req.apply_fault_delay()
            response = op(Call(req, principal, mailbox, params))
        if 'idtype="immutableid"' in (req.headers.get("prefer") or "").lower():
            response.headers["Preference-Applied"] = 'IdType="ImmutableId"'
        return response

    def _match(self, method: str, rest: str) -> tuple[Op, dict[str, str]]:
        known = False
        for methods, pattern, op in self.routes:
            m = pattern.fullmatch(rest)
            if m:
                if method in methods:
                    params = {k: unquote(v) for k, v in m.groupdict().items() if v is not None}
                    return op, params
                known = True
        if known:
            raise GraphError(405, "Request_BadRequest", f"The method {method} is not allowed.")
        segment = rest.split("/")[-1] if rest else ""
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")

    def _mailbox(self, principal: Principal, user: str | None) -> Any:
        if user is None:
            if principal.kind != "user":
                raise bad_request("/me request is only valid with delegated authentication flow.")
            user = principal.user or ""
        name = user.strip("'\"")
        mailbox = self.ctx.directory.mailbox(principal.tenant_id, name)
        if mailbox is None:
            raise invalid_user(name)
        return mailbox

    def _rights(self, principal: Principal, address: str) -> frozenset[str]:
        if principal.kind != "user" or not principal.user:
            return frozenset()
        return self.ctx.directory.rights(principal.tenant_id, principal.user, address)

    def _allow(self, call: Call, *, write: bool) -> None:
        address = call.mailbox.address
        check_mailbox_access(
            call.principal, address, self._rights(call.principal, address), write=write
        )

    # -- rendering ---------------------------------------------------------------------------

    def _folder_json(self, row: sqlite3.Row) -> dict[str, Any]:
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

    def message_json(self, row: sqlite3.Row, req: Request, immutable: bool) -> dict[str, Any]:
        """The full resource (every property, for $filter); project() trims it for output."""
        data = json.loads(row["data"])
        msg_id = row["immutable_id"] if immutable else row["id"]
        has_files = any(not a["is_inline"] for a in self.store.attachments(row["immutable_id"]))
        out = {"@odata.etag": f'W/"{data.get("changeKey", "")}"', "id": msg_id}
        out.update(data)
        out["bodyPreview"] = model.preview(data.get("body"))
        out["parentFolderId"] = row["folder_id"]
        out["hasAttachments"] = has_files
        out["webLink"] = f"{req.base_url}/ui/messages/{quote(row['immutable_id'])}"
        return out

    @staticmethod
    def project(
        full: dict[str, Any], select: list[str] | None, expand: dict[str, str | None]
    ) -> dict[str, Any]:
        names = select or list(_DEFAULT_FIELDS)
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

    def _page(
        self,
        call: Call,
        items: list[dict[str, Any]],
        default_top: int = 10,
        *,
        messages: bool = False,
    ) -> dict[str, Any]:
        """Filter, order, and cut `items` into a page with @odata.nextLink (via $skip)."""
        req = call.req
        test = odata.compile_filter(req.arg("$filter"))
        items = [i for i in items if test(i)]
        odata.sort_items(items, odata.parse_orderby(req.arg("$orderby")))
        top = odata.parse_top(req.arg("$top"), default_top)
        skip = odata.parse_skip(req.arg("$skip"))
        page = items[skip : skip + top]
        body: dict[str, Any] = {"@odata.context": f"{req.base_url}/v1.0/$metadata"}
        select = odata.parse_select(req.arg("$select"))
        expand = odata.parse_expand(req.arg("$expand"))
        if messages:
            body["value"] = [self.project(i, select, expand) for i in page]
        else:
            body["value"] = [_select_plain(i, select) for i in page]
        if skip + top < len(items):
            query = {k: v[0] for k, v in req.query.items()}
            query["$skip"] = str(skip + top)
            query["$top"] = str(top)
            body["@odata.nextLink"] = (
                f"{req.base_url}{req.path}?{urlencode(query, quote_via=quote)}"
            )
        return body

    def _message_row(self, call: Call) -> sqlite3.Row:
        row = self.store.message(call.mailbox.id, call.params["message"])
        if row is None:
            raise item_not_found()
        return row

    def _folder_row(self, call: Call, ref: str) -> sqlite3.Row:
        row = self.store.folder(call.mailbox.id, ref)
        if row is None:
            raise item_not_found()
        return row

    def _one_message(self, call: Call, row: sqlite3.Row, status: int = 200) -> Response:
        full = self.message_json(row, call.req, call.immutable)
        select = odata.parse_select(call.req.arg("$select"))
        expand = odata.parse_expand(call.req.arg("$expand"))
        return Response.json(self.project(full, select, expand), status)

    # -- folders -----------------------------------------------------------------------------

    def folders(self, call: Call) -> Response:
        """GET/POST mailFolders (top level) and mailFolders/{id}/childFolders."""
        self._allow(call, write=call.req.method == "POST")
        parent = self._folder_row(call, call.params.get("folder", "msgfolderroot"))
        if call.req.method == "POST":
            body = call.req.json()
            name = body.get("displayName") if isinstance(body, dict) else None
            if not isinstance(name, str) or not name.strip():
                raise bad_request("A folder needs a non-empty 'displayName'.")
            row = self.store.create_folder(call.mailbox.id, parent["id"], name.strip())
            return Response.json(self._folder_json(row), 201)
        rows = self.store.child_folders(call.mailbox.id, parent["id"])
        return Response.json(self._page(call, [self._folder_json(r) for r in rows]))

    def get_folder(self, call: Call) -> Response:
        self._allow(call, write=False)
        return Response.json(self._folder_json(self._folder_row(call, call.params["folder"])))

    # -- messages ----------------------------------------------------------------------------

    def messages(self, call: Call) -> Response:
        """GET lists (with $filter/$select/$orderby/$top/$expand); POST creates a draft."""
        folder_ref = call.params.get("folder")
        if call.req.method == "POST":
            self._allow(call, write=True)
            folder = self._folder_row(call, folder_ref or "drafts")
            data = model.clean_input(call.req.json(), self.ctx.limits)
            row = self._create(call.mailbox, folder["id"], data, draft=True)
            return self._one_message(call, row, 201)
        self._allow(call, write=False)
        folder_id = self._folder_row(call, folder_ref)["id"] if folder_ref else None
        rows = self.store.messages(call.mailbox.id, folder_id)
        items = [self.message_json(r, call.req, call.immutable) for r in rows]
        if not call.req.arg("$orderby") and not call.req.arg("$filter"):
            # Graph's default order is newest first.
            items.sort(key=lambda m: m.get("receivedDateTime") or "", reverse=True)
        return Response.json(self._page(call, items, messages=True))

    def _create(
        self, mailbox: Any, folder_id: str, data: dict[str, Any], *, draft: bool
    ) -> sqlite3.Row:
        now = now_iso()
        files = data.pop("attachments", [])
        record: dict[str, Any] = {
            "createdDateTime": now,
            "lastModifiedDateTime": now,
            "changeKey": new_id("CQAAAB")[:28],
            "categories": [],
            "receivedDateTime": now,
            "sentDateTime": None if draft else now,
            "internetMessageId": model.new_internet_message_id(mailbox.address.split("@")[-1]),
            "subject": "",
            "importance": "normal",
            "conversationId": new_id("AAQkAG"),
            "isDeliveryReceiptRequested": False,
            "isReadReceiptRequested": False,
            "isRead": True,
            "isDraft": draft,
            "inferenceClassification": "focused",
            "body": {"contentType": "text", "content": ""},
            "sender": None,
            "from": None,
            "toRecipients": [],
            "ccRecipients": [],
            "bccRecipients": [],
            "replyTo": [],
            "flag": {"flagStatus": "notFlagged"},
            "internetMessageHeaders": [],
            "singleValueExtendedProperties": [],
        }
        record.update(data)
        row = self.store.create_message(mailbox.id, folder_id, record)
        for f in files:
            self.store.add_attachment(
                row["immutable_id"],
                f["name"],
                f["contentType"],
                f["content"],
                f["isInline"],
                f["contentId"],
            )
        return row

    def message(self, call: Call) -> Response:
        """GET, PATCH or DELETE one message."""
        write = call.req.method != "GET"
        self._allow(call, write=write)
        row = self._message_row(call)
        if call.req.method == "GET":
            return self._one_message(call, row)
        if call.req.method == "DELETE":
            self.store.delete_message(row)
            return Response(204)
        data = json.loads(row["data"])
        changes = model.clean_input(call.req.json(), self.ctx.limits, existing=data)
        if "attachments" in changes:
            raise bad_request("Add attachments with POST …/attachments, not PATCH.")
        if "singleValueExtendedProperties" in changes:
            changes["singleValueExtendedProperties"] = model.merge_extended(
                data.get("singleValueExtendedProperties") or [],
                changes["singleValueExtendedProperties"],
            )
        data.update(changes)
        data["lastModifiedDateTime"] = now_iso()
        data["changeKey"] = new_id("CQAAAB")[:28]
        return self._one_message(call, self.store.update_message(row, data))

    def move(self, call: Call) -> Response:
        """POST …/move: 201 with the message under its new id (the old id is gone)."""
        self._allow(call, write=True)
        row = self._message_row(call)
        target = self._destination(call)
        moved = self.store.move_message(row, target["id"])
        return self._one_message(call, moved, 201)

    def copy(self, call: Call) -> Response:
        self._allow(call, write=True)
        row = self._message_row(call)
        target = self._destination(call)
        data = json.loads(row["data"])
        new = self.store.create_message(call.mailbox.id, target["id"], data)
        self.store.copy_attachments(row["immutable_id"], new["immutable_id"])
        return self._one_message(call, new, 201)

    def _destination(self, call: Call) -> sqlite3.Row:
        body = call.req.json()
        dest = body.get("destinationId") if isinstance(body, dict) else None
        if not isinstance(dest, str) or not dest:
            raise bad_request("The request needs a 'destinationId' (folder id or well-known name).")
        folder = self.store.folder(call.mailbox.id, dest)
        if folder is None:
            raise item_not_found()
        return folder

    # -- sending -----------------------------------------------------------------------------

    def send_mail(self, call: Call) -> Response:
        """POST sendMail: 202, no body; a copy in the URL mailbox's Sent Items unless told not."""
        body = call.req.json()
        if isinstance(body, dict):
            # Graph reads action parameters case-insensitively; msgraph-sdk sends "Message".
            body = {k[:1].lower() + k[1:]: v for k, v in body.items()}
        if not isinstance(body, dict) or not isinstance(body.get("message"), dict):
            raise bad_request("The request needs a 'message' object.")
        save = body.get("saveToSentItems", True)
        if isinstance(save, str):
            save = save.lower() != "false"
        data = model.clean_input(body["message"], self.ctx.limits)
        files = data.pop("attachments", [])
        self._submit(call, data, files=files, draft=None, save=bool(save))
        return Response(202)

    def send_draft(self, call: Call) -> Response:
        """POST messages/{id}/send: the draft moves to Sent Items (new id), 202 with no body."""
        row = self._message_row(call)
        data = json.loads(row["data"])
        if not data.get("isDraft"):
            raise GraphError(
                400, "ErrorInvalidOperation", "Only a draft message can be sent this way."
            )
        self._submit(call, data, files=[], draft=row, save=True)
        return Response(202)

    def _submit(
        self,
        call: Call,
        data: dict[str, Any],
        *,
        files: list[dict[str, Any]],
        draft: sqlite3.Row | None,
        save: bool,
    ) -> None:
        """Check permissions and limits, then file the sent copy and deliver it."""
        limits = self.ctx.limits
        principal, owner = call.principal, call.mailbox
        model.check_sendable(data, limits)
        model.check_headers(
            data.get("internetMessageHeaders"), int(limits.get("maxInternetMessageHeaders", 5))
        )
        from_addr = ((data.get("from") or {}).get("emailAddress") or {}).get("address")
        from_addr = from_addr or owner.address
        from_box = self.ctx.directory.mailbox(principal.tenant_id, from_addr)
        if from_box is None:
            raise send_as_denied()
        sender_addr = resolve_sender(
            principal, from_box.address, self._rights(principal, from_box.address)
        )
        if from_box.id != owner.id and not (
            principal.kind == "user" and (principal.user or "") == owner.address
        ):
            # Filing the copy in a third mailbox needs access to it as well.
            check_mailbox_access(
                principal, owner.address, self._rights(principal, owner.address), write=True
            )
        sender_box = self.ctx.directory.mailbox(principal.tenant_id, sender_addr) or from_box
        self.throttle.count_send(owner.address)
        now = now_iso()
        data["from"] = _recipient(from_box)
        data["sender"] = _recipient(sender_box)
        data.update(isDraft=False, isRead=True, sentDateTime=now, receivedDateTime=now)
        data["lastModifiedDateTime"] = now
        sent_folder = self.store.folder(owner.id, "sentitems")
        # Recipients' copies take their attachments from the filed copy, or (when nothing is
        # filed) straight from the request.
        source: str | None = None
        delay_ms = int(limits.get("sentCopyDelayMs") or 0)
        if draft is not None and delay_ms > 0:
            source = self._hold_in_outbox(owner.id, draft, data, sent_folder["id"], delay_ms)
        elif draft is not None:
            source = self.store.move_message(draft, sent_folder["id"], data)["immutable_id"]
        else:
            data.setdefault(
                "internetMessageId",
                model.new_internet_message_id(owner.address.split("@")[-1]),
            )
            if save:
                saved = self._create(
                    owner, sent_folder["id"], {**data, "attachments": files}, draft=False
                )
                source, files = saved["immutable_id"], []
        self._deliver(principal.tenant_id, owner, data, source, files)

    def _hold_in_outbox(
        self, mailbox: str, draft: sqlite3.Row, data: dict[str, Any], sent: str, delay_ms: int
    ) -> str:
        """Exchange's in-between state after `/send`: the draft is gone, the message sits in
        the Outbox (another id) and its Sent Items copy, under the draft's immutable id, is
        filed only once it went out. Returns the Outbox copy's immutable id."""
        outbox = self.store.folder(mailbox, "outbox")
        moved = self.store.move_message(draft, outbox["id"], data)
        temporary = new_id("AAkALgA")
        self.store.rekey_message(moved, temporary)
        due = time.monotonic() + delay_ms / 1000
        with self._outbox_lock:
            self._outbox.append((due, mailbox, temporary, draft["immutable_id"], sent))
        return temporary

    def release_outbox(self) -> None:
        """File every Outbox message whose sentCopyDelayMs has passed in Sent Items."""
        if not self._outbox:
            return
        now = time.monotonic()
        with self._outbox_lock:
            due = [item for item in self._outbox if item[0] <= now]
            self._outbox = [item for item in self._outbox if item[0] > now]
        for _, mailbox, temporary, immutable_id, sent in due:
            row = self.store.message(mailbox, temporary)
            if row is None:  # deleted meanwhile, or the sandbox was reset
                continue
            self.store.move_message(self.store.rekey_message(row, immutable_id), sent)

    def _deliver(
        self,
        tenant_id: str,
        owner: Any,
        data: dict[str, Any],
        source: str | None,
        files: list[dict[str, Any]],
    ) -> None:
        """Sandbox recipients get an Inbox copy; the rest go to the outbound log."""
        boxes = {m.address.lower(): m for m in self.ctx.directory.mailboxes()}
        external = []
        copy_data = copy.deepcopy(data)
        copy_data["bccRecipients"] = []
        # Named properties set by the sender do not travel with the message.
        copy_data["singleValueExtendedProperties"] = []
        copy_data["isRead"] = False
        for address in model.addresses(data):
            box = boxes.get(address.lower())
            if box is None:
                external.append(address)
                continue
            self.store.ensure_mailbox(box.id)
            inbox = self.store.folder(box.id, "inbox")
            row = self.store.create_message(box.id, inbox["id"], copy.deepcopy(copy_data))
            self._attach(row["immutable_id"], source, files)
        if external:
            self.store.log_outbound(tenant_id, owner.address, data, external)

    def _attach(self, target: str, source: str | None, files: list[dict[str, Any]]) -> None:
        if source is not None:
            self.store.copy_attachments(source, target)
        for f in files:
            self.store.add_attachment(
                target, f["name"], f["contentType"], f["content"], f["isInline"], f["contentId"]
            )

    # -- attachments -------------------------------------------------------------------------

    def _attachment_json(self, att: sqlite3.Row, with_bytes: bool = True) -> dict[str, Any]:
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

    def attachments(self, call: Call) -> Response:
        """GET the list (with contentBytes) or POST a fileAttachment (≤ 3 MB)."""
        self._allow(call, write=call.req.method == "POST")
        row = self._message_row(call)
        if call.req.method == "POST":
            f = model.file_attachment(call.req.json(), self.ctx.limits)
            att = self.store.add_attachment(
                row["immutable_id"],
                f["name"],
                f["contentType"],
                f["content"],
                f["isInline"],
                f["contentId"],
            )
            return Response.json(self._attachment_json(att), 201)
        select = odata.parse_select(call.req.arg("$select"))
        with_bytes = select is None or "contentbytes" in {s.lower() for s in select}
        items = [
            self._attachment_json(a, with_bytes)
            for a in self.store.attachments(row["immutable_id"])
        ]
        return Response.json(self._page(call, items, default_top=1000))

    def _attachment_row(self, call: Call) -> sqlite3.Row:
        row = self._message_row(call)
        att = self.store.attachment(row["immutable_id"], call.params["attachment"])
        if att is None:
            raise item_not_found()
        return att

    def attachment(self, call: Call) -> Response:
        self._allow(call, write=call.req.method == "DELETE")
        att = self._attachment_row(call)
        if call.req.method == "DELETE":
            self.store.delete_attachment(att)
            return Response(204)
        return Response.json(self._attachment_json(att))

    def attachment_value(self, call: Call) -> Response:
        self._allow(call, write=False)
        att = self._attachment_row(call)
        return Response(200, self.store.content(att), {"Content-Type": att["content_type"]})

    def create_upload(self, call: Call) -> Response:
        self._allow(call, write=True)
        row = self._message_row(call)
        return self.uploads.create(call.req, call.mailbox, row)


def _select_plain(item: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    if not select:
        return item
    wanted = {s.lower() for s in select}
    return {k: v for k, v in item.items() if k in ("id", "@odata.type") or k.lower() in wanted}


def _recipient(box: Any) -> dict[str, Any]:
    return {"emailAddress": {"name": box.display_name, "address": box.address}}


def register(ctx: SandboxContext) -> GraphApi:
    """Build the Graph surface on ctx: routes, upload URL, control endpoints and reset hook."""
    store = Store(ctx.db, ctx.state_dir)
    throttle = Throttle(lambda: ctx.limits)
    api = GraphApi(ctx, store, throttle)
    ctx.extras["graph"] = api
    # sentCopyDelayMs (default 0): how long a sent draft stays in the Outbox before its Sent
    # Items copy appears; optional in seeds, so it is added to the known limits here.
    ctx.seed.setdefault("limits", {}).setdefault("sentCopyDelayMs", 0)
    seed_limits = copy.deepcopy(ctx.limits)
    methods = ("GET", "POST", "PUT", "PATCH", "DELETE")
    ctx.router.add(methods, r"/v1\.0/(?P<rest>.*)", api.handle, consumes_delay=True)
    ctx.router.add(
        ("PUT", "DELETE"), r"/upload/attachmentSessions/(?P<session>[\w-]+)", api.uploads.put
    )

    def limits(req: Request) -> Response:
        if req.method == "PATCH":
            changes = req.json()
            if not isinstance(changes, dict):
                return Response.json(
                    {"error": {"code": "BadRequest", "message": "a JSON object"}}, 400
                )
            unknown = sorted(set(changes) - set(seed_limits))
            if unknown:
                msg = f"unknown limits {unknown}; known: {sorted(seed_limits)}"
                return Response.json({"error": {"code": "BadRequest", "message": msg}}, 400)
            ctx.seed.setdefault("limits", {}).update(changes)
        return Response.json(ctx.limits)

    def outbound(req: Request) -> Response:
        return Response.json({"value": store.outbound(int(req.arg("limit") or 200))})

    ctx.router.add(("GET", "PATCH"), r"/_sandbox/limits", limits)
    ctx.router.add("GET", r"/_sandbox/outbound", outbound)

    def reset() -> None:
        with api._outbox_lock:
            api._outbox.clear()
        store.reset()
        throttle.reset()
        current = ctx.seed.setdefault("limits", {})
        current.clear()
        current.update(copy.deepcopy(seed_limits))

    ctx.extras.setdefault("reset_hooks", []).append(reset)
    return api
