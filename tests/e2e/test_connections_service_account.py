"""Service-account connections end to end: device code through the CLI, Key Vault cache,
restart, Send As, revocation, the password option, and how little token/secret traffic it costs."""

from __future__ import annotations

import uuid

import pytest

from shared.identity.secret_names import token_cache_secret as service_account_cache_name
from tests.e2e.connections_kit import (
    SEEN_SECRETS,
    add_service_account,
    admin,
    authenticate_with_device_code,
    send,
    sent_items_subjects,
    stored_secret,
)

pytestmark = pytest.mark.timeout(240)


def revoke_and_wait_for_refresh(devhost, sandbox) -> None:
    """Revoke the service account's refresh tokens; restarting the devhost drops its in-memory
    access token (the stored cache has none), so the next send must refresh."""
    sandbox.control("POST", "users/svc-docuflow@contoso.test/revoke", json={})
    devhost.stop()
    devhost.start()


def unusual_lines(devhost) -> list[str]:
    """What the running devhost printed, but for its 200 answers: a failure's traceback."""
    lines = "".join(devhost.service.output).splitlines()
    return [line for line in lines if " -> 200 (" not in line][-80:]


def _name() -> str:
    return f"sa-{uuid.uuid4().hex[:8]}.contoso.test"


@pytest.fixture
def signed_in(fresh_devhost, sandbox):
    """A service_account connection whose admin signed in with the device code via the CLI."""
    name = _name()
    add_service_account(fresh_devhost, name)
    rc, out, err, _ = authenticate_with_device_code(
        fresh_devhost, sandbox, name, "svc-docuflow@contoso.test"
    )
    assert rc == 0, out + err
    assert "Signed in as svc-docuflow@contoso.test" in out, out + err
    return name


def test_device_code_sign_in_stores_a_cache_and_sends_as_administratie(
    signed_in, fresh_devhost, sandbox
):
    stored = stored_secret(sandbox, service_account_cache_name(signed_in))
    assert stored and '"account":"svc-docuflow@contoso.test"' in stored
    assert "AccessToken" not in stored  # pruned before storing

    resp = send(fresh_devhost, signed_in, "administratie@contoso.test", subject="sa-first")

    assert resp.status_code == 200, resp.text
    assert "sa-first" in sent_items_subjects(sandbox, "administratie@contoso.test")


def test_sends_keep_working_across_a_devhost_restart_without_signing_in_again(
    signed_in, fresh_devhost, sandbox
):
    assert send(fresh_devhost, signed_in, "administratie@contoso.test").status_code == 200
    fresh_devhost.stop()
    fresh_devhost.start()
    since = sandbox.control("GET", "requests", params={"limit": 1}).json()["lastSeq"]

    resp = send(fresh_devhost, signed_in, "administratie@contoso.test", subject="after-restart")

    assert resp.status_code == 200, resp.text
    assert "after-restart" in sent_items_subjects(sandbox, "administratie@contoso.test")
    log = sandbox.control("GET", "requests", params={"since": since, "limit": 5000}).json()
    paths = [e["path"] for e in log["value"]]
    assert not any("devicecode" in p for p in paths), "nobody should have to sign in again"


def test_sending_as_a_mailbox_without_send_as_is_403_with_the_grant_hint(signed_in, fresh_devhost):
    resp = send(fresh_devhost, signed_in, "bram@contoso.test")

    assert resp.status_code == 403, resp.text
    error = resp.json()["error"]
    assert error["code"] == "send_as_denied"
    assert "Add-RecipientPermission" in error["message"]


def test_a_revoked_service_account_answers_reauth_required_with_the_admin_command(
    signed_in, fresh_devhost, sandbox
):
    revoke_and_wait_for_refresh(fresh_devhost, sandbox)

    resp = send(fresh_devhost, signed_in, "administratie@contoso.test")

    assert resp.status_code == 401, resp.text
    error = resp.json()["error"]
    assert error["code"] == "reauth_required"
    assert error["adminCommand"] == f"python -m admin connections authenticate {signed_in}"


def test_signing_in_again_after_a_revoke_restores_sending(signed_in, fresh_devhost, sandbox):
    revoke_and_wait_for_refresh(fresh_devhost, sandbox)
    assert send(fresh_devhost, signed_in, "administratie@contoso.test").status_code == 401

    rc, out, err, _ = authenticate_with_device_code(
        fresh_devhost, sandbox, signed_in, "svc-docuflow@contoso.test"
    )
    assert rc == 0, out + err

    assert send(fresh_devhost, signed_in, "administratie@contoso.test").status_code == 200


def test_device_code_approved_by_another_account_is_refused_and_stores_nothing(
    fresh_devhost, sandbox
):
    name = _name()
    add_service_account(fresh_devhost, name)

    rc, out, err, _ = authenticate_with_device_code(
        fresh_devhost, sandbox, name, "anna@contoso.test"
    )

    # The whole CLI output in the messages: a failure here must say what the CLI said instead.
    assert rc == 1, out + err
    assert "anna@contoso.test signed in" in err, out + err
    assert "nothing was stored" in err, out + err
    assert stored_secret(sandbox, service_account_cache_name(name)) is None


def test_the_password_option_for_an_mfa_account_gives_reauth_required_not_500(
    fresh_devhost, sandbox
):
    name = _name()
    from tests.conftest import SEED_PASSWORD
    from tests.e2e.connections_kit import sandbox_flags

    done = admin(
        fresh_devhost,
        "add",
        name,
        "--mode",
        "service_account",
        "--credential",
        "password",
        "--account",
        "carla@contoso.test",
        "--sender",
        "*@contoso.test",
        "--secret-stdin",
        *sandbox_flags(fresh_devhost.sandbox_url),
        stdin=SEED_PASSWORD,
    )
    assert done.returncode == 0, done.stderr
    assert "discouraged" in done.stderr  # the CLI warns about ROPC

    resp = send(fresh_devhost, name, "carla@contoso.test")

    assert resp.status_code == 401, resp.text
    error = resp.json()["error"]
    assert error["code"] == "reauth_required"
    assert "MFA" in error["message"]


def test_200_sends_cost_at_most_2_token_requests_and_2_key_vault_reads_per_process(
    signed_in, fresh_devhost, sandbox
):
    fresh_devhost.stop()
    fresh_devhost.start()
    # 200 mails from one mailbox: Exchange's 30 a minute would make this minutes of waiting;
    # what is counted here is token and Key Vault traffic, not the send rate.
    sandbox.control("PATCH", "limits", json={"sendRatePerMinute": None})
    since = sandbox.control("GET", "requests", params={"limit": 1}).json()["lastSeq"]

    from concurrent.futures import ThreadPoolExecutor

    def one(i: int) -> int:
        return send(
            fresh_devhost, signed_in, "administratie@contoso.test", subject=f"n{i}"
        ).status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(one, range(200)))

    assert statuses == [200] * 200, (statuses, unusual_lines(fresh_devhost))
    log = sandbox.control("GET", "requests", params={"since": since, "limit": 5000}).json()["value"]
    token_requests = [e for e in log if e["path"].endswith("/oauth2/v2.0/token")]
    # The Key Vault SDK's first request is an unauthenticated challenge (401): not a read.
    vault_reads = [
        (e["path"], e["status"])
        for e in log
        if e["method"] == "GET" and e["path"].startswith("/secrets/") and e["status"] != 401
    ]
    assert len(token_requests) <= 2, [(e["app"], e["user"]) for e in token_requests]
    assert len(vault_reads) <= 2, vault_reads
    SEEN_SECRETS.discard("")
