"""Release-review fixes over real sockets: peer-checked fetches and callbacks (DNS rebinding),
gzip-served attachments, no SAS query in errors, cached reauth answers, misconfigured
connections as configuration errors, and one anonymous answer for every refused sign-in link."""

from __future__ import annotations

import base64
import gzip
import http.server
import json
import socket
import threading
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from auth_routes import flow
from shared.errors import AttachmentFetchFailed, AuthFailed, ReauthRequired, ValidationFailed
from shared.identity.connections import parse_connection, save_connection
from shared.identity.secret_names import connection_secret, credential_secret
from shared.identity.signin import SignInError
from shared.models import Attachment
from shared.operations.attachments import UPLOAD_THRESHOLD, from_url
from shared.runtime import Runtime
from shared.sessions import environment_session
from shared.settings import Settings
from shared.urlsafety import forbidden_peer_in, guarded_session
from shared.work.callbacks import deliver
from tests.conftest import SEED_CLIENT_SECRET
from tests.functional.conftest import sandbox_connection, secret_client, until

BODY = b"%PDF-1.7 attachment bytes " * 2000


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves BODY; gzip when asked (or always, with `always_gzip`); records what it got."""

    def do_GET(self) -> None:
        self.server.seen.append(dict(self.headers))
        wants_gzip = "gzip" in self.headers.get("Accept-Encoding", "")
        if self.server.always_gzip or wants_gzip:
            data = gzip.compress(BODY, mtime=0)
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
        else:
            data = BODY
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.server.seen.append(dict(self.headers))
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@contextmanager
def local_server(port: int = 0, always_gzip: bool = False) -> Iterator[http.server.HTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    server.seen = []
    server.always_gzip = always_gzip
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _connection(**extra) -> object:
    base = {
        "name": "files.test",
        "mode": "app",
        "tenantId": "t",
        "clientId": "c",
        "credential": {"type": "client_secret"},
        "attachmentUrlHosts": ["127.0.0.1", "localhost"],
    }
    return parse_connection({**base, **extra})


def _fetch(url: str, connection, session=None, resolve=None) -> bytes:
    source = from_url(
        Attachment(name="a.pdf", url=url),
        field="attachments[0].url",
        connection=connection,
        session=session or environment_session(),
        max_bytes=10_000_000,
        resolve=resolve,
    )
    try:
        return source.read_all()
    finally:
        source.close()


def test_an_attachment_is_fetched_with_identity_encoding_and_arrives_whole():
    with local_server() as server:
        data = _fetch(
            f"https://127.0.0.1:{server.server_port}/a.pdf",
            _connection(allowPrivateAttachmentHosts=True),
            session=_http_only(),
        )

    assert data == BODY
    assert server.seen[0]["Accept-Encoding"] == "identity"


def test_a_server_that_gzips_anyway_gives_its_bytes_as_sent_not_a_length_error():
    with local_server(always_gzip=True) as server:
        data = _fetch(
            f"https://127.0.0.1:{server.server_port}/a.pdf",
            _connection(allowPrivateAttachmentHosts=True),
            session=_http_only(),
        )

    assert data == gzip.compress(BODY, mtime=0)


def _http_only() -> requests.Session:
    """A session that speaks plain http to the https URL's host (the test server has no TLS):
    the URL checks need https, the socket behaviour under test does not."""

    class PlainHttp(requests.Session):
        def request(self, method, url, *args, **kwargs):
            return super().request(method, url.replace("https://", "http://", 1), *args, **kwargs)

    session = PlainHttp()
    session.trust_env = False
    return session


def test_a_failed_fetch_never_carries_the_sas_query_in_its_message_or_chain():
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"https://127.0.0.1:{port}/a.pdf?sv=2024&sig=TOPSECRETSIG"

    with pytest.raises(AttachmentFetchFailed) as caught:
        _fetch(url, _connection(allowPrivateAttachmentHosts=True))

    text = "".join(traceback.format_exception(caught.value))
    assert "TOPSECRETSIG" not in text
    assert "ConnectionError" in caught.value.message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_the_guarded_session_refuses_an_internal_peer_before_sending_a_request():
    with local_server() as server, pytest.raises(requests.RequestException) as caught:
        guarded_session().get(f"http://127.0.0.1:{server.server_port}/x", timeout=10)

    assert forbidden_peer_in(caught.value) is not None
    assert server.seen == []


def test_a_host_that_rebinds_to_loopback_after_the_check_is_refused():
    # The URL check sees a public address; the connection then reaches 127.0.0.1:443.
    try:
        server_cm = local_server(port=443)
        server = server_cm.__enter__()
    except OSError as exc:
        pytest.skip(f"cannot listen on 127.0.0.1:443 here ({exc})")
    try:
        with pytest.raises(ValidationFailed) as caught:
            _fetch(
                "https://localhost/a.pdf",
                _connection(),
                resolve=lambda host, port: ["52.97.1.1"],
            )
    finally:
        server_cm.__exit__(None, None, None)

    assert "internal address" in caught.value.details[0].message
    assert server.seen == []


def test_callbacks_go_through_the_peer_check_unless_the_connection_allows_private_hosts():
    with local_server() as server:
        url = f"http://127.0.0.1:{server.server_port}/hook?token=CALLBACKSECRET"
        # What FinalCallbacks picks: the guarded session, unless the connection allows
        # private hosts (then the plain one).
        guarded, plain = guarded_session(), environment_session()
        refused = deliver(
            url, {"status": "succeeded"}, "k" * 32, key_id="c", session=guarded,
            sleep=lambda s: None,
        )  # fmt: skip
        seen_after_refusal = list(server.seen)
        allowed = deliver(
            url,
            {"status": "succeeded"},
            "k" * 32,
            key_id="c",
            session=plain,
            sleep=lambda s: None,
        )

    assert refused["status"] == "failed" and "internal" in refused["reason"]
    assert seen_after_refusal == []
    assert allowed["status"] == "delivered"


# --- Key Vault and Entra through the sandbox ---------------------------------------------------


def _runtime(sandbox) -> tuple[Runtime, object]:
    client = secret_client(sandbox.url)
    settings = Settings(
        key_vault_url=sandbox.url,
        graph_base_url=f"{sandbox.url}/v1.0",
        authority_host=sandbox.url,
        connection_cache_seconds=300,
        ca_bundle=sandbox.ca,
    )
    return Runtime(settings, lambda: client), client


def _signed_in_service_account(sandbox, runtime, client) -> object:
    """A service_account connection whose sign-in (device code, approved through the control
    API) is stored in Key Vault, as `admin connections authenticate` stores it."""
    import msal

    doc = sandbox_connection(sandbox.url)
    doc.update(
        name="sa.contoso.test",
        mode="service_account",
        account="svc-docuflow@contoso.test",
        credential={"type": "token_cache"},
    )
    save_connection(client, doc, None)
    connection = runtime.connections.get("sa.contoso.test")
    scratch = msal.SerializableTokenCache()
    app = msal.PublicClientApplication(
        connection.client_id,
        authority=f"{sandbox.url}/{connection.tenant_id}",
        instance_discovery=False,
        token_cache=scratch,
    )
    device = app.initiate_device_flow(scopes=connection.scopes())
    sandbox.control(
        "POST",
        "devicecode/approve",
        json={"userCode": device["user_code"], "user": connection.account},
        timeout=30,
    )
    assert "access_token" in app.acquire_token_by_device_flow(device)
    cache = runtime.tokens.providers["service_account"].cache(connection.credential.secret_name)
    cache.replace(scratch.serialize(), account=connection.account)
    return connection


def test_a_revoked_sign_in_is_remembered_so_repeated_calls_skip_entra(fresh_sandbox):
    runtime, client = _runtime(fresh_sandbox)
    connection = _signed_in_service_account(fresh_sandbox, runtime, client)
    fresh_sandbox.control("POST", f"users/{connection.account}/revoke", json={}, timeout=30)
    # Another instance: it reads the stored cache, which has no access token (pruned).
    instance, _ = _runtime(fresh_sandbox)
    token = instance.tokens.source(connection)
    with pytest.raises(ReauthRequired):
        token()  # the cache holds no access token: a refresh, refused
    seen = {e["seq"] for e in fresh_sandbox.requests_log()}

    for _ in range(3):
        with pytest.raises(ReauthRequired) as caught:
            token()

    later = [e for e in fresh_sandbox.requests_log() if e["seq"] not in seen]
    assert [e for e in later if "/oauth2/" in e["path"]] == []  # no token request
    assert len([e for e in later if e["path"].startswith("/secrets/")]) == 3  # one look each
    assert "invalid_grant" in caught.value.message
    assert caught.value.admin_command


def test_a_sign_in_stored_by_another_instance_ends_the_remembered_refusal(fresh_sandbox):
    runtime, client = _runtime(fresh_sandbox)
    connection = _signed_in_service_account(fresh_sandbox, runtime, client)
    fresh_sandbox.control("POST", f"users/{connection.account}/revoke", json={}, timeout=30)
    instance, _ = _runtime(fresh_sandbox)
    token = instance.tokens.source(connection)
    with pytest.raises(ReauthRequired):
        token()

    _signed_in_service_account(fresh_sandbox, runtime, client)  # the admin signs in again

    assert token()


def test_a_corrupt_connection_and_a_missing_credential_are_configuration_errors(fresh_sandbox):
    runtime, client = _runtime(fresh_sandbox)
    client.set_secret(connection_secret("broken.test"), '{"name": "broken.test", "mode": 7}')
    doc = sandbox_connection(fresh_sandbox.url)
    doc.update(name="nocred.test", credential={"type": "client_secret"})
    save_connection(client, doc, None)

    with pytest.raises(AuthFailed) as corrupt:
        runtime.connections.get("broken.test")
    with pytest.raises(AuthFailed) as missing:
        runtime.tokens.source(runtime.connections.get("nocred.test"))()

    assert corrupt.value.status >= 500
    assert connection_secret("broken.test") in corrupt.value.message
    assert "admin connections add" in corrupt.value.message
    assert missing.value.status >= 500
    assert credential_secret("nocred.test") in missing.value.message


def test_every_refused_sign_in_link_gets_the_same_answer(fresh_sandbox, caplog):
    runtime, client = _runtime(fresh_sandbox)
    save_connection(client, sandbox_connection(fresh_sandbox.url), SEED_CLIENT_SECRET)
    doc = sandbox_connection(fresh_sandbox.url)
    doc.update(name="users.test", mode="user", allowedSenders=["anna@contoso.test"])
    save_connection(client, doc, SEED_CLIENT_SECRET)
    client.set_secret(connection_secret("broken.test"), '{"name": "broken.test", "mode": 7}')
    base = "http://127.0.0.1:7071"

    answers = []
    for name, user in [
        ("nobody.test", "anna@contoso.test"),  # no such connection
        ("contoso.test", "anna@contoso.test"),  # app mode
        ("users.test", "bram@contoso.test"),  # not an allowed sender
        ("broken.test", "anna@contoso.test"),  # misconfigured
    ]:
        with pytest.raises(SignInError) as caught:
            flow.start(runtime, name, user, None, base)
        answers.append((caught.value.status, caught.value.message))

    assert len(set(answers)) == 1, answers
    assert "users.test" not in answers[0][1] and "bram" not in answers[0][1]
    assert "app mode" in caplog.text
    assert flow.start(runtime, "users.test", "anna@contoso.test", None, base).location


@pytest.mark.parametrize("size", [UPLOAD_THRESHOLD, UPLOAD_THRESHOLD + 1, 3_100_000])
def test_attachments_around_the_inline_threshold_arrive_whole(ops, size):
    from shared.api.validation import decode
    from shared.models import SendRequest
    from shared.operations import direct as operations
    from tests.functional.test_operations_sandbox import ADMIN, ANNA, attachments_of, find

    subject = f"edge {size} {uuid.uuid4()}"
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    body = {
        "connection": "contoso.test",
        "from": ADMIN,
        "to": [ANNA],
        "subject": subject,
        "attachments": [{"name": "edge.bin", "contentBytes": base64.b64encode(data).decode()}],
    }
    # The request log outlives sandbox resets: look only at this test's requests.
    before = ops.sandbox.control("GET", "requests", params={"limit": 1}).json()["lastSeq"]
    operations.send(decode(SendRequest, json.dumps(body).encode()), ops.context())

    inbox = until(lambda: find(ops, ANNA, "inbox", subject))
    assert attachments_of(ops, ANNA, inbox[0]["id"]) == {"edge.bin": data}
    log = [e for e in ops.sandbox.requests_log() if e["seq"] > before]
    assert [e for e in log if e["status"] == 413] == []  # no request over Graph's cap
    # Above the threshold an upload session is tried first; the sandbox (like Graph) refuses
    # one under 3 MiB, and the file is POSTed after all.
    sessions = [e for e in log if "createUploadSession" in e["path"]]
    assert bool(sessions) == (size > UPLOAD_THRESHOLD)
