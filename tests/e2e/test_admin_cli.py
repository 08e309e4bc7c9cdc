"""The admin command line against the sandbox Key Vault: --json for scripts, readable text for
people, one clear sentence per failure."""

from __future__ import annotations

import uuid

import pytest

from devhost.bootstrap import SANDBOX_CLIENT_SECRET
from tests.e2e.connections_kit import (
    add_service_account,
    admin,
    admin_json,
    authenticate_with_device_code,
    sandbox_flags,
    stored_secret,
)

pytestmark = pytest.mark.timeout(180)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}.contoso.test"


def test_add_show_list_and_remove_an_app_connection_as_json(fresh_devhost, sandbox):
    name = _name("cli")

    added = admin_json(
        fresh_devhost,
        "add",
        name,
        "--mode",
        "app",
        "--sender",
        "administratie@contoso.test",
        "--secret-stdin",
        *sandbox_flags(fresh_devhost.sandbox_url),
        stdin=SANDBOX_CLIENT_SECRET,
    )
    shown = admin_json(fresh_devhost, "show", name)
    listed = admin_json(fresh_devhost, "list")
    removed = admin_json(fresh_devhost, "remove", name)

    assert added["saved"] is True
    assert shown["mode"] == "app"
    assert shown["allowedSenders"] == ["administratie@contoso.test"]
    assert shown["credential"] == "client_secret"
    assert SANDBOX_CLIENT_SECRET not in str(shown)
    assert name in [c["name"] for c in listed["connections"]]
    assert len(removed["removedSecrets"]) == 3  # credential, signing key, connection
    assert stored_secret(sandbox, shown["credentialSecretName"]) is None
    gone = admin(fresh_devhost, "show", name, "--json")
    assert gone.returncode == 1
    assert '"unknown_connection"' in gone.stdout


def test_show_reports_who_signed_in_and_the_90_day_window(fresh_devhost, sandbox):
    name = _name("sa")
    add_service_account(fresh_devhost, name)
    before = admin_json(fresh_devhost, "show", name)
    assert before["signIns"][0]["signedInAs"] is None

    rc, _out, err, _ = authenticate_with_device_code(
        fresh_devhost, sandbox, name, "svc-docuflow@contoso.test", as_json=True
    )
    assert rc == 0, err
    after = admin_json(fresh_devhost, "show", name)
    human = admin(fresh_devhost, "list")

    state = after["signIns"][0]
    assert state["signedInAs"] == "svc-docuflow@contoso.test"
    assert state["hasRefreshToken"] is True
    assert 89 <= state["daysUntilInactivityLimit"] <= 90
    assert state["refreshTokenLastUsed"].endswith("Z")
    assert human.returncode == 0
    assert f"{name}  [service_account]" in human.stdout
    assert state["state"] == "ok"  # a fresh sign-in, before any signin_health run
    assert "sign-in: svc-docuflow@contoso.test OK (refresh token used" in human.stdout
    assert "days left of 90" in human.stdout
    assert "To sign in, open" in err and "enter the code:" in err  # shown to the admin


def test_test_probes_read_only_and_sends_a_real_mail_with_send_to(fresh_devhost, sandbox):
    probe = admin_json(
        fresh_devhost, "test", "contoso.test", "--mailbox", "administratie@contoso.test"
    )
    sent = admin_json(
        fresh_devhost,
        "test",
        "contoso.test",
        "--mailbox",
        "administratie@contoso.test",
        "--send-to",
        "extern@example.test",
    )

    assert probe["probe"] == "ok" and "sent" not in probe
    assert sent["sent"]["to"] == "extern@example.test"


def test_a_failing_test_is_one_sentence_saying_what_to_do(fresh_devhost):
    name = _name("sa")
    add_service_account(fresh_devhost, name)

    done = admin(fresh_devhost, "test", name)

    assert done.returncode == 1
    line = done.stderr.strip()
    assert line.count("\n") == 0
    assert f"python -m admin connections authenticate {name}" in line


def test_human_output_of_show_is_aligned_key_value_lines(fresh_devhost):
    done = admin(fresh_devhost, "show", "contoso.test")

    assert done.returncode == 0, done.stderr
    assert "       mode: app" in done.stdout
    assert "    sign-in: app-only, no sign-in needed" in done.stdout


def test_adding_a_client_secret_connection_without_the_secret_says_how_to_pass_it(fresh_devhost):
    done = admin(fresh_devhost, "add", _name("x"), "--mode", "app", *sandbox_flags("https://h"))

    assert done.returncode == 1
    assert "--secret-stdin" in done.stderr
