"""The admin command line's parser, its connection options and its independence from the local
tools (no Key Vault needed here; tests/e2e/test_admin_cli.py runs it against the sandbox)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from admin import commands
from admin.cli import build_parser, main
from admin.connection_options import merged_document
from shared.identity.connections import parse_connection

REPO = Path(__file__).resolve().parents[2]
BASE = ["connections", "add", "documizers.com", "--tenant", "t", "--client-id", "c"]


def new_document(*extra: str) -> dict:
    return merged_document(build_parser().parse_args([*BASE, "--mode", "user", *extra]), None)


def test_every_command_names_its_handler_and_printer() -> None:
    parser = build_parser()
    for argv in (
        ["connections", "list"],
        ["connections", "show", "x"],
        ["connections", "remove", "x"],
        ["connections", "test", "x", "--send-to", "a@b.c"],
        ["connections", "authenticate", "x", "--timeout", "5"],
        [*BASE, "--mode", "app"],
    ):
        args = parser.parse_args(argv)
        assert callable(args.handler) and callable(args.printer), argv


def test_scopes_take_several_names_at_once_spaces_or_commas() -> None:
    doc = new_document("--scopes", "Mail.Send.Shared", "Mail.ReadWrite.Shared", "--sender", "a@b.c")
    assert doc["delegatedScopes"] == ["Mail.Send.Shared", "Mail.ReadWrite.Shared"]
    assert doc["allowedSenders"] == ["a@b.c"]
    assert new_document("--scopes", "Mail.Send,Mail.ReadWrite")["delegatedScopes"] == [
        "Mail.Send",
        "Mail.ReadWrite",
    ]
    # The older spelling still works; without either the mode's default applies.
    assert new_document("--delegated-scope", "Mail.Send")["delegatedScopes"] == ["Mail.Send"]
    assert "delegatedScopes" not in new_document()
    assert parse_connection(new_document()).permissions() == ["Mail.Send", "Mail.ReadWrite"]


def add_doc(mode: str, *scopes: str) -> dict:
    credential = {"app": "client_secret", "service_account": "token_cache", "user": "client_secret"}
    return {
        "name": "n",
        "mode": mode,
        "tenantId": "t",
        "clientId": "c",
        "credential": {"type": credential[mode]},
        **({"delegatedScopes": list(scopes)} if scopes else {}),
    }


def test_default_scopes_cover_every_operation_without_a_warning() -> None:
    for mode in ("app", "service_account", "user"):
        assert commands.scope_warning(add_doc(mode)) is None, mode


def test_scopes_that_leave_operations_out_are_named_in_a_warning() -> None:
    warning = commands.scope_warning(add_doc("user", "Mail.Send"))
    assert warning and warning.startswith("WARNING:")
    for operation in ("send (needs Mail.ReadWrite)", "draft", "move"):
        assert operation in warning
    assert "send_without_copy" not in warning
    # A service account acts in other mailboxes: the plain permissions are not enough.
    warning = commands.scope_warning(add_doc("service_account", "Mail.Send", "Mail.ReadWrite"))
    assert warning and "needs Mail.Send.Shared" in warning
    assert (
        commands.scope_warning(add_doc("user", "Mail.Send.Shared", "Mail.ReadWrite.Shared")) is None
    )


def test_the_ropc_warning_says_what_microsoft_says() -> None:
    text = commands.ROPC_WARNING
    assert "does not recommend" in text and "MFA" in text and "federated" in text
    assert "retiring" not in text


def test_an_unusable_settings_file_is_one_sentence(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope.json"
    assert main(["connections", "list", "--settings", str(missing)]) == 1
    assert capsys.readouterr().err.strip().startswith(f"error: {missing} not found")
    broken = tmp_path / "broken.json"
    broken.write_text('{"Values": {"PORT": 1}}')
    assert main(["connections", "list", "--settings", str(broken), "--json"]) == 1
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "failed" and "must be a string" in error["message"]


@pytest.mark.parametrize("argv", [["connections", "--help"], ["connections", "add", "--help"]])
def test_the_command_line_loads_none_of_the_local_tools(argv: list[str], tmp_path: Path) -> None:
    # Reading --settings included: it used to import the devhost for that.
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": {"KEY_VAULT_URL": "https://kv.vault.azure.net"}}))
    code = (
        "import pathlib, runpy, sys\n"
        "file = pathlib.Path(sys.argv[1])\n"
        f"sys.argv = ['admin', *{argv!r}]\n"
        "try:\n"
        "    runpy.run_module('admin', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "import admin.commands, admin.probe, admin.authenticate\n"
        "from admin.vault import load_settings\n"
        "assert load_settings(file, None).key_vault_url == 'https://kv.vault.azure.net'\n"
        "tools = {'devhost', 'sandbox', 'tests', 'bench'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & tools))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(settings)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (["--notify-url", "https://evil.example/hook"], "not on the connection's callbackUrlHosts"),
        (
            ["--notify-url", "https://127.0.0.1/hook", "--callback-host", "127.0.0.1"],
            "resolves to a loopback address",
        ),
        (
            ["--notify-url", "https://h.example:8443/hook", "--callback-host", "h.example"],
            "standard https port (443)",
        ),
    ],
    ids=["host not allowed", "loopback without private hosts", "other port"],
)
def test_a_notify_url_follows_the_callback_rules(extra: list[str], reason: str) -> None:
    doc = new_document(*extra)

    with pytest.raises(commands.CliError, match="--notify-url is not allowed") as caught:
        commands.check_notify_url(doc)

    assert reason in str(caught.value)


def test_a_plain_http_notify_url_is_not_a_valid_connection() -> None:
    from shared.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as caught:
        parse_connection(new_document("--notify-url", "http://docuflow.example/hook"))

    assert [d.field for d in caught.value.details] == ["notifyUrl"]


def test_the_audit_parses_its_options() -> None:
    args = build_parser().parse_args(
        ["connections", "audit", "x", "--mailbox", "a@b.c", "--mailbox", "d@b.c", "--send-test"]
    )
    assert args.mailbox == ["a@b.c", "d@b.c"] and args.send_test is True
    assert args.handler is commands.audit_connection
