"""Delivery: sandbox recipients get an Inbox copy, every other address the outbound log."""

from __future__ import annotations

import copy
from typing import Any

from sandbox.graph import model
from sandbox.graph.store import Store


class Delivery:
    """Hands a sent message to its recipients (what Exchange's transport does after submit)."""

    def __init__(self, store: Store, directory: Any) -> None:
        self.store = store
        self.directory = directory

    def deliver(
        self,
        tenant_id: str,
        owner: Any,
        data: dict[str, Any],
        source: str | None,
        files: list[dict[str, Any]],
    ) -> None:
        """Copies for sandbox recipients (attachments from the message with immutable id
        `source`, or `files`); the rest go to the outbound log."""
        boxes = {m.address.lower(): m for m in self.directory.mailboxes()}
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
