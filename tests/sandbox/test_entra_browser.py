"""Auth code + PKCE: MSAL starts the flow, headless Chromium completes the sandbox sign-in page."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlparse

import jwt
import msal
import pytest

from tests.browser import chromium
from tests.conftest import SEED_CLIENT_ID, SEED_PASSWORD, SEED_TENANT

pytestmark = pytest.mark.browser
SCOPES = ["https://graph.microsoft.com/Mail.Send", "https://graph.microsoft.com/User.Read"]


class Catcher:
    """A tiny loopback HTTP server that records the query of the redirect it receives."""

    def __init__(self) -> None:
        self.received: dict[str, str] = {}
        self.got = threading.Event()
        catcher = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path == "/callback":  # not /favicon.ico, which Chromium asks for next
                    catcher.received = dict(parse_qsl(url.query))
                    catcher.got.set()
                body = b"<h1 id=done>Signed in</h1>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.redirect_uri = f"http://localhost:{self.server.server_port}/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def catcher() -> Iterator[Catcher]:
    c = Catcher()
    yield c
    c.close()


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def _context(browser, sandbox):
    # Chromium does not know the sandbox CA; the test trusts it by ignoring HTTPS errors here only.
    return browser.new_context(ignore_https_errors=True)


def test_auth_code_with_pkce_completed_in_chromium(fresh_sandbox, catcher, browser):
    app = msal.PublicClientApplication(
        SEED_CLIENT_ID, authority=f"{fresh_sandbox.url}/{SEED_TENANT}", instance_discovery=False
    )
    flow = app.initiate_auth_code_flow(
        SCOPES, redirect_uri=catcher.redirect_uri, login_hint="anna@contoso.test"
    )
    assert flow["code_verifier"]

    context = _context(browser, fresh_sandbox)
    page = context.new_page()
    try:
        page.goto(flow["auth_uri"], timeout=15000)
        assert "Mail.Send" in page.locator("#permissions").inner_text(timeout=5000)
        assert page.locator("#username").input_value() == "anna@contoso.test"
        page.fill("#password", SEED_PASSWORD)
        page.click("#accept", timeout=5000)
        assert catcher.got.wait(15), "the browser never reached the redirect URI"
        page.wait_for_selector("#done", timeout=10000)
    finally:
        context.close()

    result = app.acquire_token_by_auth_code_flow(flow, catcher.received)

    assert "access_token" in result, result
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["upn"] == "anna@contoso.test"
    assert set(claims["scp"].split()) == {"Mail.Send", "User.Read"}
    # MSAL sends the SHA-256 of its nonce and checks the id_token echoes it.
    assert result["id_token_claims"]["nonce"] == hashlib.sha256(flow["nonce"].encode()).hexdigest()
    accounts = app.get_accounts()
    assert [a["username"] for a in accounts] == ["anna@contoso.test"]
    silent = app.acquire_token_silent(SCOPES, account=accounts[0])
    assert silent and silent["access_token"] == result["access_token"]


def test_wrong_password_in_the_browser_stays_on_the_sign_in_page(fresh_sandbox, catcher, browser):
    app = msal.PublicClientApplication(
        SEED_CLIENT_ID, authority=f"{fresh_sandbox.url}/{SEED_TENANT}", instance_discovery=False
    )
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=catcher.redirect_uri)
    context = _context(browser, fresh_sandbox)
    page = context.new_page()
    try:
        page.goto(flow["auth_uri"], timeout=15000)
        page.fill("#username", "bram@contoso.test")
        page.fill("#password", "wrong")
        page.click("#accept", timeout=5000)
        error = page.locator("#error").inner_text(timeout=5000)
    finally:
        context.close()

    assert "incorrect" in error
    assert not catcher.got.is_set()
