"""The three ways to send one small mail that the benchmarks compare: ours, the floor, the peer.

Each `make_*` imports its libraries when called (the cold-start child times those imports) and
returns a `send(subject)` callable that raises when the mail was not accepted. Configuration comes
from the environment `bench.harness.child_env` builds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from shared.identity.secret_names import credential_secret

SENDER = "administratie@contoso.test"
RECIPIENT = "anna@contoso.test"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
CONNECTION = "contoso.test"
CREDENTIAL_SECRET = credential_secret("contoso.test")

Send = Callable[[str], None]


def request_body(subject: str, **extra: object) -> bytes:
    """Our API's body for a small text mail (the same content every sender sends)."""
    body = {
        "connection": CONNECTION,
        "from": SENDER,
        "to": [RECIPIENT],
        "subject": subject,
        "body": {"contentType": "text", "content": "Benchmark message. " * 20},
        **extra,
    }
    return json.dumps(body).encode()


def graph_message(subject: str) -> dict:
    """The same mail as a Graph sendMail body."""
    return {
        "message": {
            "subject": subject,
            "body": {"contentType": "text", "content": "Benchmark message. " * 20},
            "toRecipients": [{"emailAddress": {"address": RECIPIENT}}],
        },
        "saveToSentItems": True,
    }


_functions: dict[str, Callable] = {}
_loop: list = []
PIECE_BYTES = 64 * 1024


def _send_mail_function() -> Callable:
    """The send_mail user function, indexed once per process as the Python worker does
    (FunctionApp.get_functions refuses a second call)."""
    if not _functions:
        import function_app

        for f in function_app.app.get_functions():
            _functions[f.get_function_name()] = f.get_user_function()
    return _functions["send_mail"]


def call_send_mail(body: bytes) -> tuple[int, bytes]:
    """Call send_mail as the worker does under HTTP streams: a FastAPI Request whose body arrives
    in 64 KiB pieces (as from the host's socket), awaited on the process's one event loop, its
    Response run as an ASGI app. Returns status and body."""
    import asyncio

    from azurefunctions.extensions.http.fastapi import Request

    if not _loop:
        _loop.append(asyncio.new_event_loop())
    handler = _send_mail_function()
    view = memoryview(body)
    offset = [0]
    ended = [False]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/mail/send",
        "raw_path": b"/api/mail/send",
        "query_string": b"",
        "headers": [
            (b"host", b"localhost"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "path_params": {},
    }

    async def receive() -> dict:
        # One piece at a time, made when asked for (as off a socket).
        if ended[0]:
            await asyncio.Event().wait()  # no disconnect while the call runs
        piece = bytes(view[offset[0] : offset[0] + PIECE_BYTES])
        offset[0] += PIECE_BYTES
        ended[0] = offset[0] >= len(body)
        return {"type": "http.request", "body": piece, "more_body": not ended[0]}

    async def run() -> tuple[int, bytes]:
        sent: list[dict] = []

        async def send(message: dict) -> None:
            sent.append(message)

        response = await handler(Request(scope, receive))
        await response(scope, receive, send)
        return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])

    return _loop[0].run_until_complete(run())


def make_ours(**extra: object) -> Send:
    """Our function app: the send_mail HTTP trigger's user function, as the worker calls it."""
    _send_mail_function()

    def send(subject: str) -> None:
        send_raw_body(request_body(subject, **extra))

    return send


def send_raw_body(body: bytes) -> None:
    """Call our send_mail trigger with a ready request body (memory benchmark)."""
    status, answer = call_send_mail(body)
    if status != 200:
        raise RuntimeError(f"ours: HTTP {status} {answer[:300]!r}")


def make_floor() -> Send:
    """The floor: msal for the token, one requests session, raw sendMail. Nothing else."""
    import msal
    import requests

    url = os.environ["BENCH_SANDBOX_URL"]
    app = msal.ConfidentialClientApplication(
        os.environ["BENCH_CLIENT_ID"],
        client_credential=os.environ["BENCH_CLIENT_SECRET"],
        authority=f"{url}/{os.environ['BENCH_TENANT_ID']}",
        instance_discovery=False,
    )
    http = requests.Session()
    endpoint = f"{url}/v1.0/users/{SENDER}/sendMail"

    def send(subject: str) -> None:
        # MSAL's in-memory cache answers every call after the first without I/O.
        result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
        token = result["access_token"]
        resp = http.post(
            endpoint,
            json=graph_message(subject),
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        if resp.status_code != 202:
            raise RuntimeError(f"floor: HTTP {resp.status_code} {resp.text[:300]}")

    return send


def make_peer() -> Send:
    """The peer: msgraph-sdk + azure-identity, the Graph app secret read from Key Vault.

    This is how Microsoft's samples write it: app settings point at Key Vault, the credential
    reads the app's secret there, GraphServiceClient sends. Only the sandbox's host is added
    (allowed_hosts, base_url); the SDK is async, so one event loop drives it.
    """
    import asyncio

    from azure.identity import ClientSecretCredential
    from azure.keyvault.secrets import SecretClient
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.generated.models.body_type import BodyType
    from msgraph.generated.models.email_address import EmailAddress
    from msgraph.generated.models.item_body import ItemBody
    from msgraph.generated.models.message import Message
    from msgraph.generated.models.recipient import Recipient
    from msgraph.generated.users.item.send_mail.send_mail_post_request_body import (
        SendMailPostRequestBody,
    )

    url = os.environ["BENCH_SANDBOX_URL"]
    tenant, client_id = os.environ["AZURE_TENANT_ID"], os.environ["AZURE_CLIENT_ID"]
    vault_credential = ClientSecretCredential(
        tenant,
        client_id,
        os.environ["AZURE_CLIENT_SECRET"],
        authority=url,
        disable_instance_discovery=True,
    )
    vault = SecretClient(url, vault_credential, verify_challenge_resource=False)
    secret = vault.get_secret(CREDENTIAL_SECRET).value or ""
    credential = ClientSecretCredential(
        tenant, client_id, secret, authority=url, disable_instance_discovery=True
    )
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=[GRAPH_SCOPE], allowed_hosts=["127.0.0.1"]
    )
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = f"{url}/v1.0"
    client = GraphServiceClient(request_adapter=adapter)
    loop = asyncio.new_event_loop()

    def send(subject: str) -> None:
        body = SendMailPostRequestBody(
            message=Message(
                subject=subject,
                body=ItemBody(content_type=BodyType.Text, content="Benchmark message. " * 20),
                to_recipients=[Recipient(email_address=EmailAddress(address=RECIPIENT))],
            ),
            save_to_sent_items=True,
        )
        # Raises the SDK's ODataError on any Graph error answer.
        loop.run_until_complete(client.users.by_user_id(SENDER).send_mail.post(body))

    return send


MAKERS: dict[str, Callable[[], Send]] = {"ours": make_ours, "floor": make_floor, "peer": make_peer}
