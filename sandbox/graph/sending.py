"""Sending: sendMail and messages/{id}/send, with Exchange's checks on who may send as whom."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from sandbox.graph import model
from sandbox.graph.call import Call
from sandbox.graph.errors import GraphError, bad_request, send_as_denied
from sandbox.graph.folders import MB
from sandbox.graph.messages import MESSAGE, MessageOps, create_message
from sandbox.graph.permissions import check_mailbox_access, resolve_sender
from sandbox.graph.render import recipient
from sandbox.graph.services import Services
from sandbox.graph.store import now_iso
from sandbox.web import Response


class SendOps:
    def __init__(self, svc: Services, messages: MessageOps) -> None:
        self.svc = svc
        self.messages = messages

    def routes(self) -> list[tuple[str, str, object]]:
        return [
            ("POST", rf"{MESSAGE}/send", self.send_draft),
            ("POST", rf"{MB}/sendMail", self.send_mail),
        ]

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
        data = model.clean_input(body["message"], self.svc.limits)
        files = data.pop("attachments", [])
        self._submit(call, data, files=files, draft=None, save=bool(save))
        return Response(202)

    def send_draft(self, call: Call) -> Response:
        """POST messages/{id}/send: the draft moves to Sent Items (new id), 202 with no body."""
        row = self.messages.row(call)
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
        svc, limits = self.svc, self.svc.limits
        principal, owner = call.principal, call.mailbox
        model.check_sendable(data, limits)
        model.check_headers(
            data.get("internetMessageHeaders"), int(limits.get("maxInternetMessageHeaders", 5))
        )
        from_addr = ((data.get("from") or {}).get("emailAddress") or {}).get("address")
        from_addr = from_addr or owner.address
        from_box = svc.directory.mailbox(principal.tenant_id, from_addr)
        if from_box is None:
            raise send_as_denied()
        sender_addr = resolve_sender(principal, from_box.address, call.rights(from_box.address))
        if from_box.id != owner.id and not (
            principal.kind == "user" and (principal.user or "") == owner.address
        ):
            # Filing the copy in a third mailbox needs access to it as well.
            check_mailbox_access(principal, owner.address, call.rights(owner.address), write=True)
        sender_box = svc.directory.mailbox(principal.tenant_id, sender_addr) or from_box
        svc.throttle.count_send(owner.address)
        now = now_iso()
        data["from"] = recipient(from_box)
        data["sender"] = recipient(sender_box)
        data.update(isDraft=False, isRead=True, sentDateTime=now, receivedDateTime=now)
        data["lastModifiedDateTime"] = now
        sent_folder = svc.store.folder(owner.id, "sentitems")
        # Recipients' copies take their attachments from the filed copy, or (when nothing is
        # filed) straight from the request.
        source: str | None = None
        delay_ms = int(limits.get("sentCopyDelayMs") or 0)
        if draft is not None and delay_ms > 0:
            source = svc.outbox.hold(owner.id, draft, data, sent_folder["id"], delay_ms)
        elif draft is not None:
            source = svc.store.move_message(draft, sent_folder["id"], data)["immutable_id"]
        else:
            data.setdefault(
                "internetMessageId",
                model.new_internet_message_id(owner.address.split("@")[-1]),
            )
            if save:
                saved = create_message(
                    svc, owner, sent_folder["id"], {**data, "attachments": files}, draft=False
                )
                source, files = saved["immutable_id"], []
        svc.delivery.deliver(principal.tenant_id, owner, data, source, files)
