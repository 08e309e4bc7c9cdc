"""Helpers for the Graph tests: a tiny requests-based client and MSAL token helpers."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import msal
import requests

from tests.conftest import SEED_CLIENT_ID, SEED_CLIENT_SECRET, SEED_PASSWORD, SEED_TENANT_ID, q

ADMIN = "administratie@contoso.test"
ANNA = "anna@contoso.test"
SVC = "svc-docuflow@contoso.test"
OP_PROP = "String {00020329-0000-0000-C000-000000000046} Name OperationId"
DELEGATED = [
    f"https://graph.microsoft.com/{s}"
    for s in ("Mail.Send", "Mail.Send.Shared", "Mail.ReadWrite", "Mail.ReadWrite.Shared")
]
MB = 1024 * 1024


class Graph:
    """A tiny Graph client: one keep-alive session with a bearer token."""

    def __init__(self, url: str, ca: str, token: str | None) -> None:
        self.base = f"{url}/v1.0"
        self.http = requests.Session()
        self.http.verify = ca
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 30)
        url = path if path.startswith("https://") else f"{self.base}/{path.lstrip('/')}"
        return self.http.request(method, url, **kw)

    def get(self, path: str, **kw) -> requests.Response:
        return self.call("GET", path, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return self.call("POST", path, **kw)

    def ok(self, method: str, path: str, status: int = 200, **kw) -> dict:
        resp = self.call(method, path, **kw)
        assert resp.status_code == status, resp.text
        return resp.json() if resp.content else {}


def app_token(url: str, tenant: str = SEED_TENANT_ID, client=SEED_CLIENT_ID, secret=None) -> str:
    app = msal.ConfidentialClientApplication(
        client,
        client_credential=secret or SEED_CLIENT_SECRET,
        authority=f"{url}/{tenant}",
        instance_discovery=False,
    )
    result = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result
    return result["access_token"]


def user_token(url: str, upn: str) -> str:
    app = msal.ConfidentialClientApplication(
        SEED_CLIENT_ID,
        client_credential=SEED_CLIENT_SECRET,
        authority=f"{url}/{SEED_TENANT_ID}",
        instance_discovery=False,
    )
    # MSAL's ROPC first asks https://<host without port>/common/userrealm: for a sandbox on
    # another port that is a refused connection, so mark loopback as having no realm discovery.
    msal.authority.Authority._domains_without_user_realm_discovery.update(
        {"127.0.0.1", "localhost"}
    )
    result = app.acquire_token_by_username_password(upn, SEED_PASSWORD, scopes=DELEGATED)
    assert "access_token" in result, result
    return result["access_token"]


def rcpt(address: str) -> dict:
    return {"emailAddress": {"address": address}}


def draft(g: Graph, mailbox: str = ADMIN, **fields) -> dict:
    body = {
        "subject": "Factuur 2026-001",
        "body": {"contentType": "html", "content": "<p>Zie bijlage.</p>"},
        "toRecipients": [rcpt(ANNA), rcpt("klant@example.com")],
        **fields,
    }
    return g.ok("POST", f"users/{mailbox}/messages", 201, json=body)


def sent_items(g: Graph, mailbox: str, **params) -> list[dict]:
    return g.ok("GET", f"users/{mailbox}/mailFolders/sentitems/messages", params=params)["value"]


def eventually(probe: Callable[[], Any], timeout: float) -> Any:
    """Poll `probe` until it returns something truthy or `timeout` passes; returns the last
    value. Sent mail reaches Sent Items and recipients after the transit time (sentCopyDelayMs),
    so tests wait for it with a deadline derived from that (Sandbox.transit_seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def files_of(g: Graph, mailbox: str, message_id: str) -> dict[str, bytes]:
    value = g.ok("GET", f"users/{mailbox}/messages/{q(message_id)}/attachments")["value"]
    return {a["name"]: base64.b64decode(a["contentBytes"]) for a in value}


def upload(url: str, ca: str, data: bytes, chunk: int = 4 * MB) -> list[requests.Response]:
    """PUT `data` in ordered chunks to a pre-authenticated upload URL (no bearer token)."""
    answers = []
    with requests.Session() as http:
        http.verify = ca
        for start in range(0, len(data), chunk):
            part = data[start : start + chunk]
            headers = {"Content-Range": f"bytes {start}-{start + len(part) - 1}/{len(data)}"}
            answers.append(http.put(url, data=part, headers=headers, timeout=60))
    return answers
