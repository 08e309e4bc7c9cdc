"""Sending: sendMail and messages/{id}/send, with Exchange's checks on who may send as whom,
the message size and the sending rate; the message then goes to the Outbox."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from sandbox.graph import ids, model, size
from sandbox.graph.call import Call
from sandbox.graph.errors import GraphError, bad_request, send_as_denied
from sandbox.graph.folders import MB
from sandbox.graph.messages import MESSAGE, MessageOps, create_message
from sandbox.graph.permissions import check_send_through, resolve_sender
from sandbox.graph.render import recipient
from sandbox.graph.services import Services
from sandbox.graph.store import now_iso
from sandbox.web import Response


def _address(rcpt: dict[str, Any] | None) -> str | None:
    return ((rcpt or {}).get("emailAddress") or {}).get("address")


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
        check_send_through(call.principal, call.mailbox.address, call.rights(call.mailbox.address))
        # Graph reads action parameters case-insensitively; msgraph-sdk sends "Message".
        params = model.action_params(call.req.json(), ("message", "saveToSentItems"))
        if not isinstance(params.get("message"), dict):
            raise bad_request("The request needs a 'message' object.")
        save = params.get("saveToSentItems", True)
        if isinstance(save, str):
            save = save.lower() != "false"
        data = model.clean_input(params["message"], self.svc.limits, names=call.name_of)
        files = data.pop("attachments", [])
        self._submit(call, data, files=files, draft=None, save=bool(save))
        return Response(202)

    def send_draft(self, call: Call) -> Response:
        """POST messages/{id}/send: 202 with no body; the draft leaves for the Outbox and its
        copy is filed in Sent Items under the draft's immutable id once it went out."""
        check_send_through(call.principal, call.mailbox.address, call.rights(call.mailbox.address))
        self.submit_draft(call, self.messages.row(call))
        return Response(202)

    def submit_draft(self, call: Call, row: sqlite3.Row) -> None:
        """Send the draft `row` of the URL's mailbox (its checks, then the Outbox)."""
        data = json.loads(row["data"])
        if not data.get("isDraft"):
            raise GraphError(
                400, "ErrorInvalidOperation", "Only a draft message can be sent this way."
            )
        self._submit(call, data, files=[], draft=row, save=True)

    def _sender(self, call: Call, data: dict[str, Any]) -> tuple[Any, Any]:
        """(from mailbox, sender mailbox) for this call; raises ErrorSendAsDenied."""
        principal, owner = call.principal, call.mailbox
        from_addr = _address(data.get("from"))
        from_box = self.svc.directory.mailbox(principal.tenant_id, from_addr or owner.address)
        if from_box is None:
            raise send_as_denied()
        acting = principal.user if principal.kind == "user" else owner.address
        rights = self.svc.directory.rights(principal.tenant_id, acting or "", from_box.address)
        sender_addr = resolve_sender(
            principal,
            from_box.address,
            rights,
            acting=acting or "",
            requested=_address(data.get("sender")),
        )
        sender_box = self.svc.directory.mailbox(principal.tenant_id, sender_addr) or from_box
        return from_box, sender_box

    def _principal_copy(self, call: Call, from_box: Any, sender_box: Any) -> Any:
        """The `from` mailbox when it gets a Sent Items copy of its own besides the sending
        mailbox's: sent through another mailbox (a delegate's) with Set-Mailbox's
        MessageCopyForSendOnBehalfEnabled (on behalf) or MessageCopyForSentAsEnabled (Send As)
        on (automatically-save-sent-items-in-delegator-s-mailbox.md). None otherwise."""
        if from_box.address == call.mailbox.address:
            return None
        setting = (
            "messageCopyForSendOnBehalfEnabled"
            if sender_box.address != from_box.address
            else "messageCopyForSentAsEnabled"
        )
        if self.svc.directory.mailbox_setting(call.principal.tenant_id, from_box.address, setting):
            return from_box
        return None

    def _submit(
        self,
        call: Call,
        data: dict[str, Any],
        *,
        files: list[dict[str, Any]],
        draft: sqlite3.Row | None,
        save: bool,
    ) -> None:
        """Check rights, recipients, headers, size and rate; then hand it to the Outbox."""
        svc, limits, owner = self.svc, self.svc.limits, call.mailbox
        model.check_sendable(data, limits)
        model.check_headers(
            data.get("internetMessageHeaders"), int(limits.get("maxInternetMessageHeaders", 5))
        )
        from_box, sender_box = self._sender(call, data)
        sizes = (
            [len(f["content"]) for f in files]
            if draft is None
            else self.messages.stored_sizes(draft)
        )
        size.check(size.mime_size(data, sizes), size.max_send_size(limits, owner.address))
        if str(limits.get("sendRateMode") or "reject").lower() == "hold":
            wait = svc.throttle.reserve_send(owner.address)
        else:
            svc.throttle.count_send(owner.address)
            wait = 0.0
        now = now_iso()
        data["from"] = recipient(from_box)
        data["sender"] = recipient(sender_box)
        data.update(isDraft=False, isRead=True, sentDateTime=now, receivedDateTime=now)
        data["lastModifiedDateTime"] = now
        if draft is not None:
            row = svc.store.update_message(draft, data)
            final_id = draft["immutable_id"]
        else:
            data.setdefault(
                "internetMessageId",
                model.new_internet_message_id(owner.address.split("@")[-1]),
            )
            outbox = svc.store.folder(owner.id, "outbox")
            row = create_message(
                svc, owner, outbox["id"], {**data, "attachments": files}, draft=False
            )
            final_id = ids.new_immutable_id()
        delay = wait + int(limits.get("sentCopyDelayMs") or 0) / 1000
        also = self._principal_copy(call, from_box, sender_box) if save else None
        svc.outbox.submit(
            owner,
            call.principal.tenant_id,
            row,
            final_id=final_id,
            save=save,
            delay=delay,
            also=also.id if also is not None else None,
        )
