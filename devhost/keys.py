"""The devhost's function and master keys: from the environment, or generated once and kept."""

from __future__ import annotations

import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

FUNCTION_KEY_ENV = "DEVHOST_FUNCTION_KEY"
MASTER_KEY_ENV = "DEVHOST_MASTER_KEY"
KEYS_FILE_ENV = "DEVHOST_KEYS_FILE"


@dataclass(frozen=True)
class HostKeys:
    """A function key (AuthLevel.FUNCTION) and a master key (any level, like the host's)."""

    function_key: str
    master_key: str
    source: str  # where the keys came from, for the startup message

    def allows(self, auth_level: str, presented: str | None) -> bool:
        """Whether a request presenting `presented` may call a function with `auth_level`."""
        level = auth_level.lower()
        if level == "anonymous":
            return True
        if not presented:
            return False
        # Constant-time comparisons: the key is a credential even if only a local one.
        master = hmac.compare_digest(presented.encode(), self.master_key.encode())
        if level == "admin":
            return master
        return master or hmac.compare_digest(presented.encode(), self.function_key.encode())


def load_keys(state_file: Path) -> HostKeys:
    """Keys from DEVHOST_FUNCTION_KEY (/ DEVHOST_MASTER_KEY), else from `state_file`, else new ones.

    New keys are written to `state_file` (git-ignored, mode 600) so they survive restarts.
    """
    env_function, env_master = os.environ.get(FUNCTION_KEY_ENV), os.environ.get(MASTER_KEY_ENV)
    if env_function:
        # Keys given by the caller (tests, CI): nothing is written; an unset master key is random.
        return HostKeys(
            env_function, env_master or secrets.token_urlsafe(32), f"${FUNCTION_KEY_ENV}"
        )
    stored: dict[str, str] = {}
    if state_file.exists():
        try:
            stored = json.loads(state_file.read_text(encoding="utf-8"))
        except ValueError:
            stored = {}
    function_key = stored.get("functionKey") or secrets.token_urlsafe(32)
    master_key = env_master or stored.get("masterKey") or secrets.token_urlsafe(32)
    if stored.get("functionKey") != function_key or stored.get("masterKey") != master_key:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"functionKey": function_key, "masterKey": master_key}, indent=2)
        fd = os.open(state_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data + "\n")
    return HostKeys(function_key, master_key, str(state_file))
