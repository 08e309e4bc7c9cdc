"""Looking into sandbox mailboxes from tests, with the seed app's own token (not our code)."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from typing import Any

import msal
import requests

from tests.conftest import SEED_CLIENT_ID, SEED_CLIENT_SECRET, SEED_TENANT_ID, q


class Mailboxes:
    """Reads mailboxes of the sandbox's contoso.test tenant through its Graph API."""

    def __init__(self, url: str, ca: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.http.verify = ca
        self.app = msal.ConfidentialClientApplication(
            SEED_CLIENT_ID,
            client_credential=SEED_CLIENT_SECRET,
            authority=f"{url}/{SEED_TENANT_ID}",
            instance_discovery=False,
        )

    def get(self, path: str, **params: str) -> Any:
        token = self.app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
        resp = self.http.get(
            f"{self.url}/v1.0/{path}",
            params=params or None,
            # Immutable ids: comparable with the ids our API returns.
            headers={
                "Authorization": f"Bearer {token['access_token']}",
                "Prefer": 'IdType="ImmutableId"',
            },
            timeout=30,
        )
        resp.raise_for_status()
        return resp.json()

    def mime_digest(self, mailbox: str, message_id: str) -> tuple[int, str]:
        """Size and SHA-256 of the message's MIME as Graph's `$value` answers it (streamed)."""
        token = self.app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
        digest, size = hashlib.sha256(), 0
        with self.http.get(
            f"{self.url}/v1.0/users/{mailbox}/messages/{q(message_id)}/$value",
            headers={"Authorization": f"Bearer {token['access_token']}"},
            stream=True,
            timeout=120,
        ) as resp:
            resp.raise_for_status()
            for piece in resp.iter_content(1 << 20):
                digest.update(piece)
                size += len(piece)
        return size, digest.hexdigest()

    def messages(self, mailbox: str, folder: str, subject: str | None = None) -> list[dict]:
        items = self.get(f"users/{mailbox}/mailFolders/{q(folder)}/messages", **{"$top": "200"})
        return [m for m in items["value"] if subject is None or m.get("subject") == subject]

    def settle(self, mailbox: str, timeout: float = 30.0) -> None:
        """Wait until nothing `mailbox` sent is in transit (its Outbox is empty); from then on
        its Sent Items and the recipients' copies are final. Fails if mail stays stuck."""
        assert until(lambda: not self.messages(mailbox, "outbox"), timeout), (
            f"mail of {mailbox} stayed in its Outbox"
        )

    def count_all(self, mailboxes: list[str], folder: str) -> int:
        return sum(len(self.messages(m, folder)) for m in mailboxes)

    def attachments(self, mailbox: str, message_id: str) -> dict[str, bytes]:
        items = self.get(f"users/{mailbox}/messages/{q(message_id)}/attachments")["value"]
        out = {}
        for item in items:
            data = item.get("contentBytes")
            if data is None:
                data = self.get(
                    f"users/{mailbox}/messages/{q(message_id)}/attachments/{q(item['id'])}"
                )["contentBytes"]
            out[item["name"]] = base64.b64decode(data)
        return out


def until(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll until truthy (bounded); returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)
