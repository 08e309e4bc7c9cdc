"""Per-user sign-in end to end: our login link, the sandbox sign-in page in headless Chromium,
the callback storing only the asked-for user's cache, revocation and recovery, and finally a
grep of every log captured in the session for the secrets the connection tests used."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

import pytest

from shared.identity.secret_names import user_cache_secret as user_cache_name
from tests.conftest import SEED_PASSWORD
from tests.e2e.connections_kit import (
    CLI_OUTPUT,
    SEEN_SECRETS,
    TEST_PROCESS_LOG,
    add_user_connection,
    admin,
    browser,  # noqa: F401 - a fixture
    browser_sign_in,
    sandbox_flags,
    send,
    sent_items_subjects,
    stored_secret,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


@pytest.fixture
def user_conn(fresh_devhost) -> str:
    name = f"u-{uuid.uuid4().hex[:8]}.contoso.test"
    add_user_connection(fresh_devhost, name)
    return name


def login_url(devhost, connection: str, user: str, **extra: str) -> str:
    return f"{devhost.url}/api/auth/{connection}/login?{urlencode({'user': user, **extra})}"


def test_a_user_signs_in_in_the_browser_and_sends_as_themselves(
    user_conn,
    fresh_devhost,
    sandbox,
    browser,  # noqa: F811
):
    ok, message = browser_sign_in(
        browser, login_url(fresh_devhost, user_conn, "anna@contoso.test"), "anna@contoso.test"
    )
    assert ok == "true", message
    assert "anna@contoso.test" in message
    stored = stored_secret(sandbox, user_cache_name(user_conn, "anna@contoso.test"))
    assert stored and '"account":"anna@contoso.test"' in stored
    # Bound by tenant and object id (finding 11); the UPN stays for display.
    assert '"tid":"8f3c1a52-0000-4000-8000-00000000c0de"' in stored and '"oid":"' in stored

    resp = send(
        fresh_devhost, user_conn, "anna@contoso.test", user="anna@contoso.test", subject="u1"
    )

    assert resp.status_code == 200, resp.text
    assert "u1" in sent_items_subjects(sandbox, "anna@contoso.test")


def test_signing_in_as_another_user_than_asked_is_refused_and_stores_nothing(
    user_conn,
    fresh_devhost,
    sandbox,
    browser,  # noqa: F811
):
    ok, message = browser_sign_in(
        browser, login_url(fresh_devhost, user_conn, "anna@contoso.test"), "bram@contoso.test"
    )

    assert ok == "false"
    assert "Nothing was stored" in message
    assert stored_secret(sandbox, user_cache_name(user_conn, "anna@contoso.test")) is None
    assert stored_secret(sandbox, user_cache_name(user_conn, "bram@contoso.test")) is None


def test_a_refused_sign_in_speaks_dutch_to_a_dutch_browser(
    user_conn,
    fresh_devhost,
    browser,  # noqa: F811
):
    ok, message = browser_sign_in(
        browser,
        login_url(fresh_devhost, user_conn, "anna@contoso.test"),
        "bram@contoso.test",
        language="nl-NL",
    )

    assert ok == "false"
    assert "Er is niets opgeslagen" in message and "anna@contoso.test" in message
    assert "Nothing was stored" not in message


def test_the_result_page_speaks_dutch_to_a_dutch_browser(
    user_conn,
    fresh_devhost,
    browser,  # noqa: F811
):
    ok, message = browser_sign_in(
        browser,
        login_url(fresh_devhost, user_conn, "bram@contoso.test"),
        "bram@contoso.test",
        language="nl-NL",
    )

    assert ok == "true"
    assert "aangemeld" in message


def test_after_a_revoke_the_send_asks_for_sign_in_and_following_the_link_restores_it(
    user_conn,
    fresh_devhost,
    sandbox,
    browser,  # noqa: F811
):
    url = login_url(fresh_devhost, user_conn, "anna@contoso.test")
    assert browser_sign_in(browser, url, "anna@contoso.test")[0] == "true"
    assert send(fresh_devhost, user_conn, "anna@contoso.test", user="anna@contoso.test").ok
    sandbox.control("POST", "users/anna@contoso.test/revoke", json={})
    # A new process has no access token in memory (the stored cache has none): it must refresh.
    fresh_devhost.stop()
    fresh_devhost.start()

    resp = send(fresh_devhost, user_conn, "anna@contoso.test", user="anna@contoso.test")

    assert resp.status_code == 401, resp.text
    error = resp.json()["error"]
    assert error["code"] == "reauth_required"
    assert error["signInUrl"].startswith(f"{fresh_devhost.url}/api/auth/{user_conn}/login?")
    ok, message = browser_sign_in(browser, error["signInUrl"], "anna@contoso.test")
    assert ok == "true", message
    again = send(fresh_devhost, user_conn, "anna@contoso.test", user="anna@contoso.test")
    assert again.status_code == 200, again.text


def test_a_forged_or_expired_state_is_refused(user_conn, fresh_devhost):
    resp = fresh_devhost.get(
        f"/api/auth/{user_conn}/callback?code=x&state=not-a-state", key="", allow_redirects=False
    )

    assert resp.status_code == 400
    assert "expired or is not valid" in resp.text


def test_a_return_url_outside_the_allowlist_is_refused(user_conn, fresh_devhost):
    resp = fresh_devhost.get(
        f"/api/auth/{user_conn}/login?"
        + urlencode({"user": "anna@contoso.test", "returnUrl": "https://evil.example/x"}),
        key="",
        allow_redirects=False,
    )

    assert resp.status_code == 400
    assert "does not allow" in resp.text


def test_login_sets_pkce_nonce_and_a_sealed_state(user_conn, fresh_devhost):
    resp = fresh_devhost.get(
        f"/api/auth/{user_conn}/login?user=anna%40contoso.test", key="", allow_redirects=False
    )

    assert resp.status_code == 302
    location = resp.headers["Location"]
    for part in (
        "code_challenge=",
        "code_challenge_method=S256",
        "nonce=",
        "state=",
        "login_hint=anna%40contoso.test",
    ):
        assert part in location
    assert "HttpOnly" in resp.headers["Set-Cookie"]


def test_logs_captured_during_the_suite_contain_no_secret_or_token(fresh_devhost):
    # Runs last in this module (and this module runs last among the e2e modules): by now the
    # devhost has done device-code, password, per-user and revoked sign-ins. Its own scenario,
    # for a run of this test alone: the password option signing in and sending successfully.
    name = f"pw-{uuid.uuid4().hex[:8]}.contoso.test"
    done = admin(
        fresh_devhost,
        "add", name, "--mode", "service_account", "--credential", "password",
        "--account", "svc-docuflow@contoso.test", "--sender", "*@contoso.test",
        "--secret-stdin", *sandbox_flags(fresh_devhost.sandbox_url),
        stdin=SEED_PASSWORD,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    resp = send(fresh_devhost, name, "administratie@contoso.test")
    assert resp.status_code == 200, resp.text

    logs = "\n".join([fresh_devhost.logs(), *CLI_OUTPUT, *TEST_PROCESS_LOG.lines])
    secrets = {s for s in SEEN_SECRETS if len(s) >= 8}
    assert len(secrets) >= 2
    leaked = [s[:6] + "…" for s in secrets if s in logs]
    assert leaked == []
