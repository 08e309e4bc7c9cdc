"""`python -m admin connections audit` against the sandbox's seed tenant: which grants each sender
mailbox has, the PowerShell for each missing one, and exit status 1 while anything is missing."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import SEED_PASSWORD
from tests.e2e.connections_kit import admin, authenticate_with_device_code, sandbox_flags

pytestmark = pytest.mark.timeout(240)

SVC = "svc-docuflow@contoso.test"
ADMIN, ANNA, BRAM = "administratie@contoso.test", "anna@contoso.test", "bram@contoso.test"
FULL_ACCESS_BRAM = (
    f"Add-MailboxPermission -Identity {BRAM} -User {SVC} -AccessRights FullAccess "
    "-InheritanceType All -AutoMapping $false"
)
SEND_AS_BRAM = f"Add-RecipientPermission -Identity {BRAM} -Trustee {SVC} -AccessRights SendAs"


def audit_json(host, name: str, *args: str) -> tuple[int, dict]:
    done = admin(host, "audit", name, *args, "--json")
    return done.returncode, json.loads(done.stdout)


def checks(report: dict, mailbox: str) -> dict[str, dict]:
    (box,) = [m for m in report["mailboxes"] if m["mailbox"] == mailbox]
    return {c["check"]: c for c in box["checks"]}


@pytest.fixture
def service_connection(fresh_devhost, sandbox) -> str:
    """A service-account connection for three concrete senders, signed in as svc-docuflow."""
    name = f"audit-{uuid.uuid4().hex[:8]}.contoso.test"
    senders = [arg for s in (ADMIN, ANNA, BRAM) for arg in ("--sender", s)]
    done = admin(
        fresh_devhost,
        "add",
        name,
        "--mode",
        "service_account",
        "--account",
        SVC,
        *senders,
        *sandbox_flags(fresh_devhost.sandbox_url),
    )
    assert done.returncode == 0, done.stderr
    rc, _out, err, _code = authenticate_with_device_code(fresh_devhost, sandbox, name, SVC)
    assert rc == 0, err
    return name


def test_audit_reports_ok_mailboxes_and_the_grants_bram_lacks(fresh_devhost, service_connection):
    rc, report = audit_json(
        fresh_devhost, service_connection, "--send-test", "--mailbox", "ceo@fabrikam.test"
    )
    human = admin(fresh_devhost, "audit", service_connection, "--send-test")

    assert rc == 1 and report["ok"] is False and human.returncode == 1
    assert report["signIn"]["status"] == "ok"
    for mailbox in (ADMIN, ANNA):
        got = checks(report, mailbox)
        assert {k: c["status"] for k, c in got.items()} == {
            "fullAccess": "ok",
            "draft": "ok",
            "sendAs": "ok",
        }, got
    bram = checks(report, BRAM)
    assert bram["fullAccess"]["status"] == "missing"
    assert bram["fullAccess"]["grant"] == FULL_ACCESS_BRAM
    assert bram["sendAs"]["status"] == "missing"
    assert bram["sendAs"]["grant"].startswith(SEND_AS_BRAM)
    assert bram["draft"]["status"] == "skipped"
    # A mailbox the connection may not use is refused without a Graph call.
    assert checks(report, "ceo@fabrikam.test") == {
        "allowed": {
            "check": "allowed",
            "status": "failed",
            "message": "ceo@fabrikam.test is not one of the connection's senders",
            "grant": None,
        }
    }
    lines = human.stdout.splitlines()
    assert f"  {ADMIN}: OK" in lines and f"  {ANNA}: OK" in lines and f"  {BRAM}: FAILED" in lines
    assert any(FULL_ACCESS_BRAM in line and "fullAccess MISSING" in line for line in lines)
    assert any(SEND_AS_BRAM in line and "sendAs MISSING" in line for line in lines)


def test_without_send_test_send_as_is_not_checkable_and_grants_make_it_pass(
    fresh_devhost, sandbox, service_connection
):
    _rc, before = audit_json(fresh_devhost, service_connection)
    for right in ("FullAccess", "SendAs"):  # Add-MailboxPermission, Add-RecipientPermission
        sandbox.control(
            "POST", "permissions", json={"mailbox": BRAM, "trustee": SVC, "add": [right]}
        )
    rc, after = audit_json(fresh_devhost, service_connection, "--send-test")

    send_as = checks(before, ADMIN)["sendAs"]
    assert send_as["status"] == "not_checkable" and "--send-test" in send_as["message"]
    assert rc == 0 and after["ok"] is True, after


def test_a_wildcard_sender_needs_the_mailboxes_named(fresh_devhost, sandbox):
    rc, report = audit_json(fresh_devhost, "contoso.test")  # app-only, *@contoso.test
    named_rc, named = audit_json(fresh_devhost, "contoso.test", "--mailbox", BRAM)

    assert rc == 0 and report["mailboxes"] == [] and report["uncovered"] == ["*@contoso.test"]
    assert named_rc == 0 and checks(named, BRAM)["appScope"]["status"] == "ok"


def test_an_app_outside_its_exchange_scope_gets_the_role_assignment_to_run(fresh_devhost, sandbox):
    from tests.conftest import SEED_CLIENT_ID

    sandbox.control("PUT", f"apps/{SEED_CLIENT_ID}/mailboxScope", json={"mailboxes": [ANNA]})
    rc, report = audit_json(fresh_devhost, "contoso.test", "--mailbox", ANNA, "--mailbox", BRAM)

    assert rc == 1
    assert checks(report, ANNA)["appScope"]["status"] == "ok"
    scope = checks(report, BRAM)["appScope"]
    assert scope["status"] == "missing"
    assert f"New-ManagementRoleAssignment -App {SEED_CLIENT_ID}" in scope["grant"]
    assert "-CustomResourceScope" in scope["grant"]


def test_carlas_sign_in_needs_mfa_and_the_audit_says_so(fresh_devhost):
    name = f"carla-{uuid.uuid4().hex[:8]}.contoso.test"
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
        "carla@contoso.test",
        "--secret-stdin",
        *sandbox_flags(fresh_devhost.sandbox_url),
        stdin=SEED_PASSWORD,
    )
    assert done.returncode == 0, done.stderr

    rc, report = audit_json(fresh_devhost, name)

    assert rc == 1
    sign_in = report["signIn"]
    assert sign_in["status"] == "failed"
    assert "MFA required" in sign_in["message"] and "AADSTS50076" in sign_in["message"]
    assert checks(report, "carla@contoso.test")["mailbox"]["status"] == "skipped"
