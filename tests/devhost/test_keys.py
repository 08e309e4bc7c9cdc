"""Function keys: which level each key opens, and where the keys come from."""

import json
import stat

import pytest

from devhost.keys import HostKeys, load_keys

KEYS = HostKeys("fkey", "mkey", "test")


def test_anonymous_needs_no_key():
    assert KEYS.allows("anonymous", None)


@pytest.mark.parametrize("presented", [None, "", "wrong", "fkey "])
def test_function_level_refuses_missing_or_wrong_keys(presented):
    assert not KEYS.allows("function", presented)


def test_function_level_accepts_function_and_master_keys():
    assert KEYS.allows("function", "fkey")
    assert KEYS.allows("FUNCTION", "mkey")


def test_admin_level_needs_the_master_key():
    assert not KEYS.allows("admin", "fkey")
    assert KEYS.allows("admin", "mkey")


def test_generated_keys_are_kept_in_a_private_file_and_reused(tmp_path, monkeypatch):
    monkeypatch.delenv("DEVHOST_FUNCTION_KEY", raising=False)
    monkeypatch.delenv("DEVHOST_MASTER_KEY", raising=False)
    path = tmp_path / "state" / "devhost-keys.json"
    first = load_keys(path)
    assert len(first.function_key) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["functionKey"] == first.function_key
    second = load_keys(path)
    assert (second.function_key, second.master_key) == (first.function_key, first.master_key)


def test_key_from_environment_wins_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVHOST_FUNCTION_KEY", "from-env")
    path = tmp_path / "devhost-keys.json"
    keys = load_keys(path)
    assert keys.function_key == "from-env"
    assert keys.source == "$DEVHOST_FUNCTION_KEY"
    assert not path.exists()
