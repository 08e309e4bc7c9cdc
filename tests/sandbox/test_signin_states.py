"""The sandbox's sign-in states, driven by MSAL over real HTTPS: the clock that ages refresh
tokens (90 days of inactivity), password expiry, MFA demands, and the permission and app-scope
controls Exchange admins would set with PowerShell."""

from __future__ import annotations

import msal
import pytest

from tests.conftest import SEED_CLIENT_ID, SEED_PASSWORD, SEED_TENANT
from tests.sandbox.graph_client import DELEGATED as SHARED
from tests.sandbox.graph_client import Graph, app_token, user_token

SVC = "svc-docuflow@contoso.test"
ANNA = "anna@contoso.test"
BRAM = "bram@contoso.test"


@pytest.fixture(autouse=True)
def _no_user_realm_discovery():
    known = msal.authority.Authority._domains_without_user_realm_discovery
    added = {"127.0.0.1", "localhost"} - known
    known.update(added)
    yield
    known.difference_update(added)


def public(sandbox) -> msal.PublicClientApplication:
    return msal.PublicClientApplication(
        SEED_CLIENT_ID, authority=f"{sandbox.url}/{SEED_TENANT}", instance_discovery=False
    )


def sign_in(sandbox, upn: str) -> tuple[msal.PublicClientApplication, dict]:
    """A device-code sign-in approved through the control API (an interactive sign-in)."""
    app = public(sandbox)
    flow = app.initiate_device_flow(scopes=SHARED)
    sandbox.control("POST", "devicecode/approve", json={"userCode": flow["user_code"], "user": upn})
    result = app.acquire_token_by_device_flow(flow)
    assert "access_token" in result, result
    return app, result


def advance(sandbox, days: float, user: str | None = None) -> dict:
    body = {"days": days, **({"user": user} if user else {})}
    return sandbox.control("POST", "clock/advance", json=body).json()


def refresh(app: msal.PublicClientApplication, token: str) -> dict:
    return app.acquire_token_by_refresh_token(token, scopes=SHARED)


def test_a_refresh_token_idle_past_90_days_of_its_users_clock_is_invalid_grant_700082(
    fresh_sandbox,
):
    app, first = sign_in(fresh_sandbox, SVC)
    moved = advance(fresh_sandbox, 91, SVC)

    result = refresh(app, first["refresh_token"])

    assert moved["offsetSeconds"] == 91 * 86400
    assert result["error"] == "invalid_grant" and result["error_codes"] == [700082]


def test_a_refresh_on_day_80_keeps_the_sign_in_alive_past_day_90(fresh_sandbox):
    app, first = sign_in(fresh_sandbox, SVC)
    advance(fresh_sandbox, 80, SVC)
    renewed = refresh(app, first["refresh_token"])
    advance(fresh_sandbox, 15, SVC)  # day 95 from the sign-in, day 15 from the refresh

    later = refresh(app, renewed["refresh_token"])

    assert "access_token" in renewed and "access_token" in later, later


def test_another_users_clock_does_not_age_this_sign_in(fresh_sandbox):
    app, first = sign_in(fresh_sandbox, ANNA)
    advance(fresh_sandbox, 120, SVC)

    assert "access_token" in refresh(app, first["refresh_token"])


def test_the_global_clock_ages_every_sign_in(fresh_sandbox):
    app, first = sign_in(fresh_sandbox, ANNA)
    advance(fresh_sandbox, 91)

    assert refresh(app, first["refresh_token"])["error_codes"] == [700082]
    assert fresh_sandbox.control("GET", "clock").json()["offsets"] == {"*": 91 * 86400}


def test_an_access_token_held_before_its_users_clock_moved_is_expired_at_graph(fresh_sandbox):
    _app, first = sign_in(fresh_sandbox, SVC)
    graph = Graph(fresh_sandbox.url, fresh_sandbox.ca, first["access_token"])
    assert graph.get("me/mailFolders/inbox").status_code == 200
    advance(fresh_sandbox, 2, SVC)

    resp = graph.get("me/mailFolders/inbox")

    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_the_clock_never_goes_back_and_reset_forgets_it(fresh_sandbox):
    resp = fresh_sandbox.http.post(
        f"{fresh_sandbox.url}/_sandbox/clock/advance", json={"days": -1}, timeout=10
    )
    advance(fresh_sandbox, 3)
    fresh_sandbox.reset()

    assert resp.status_code == 400
    assert fresh_sandbox.control("GET", "clock").json()["offsets"] == {}


def test_an_expired_password_ends_refresh_password_and_interactive_sign_ins_with_50055(
    fresh_sandbox,
):
    app, first = sign_in(fresh_sandbox, ANNA)
    state = fresh_sandbox.control(
        "POST", f"users/{ANNA}/state", json={"passwordExpired": True}
    ).json()

    refreshed = refresh(app, first["refresh_token"])
    ropc = app.acquire_token_by_username_password(ANNA, SEED_PASSWORD, scopes=SHARED)
    flow = app.initiate_device_flow(scopes=SHARED)
    approve = fresh_sandbox.http.post(
        f"{fresh_sandbox.url}/_sandbox/devicecode/approve",
        json={"userCode": flow["user_code"], "user": ANNA},
        timeout=10,
    )
    cleared = fresh_sandbox.control(
        "POST", f"users/{ANNA}/state", json={"passwordExpired": False}
    ).json()
    assert cleared["passwordExpired"] is False, cleared

    assert state["passwordExpired"] is True
    assert refreshed["error"] == "invalid_grant" and refreshed["error_codes"] == [50055]
    assert ropc["error_codes"] == [50055]
    assert approve.status_code == 400 and "AADSTS50055" in approve.json()["error"]["message"]
    # A new MSAL app: MSAL remembers an invalid_grant answer to the same request for a while.
    assert "access_token" in refresh(public(fresh_sandbox), first["refresh_token"])


@pytest.mark.parametrize(("mfa", "code"), [("required", 50076), ("registration_required", 50079)])
def test_an_mfa_demand_refuses_older_refresh_tokens_until_an_interactive_sign_in(
    fresh_sandbox, mfa, code
):
    app, first = sign_in(fresh_sandbox, BRAM)
    fresh_sandbox.control("POST", f"users/{BRAM}/state", json={"mfa": mfa})

    refused = refresh(app, first["refresh_token"])
    _app, again = sign_in(fresh_sandbox, BRAM)  # the person completes MFA interactively

    assert refused["error"] == "interaction_required" and refused["error_codes"] == [code]
    assert refused["suberror"] == "basic_action"
    assert "access_token" in refresh(app, again["refresh_token"])


def test_an_unknown_mfa_state_is_a_clear_400(fresh_sandbox):
    resp = fresh_sandbox.http.post(
        f"{fresh_sandbox.url}/_sandbox/users/{ANNA}/state", json={"mfa": "maybe"}, timeout=10
    )

    assert resp.status_code == 400 and "mfa is one of" in resp.json()["error"]["message"]


def test_full_access_granted_and_taken_away_through_the_control_api(fresh_sandbox):
    graph = Graph(fresh_sandbox.url, fresh_sandbox.ca, user_token(fresh_sandbox.url, SVC))
    before = graph.get(f"users/{BRAM}/mailFolders/sentitems")
    granted = fresh_sandbox.control(
        "POST", "permissions", json={"mailbox": BRAM, "trustee": SVC, "add": ["FullAccess"]}
    ).json()
    during = graph.get(f"users/{BRAM}/mailFolders/sentitems")
    fresh_sandbox.control(
        "POST", "permissions", json={"mailbox": BRAM, "trustee": SVC, "remove": ["FullAccess"]}
    )
    after = graph.get(f"users/{BRAM}/mailFolders/sentitems")
    listed = fresh_sandbox.control("GET", "permissions").json()["value"]

    assert (before.status_code, during.status_code, after.status_code) == (403, 200, 403)
    assert granted["rights"] == ["FullAccess"]
    assert {"mailbox": ANNA, "trustee": SVC, "rights": ["FullAccess", "SendAs"]} in listed
    assert not [g for g in listed if g["mailbox"] == BRAM]


def test_an_unknown_right_is_refused(fresh_sandbox):
    resp = fresh_sandbox.http.post(
        f"{fresh_sandbox.url}/_sandbox/permissions",
        json={"mailbox": BRAM, "trustee": SVC, "add": ["Owner"]},
        timeout=10,
    )

    assert resp.status_code == 400


def test_an_apps_management_scope_limits_the_mailboxes_it_reaches(fresh_sandbox):
    graph = Graph(fresh_sandbox.url, fresh_sandbox.ca, app_token(fresh_sandbox.url))
    fresh_sandbox.control("PUT", f"apps/{SEED_CLIENT_ID}/mailboxScope", json={"mailboxes": [ANNA]})
    inside = graph.get(f"users/{ANNA}/mailFolders/inbox")
    outside = graph.get(f"users/{BRAM}/mailFolders/inbox")
    fresh_sandbox.control("DELETE", f"apps/{SEED_CLIENT_ID}/mailboxScope")

    assert inside.status_code == 200
    assert outside.status_code == 403 and outside.json()["error"]["code"] == "ErrorAccessDenied"
    assert graph.get(f"users/{BRAM}/mailFolders/inbox").status_code == 200
