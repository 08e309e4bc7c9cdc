"""scripts/azd-preprovision.sh, run as azd runs it, stops a provision that would fail late and
warns about one that would work badly (alerts to nobody). `az` is a stand-in on PATH that
answers like the Azure CLI; nothing here reaches Azure."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOOK = REPO / "scripts" / "azd-preprovision.sh"
REGISTER = "az provider register --namespace Microsoft.App --wait"


def fake_az(tmp_path: Path, state: str, *, exit_status: int = 0) -> Path:
    """A directory with an `az` that records its arguments and prints `state`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    az.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$*" >> "{tmp_path}/az-calls"\n'
        f"printf '%s\\n' '{state}'\n"
        f"exit {exit_status}\n"
    )
    az.chmod(0o755)
    return bin_dir


def run_hook(env: dict[str, str], path_dirs: list[Path] | None = None):
    base_path = ["/usr/bin", "/bin"]
    full_env = {
        "PATH": os.pathsep.join([*(str(d) for d in path_dirs or []), *base_path]),
        "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000001",
        **env,
    }
    return subprocess.run(
        ["sh", str(HOOK)], env=full_env, capture_output=True, text=True, timeout=30, check=False
    )


def test_missing_alert_email_is_a_warning_not_a_stop() -> None:
    done = run_hook({})
    assert done.returncode == 0, done.stderr
    assert "ALERT_EMAIL is not set" in done.stderr and "notify nobody" in done.stderr
    assert "azd env set ALERT_EMAIL" in done.stderr


def test_alert_email_set_prints_nothing() -> None:
    done = run_hook({"ALERT_EMAIL": "ops@documizers.com"})
    assert (done.returncode, done.stderr) == (0, "")


@pytest.mark.parametrize("state", ["NotRegistered", "Unregistered", "Registering"])
def test_private_networking_stops_when_microsoft_app_is_not_registered(
    tmp_path: Path, state: str
) -> None:
    az = fake_az(tmp_path, state)
    done = run_hook({"ALERT_EMAIL": "a@b.c", "PRIVATE_NETWORKING": "true"}, [az])
    assert done.returncode == 1
    assert f"'{state}'" in done.stderr and REGISTER in done.stderr
    calls = (tmp_path / "az-calls").read_text()
    assert "provider show --namespace Microsoft.App" in calls
    assert "--subscription 00000000-0000-0000-0000-000000000001" in calls


def test_private_networking_passes_when_microsoft_app_is_registered(tmp_path: Path) -> None:
    az = fake_az(tmp_path, "Registered")
    done = run_hook({"ALERT_EMAIL": "a@b.c", "PRIVATE_NETWORKING": "True"}, [az])
    assert (done.returncode, done.stderr) == (0, "")


def test_private_networking_warns_when_it_cannot_check(tmp_path: Path) -> None:
    signed_out = fake_az(tmp_path, "", exit_status=1)
    done = run_hook({"ALERT_EMAIL": "a@b.c", "PRIVATE_NETWORKING": "true"}, [signed_out])
    assert done.returncode == 0
    assert "could not read" in done.stderr and REGISTER in done.stderr
    # Without any az at all.
    done = run_hook({"ALERT_EMAIL": "a@b.c", "PRIVATE_NETWORKING": "true"})
    assert done.returncode == 0
    assert "not found" in done.stderr and REGISTER in done.stderr


def test_public_networking_does_not_ask_az(tmp_path: Path) -> None:
    az = fake_az(tmp_path, "NotRegistered")
    done = run_hook({"ALERT_EMAIL": "a@b.c", "PRIVATE_NETWORKING": "false"}, [az])
    assert (done.returncode, done.stderr) == (0, "")
    assert not (tmp_path / "az-calls").exists()


@pytest.mark.parametrize("name", ["kv", "1vault", "vault-", "my--vault", "a" * 25, "kv_prod"])
def test_an_invalid_key_vault_name_stops_before_arm_would(name: str) -> None:
    done = run_hook({"ALERT_EMAIL": "a@b.c", "KEY_VAULT_NAME": name})
    assert done.returncode == 1
    assert f"KEY_VAULT_NAME '{name}' is not a valid Key Vault name" in done.stderr


@pytest.mark.parametrize("name", ["kv-prod-2", "KvProd2026", "a" * 24, "abc"])
def test_a_valid_key_vault_name_passes(name: str) -> None:
    done = run_hook({"ALERT_EMAIL": "a@b.c", "KEY_VAULT_NAME": name})
    assert (done.returncode, done.stderr) == (0, "")
