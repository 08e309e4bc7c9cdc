"""Pure sign-in helpers: sealed state, PKCE, returnUrl allowlist, language choice, hooks."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from pathlib import Path

import pytest

from auth_routes.pages import TEXTS, failure_text, pick_language, render
from shared.errors import ReauthRequired, error_body
from shared.identity import signin
from shared.identity.entra_errors import needs_reauth
from shared.identity.signin_hooks import SignInHooks


def test_a_sealed_state_round_trips_and_hides_its_verifier():
    key = signin.new_state_key()
    state = signin.new_state("contoso.test", "anna@contoso.test", None)

    sealed = signin.seal(state, key)

    assert signin.unseal(sealed, key) == state
    assert state.verifier not in sealed and "anna" not in sealed


def test_a_state_older_than_its_ttl_is_refused():
    key = signin.new_state_key()
    sealed = signin.seal(signin.new_state("c", "a@b.test", None), key, now=1_000_000)

    with pytest.raises(signin.SignInError, match="expired"):
        signin.unseal(sealed, key, now=1_000_000 + signin.STATE_TTL_SECONDS + 5)
    assert signin.unseal(sealed, key, now=1_000_000 + 10).user == "a@b.test"


def test_a_state_sealed_with_another_key_or_altered_is_refused():
    state = signin.new_state("c", "a@b.test", None)
    sealed = signin.seal(state, signin.new_state_key())

    with pytest.raises(signin.SignInError):
        signin.unseal(sealed, signin.new_state_key())
    with pytest.raises(signin.SignInError):
        signin.unseal(sealed[:-4] + "AAAA", signin.new_state_key())


def test_the_pkce_challenge_is_the_s256_of_the_verifier():
    verifier, challenge = signin.pkce_pair()

    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert challenge == expected.decode() == signin.challenge_for(verifier)
    assert 43 <= len(verifier) <= 128


@pytest.mark.parametrize(
    "url",
    ["https://docuflow.example/done", "https://app.docuflow.example/x?y=1", "http://127.0.0.1:9/x"],
)
def test_return_urls_on_allowed_hosts_pass(url):
    assert signin.check_return_url(url, ["docuflow.example", "*.docuflow.example", "127.0.0.1"])


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/",
        "http://docuflow.example/",  # plain http off loopback
        "javascript:alert(1)",
        "https://user:pw@docuflow.example/",
        "https://docuflow.example.evil.example/",
    ],
)
def test_return_urls_elsewhere_are_refused(url):
    with pytest.raises(signin.SignInError):
        signin.check_return_url(url, ["docuflow.example"])


def test_no_return_url_is_fine():
    assert signin.check_return_url(None, []) is None


def test_the_binding_cookie_must_carry_the_states_value():
    assert signin.binding_matches(f"a=1; {signin.BINDING_COOKIE}=xyz", "xyz")
    assert not signin.binding_matches(f"{signin.BINDING_COOKIE}=other", "xyz")
    assert not signin.binding_matches(None, "xyz")


def test_the_base_url_prefers_public_base_url():
    assert signin.base_url("https://app.example/", "http://10.0.0.1:7071/api/x") == (
        "https://app.example"
    )
    assert signin.base_url("", "http://127.0.0.1:7071/api/x?y") == "http://127.0.0.1:7071"


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("nl-NL,nl;q=0.9,en;q=0.8", "nl"),
        ("en-US,en;q=0.9,nl;q=0.8", "en"),
        ("de-DE,nl;q=0.5", "nl"),
        ("fr", "en"),
        ("", "en"),
        (None, "en"),
        ("en;q=0.2,nl;q=0.7", "nl"),
    ],
)
def test_the_result_page_language_follows_accept_language(header, language):
    assert pick_language(header) == language


def test_the_result_page_escapes_what_it_shows():
    page = render("en", ok=False, reason="refused", params={"error": "<script>x</script>"})

    assert "<script>x" not in page and "&lt;script&gt;" in page


def reasons_raised_in_code() -> set[str]:
    root = Path(__file__).resolve().parents[2]
    found = set()
    for path in [*root.glob("shared/**/*.py"), *root.glob("auth_routes/*.py")]:
        found |= set(re.findall(r'reason="(\w+)"', path.read_text()))
    return found


def test_every_refusal_has_its_own_text_in_both_languages():
    raised = reasons_raised_in_code()
    assert {"wrong_account", "state_invalid", "not_available", "app_error"} <= raised
    assert set(TEXTS["en"]) == set(TEXTS["nl"])
    for reason in raised:
        assert reason in TEXTS["nl"], reason


@pytest.mark.parametrize(
    ("reason", "params"),
    [
        ("wrong_account", {"signed_in": "bram@contoso.test", "user": "anna@contoso.test"}),
        ("refused", {"error": "invalid_grant (AADSTS70000)"}),
        ("not_available", {}),
        ("app_error", {"code": "auth_failed"}),
        ("state_invalid", {}),
    ],
)
def test_a_dutch_browser_gets_a_wholly_dutch_failure_page(reason, params):
    error = signin.SignInError("English text for the log", reason=reason, **params)
    page = render(
        pick_language("nl-NL,nl;q=0.9"), ok=False, reason=error.reason, params=error.params
    )

    assert '<html lang="nl">' in page and "Aanmelden is mislukt" in page
    message = re.search(r'<p id="message">(.*)</p>', page).group(1)
    assert "English text" not in message and "{" not in message
    english = failure_text("en", reason, params)
    assert failure_text("nl", reason, params) != english
    for value in params.values():
        assert value in page  # the variable parts are shown in either language


def test_an_unknown_reason_or_missing_detail_falls_back_to_the_generic_line():
    assert failure_text("nl", "no_such_reason", {}) == TEXTS["nl"]["failed"]
    assert failure_text("nl", "refused", {}) == TEXTS["nl"]["failed"]  # no {error} to show
    assert "een ander account" in failure_text("nl", "wrong_account", {"user": "a@b.c"})


def test_a_failing_sign_in_hook_is_logged_and_the_others_still_run(caplog):
    calls = []

    def broken(connection, user):
        raise RuntimeError("boom")

    def good(connection, user):
        calls.append((connection, user))

    hooks = SignInHooks([broken])
    hooks.register(good)
    hooks.register(good)  # once only
    with caplog.at_level(logging.ERROR):
        hooks.notify("contoso.test", "anna@contoso.test")

    assert calls == [("contoso.test", "anna@contoso.test")]
    assert "sign-in hook" in caplog.text


@pytest.mark.parametrize(
    ("result", "reauth"),
    [
        ({"error": "invalid_grant", "error_codes": [700082]}, True),
        ({"error": "interaction_required", "error_codes": [50076]}, True),
        ({"error": "invalid_grant", "error_codes": [50173]}, True),
        ({"error": "something", "error_codes": [70043]}, True),
        ({"error": "invalid_client", "error_codes": [7000215]}, False),
        ({"error": "temporarily_unavailable"}, False),
    ],
)
def test_which_entra_errors_mean_sign_in_again(result, reauth):
    assert needs_reauth(result) is reauth


def test_reauth_required_carries_its_sign_in_url_or_admin_command():
    user = error_body(ReauthRequired("x", sign_in_url="https://a/api/auth/c/login?user=u"))
    admin = error_body(
        ReauthRequired("x", admin_command="python -m admin connections authenticate c")
    )

    assert (
        user["error"]["signInUrl"].endswith("login?user=u") and "adminCommand" not in user["error"]
    )
    assert admin["error"]["adminCommand"].startswith("python -m admin")
