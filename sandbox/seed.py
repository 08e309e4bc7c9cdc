"""Loading and checking the seed file (tenants, apps, users, mailboxes, grants, token settings)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DEFAULT_SEED = Path(__file__).with_name("default_seed.json")


class SeedError(ValueError):
    """The seed file is not valid."""


def load(path: Path | None = None) -> dict[str, Any]:
    """Read and validate a seed file (the default seed when path is None)."""
    source = path or DEFAULT_SEED
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SeedError(f"cannot read seed {source}: {exc}") from exc
    validate(data)
    return data


def validate(data: Any) -> None:
    """Raise SeedError when the seed misses what the sandbox needs."""
    if not isinstance(data, dict) or not isinstance(data.get("tenants"), list):
        raise SeedError("a seed is an object with a 'tenants' list")
    if not data["tenants"]:
        raise SeedError("a seed needs at least one tenant")
    seen: set[str] = set()
    for tenant in data["tenants"]:
        for key in ("id", "domain"):
            if not isinstance(tenant.get(key), str) or not tenant[key]:
                raise SeedError(f"every tenant needs '{key}'")
            if tenant[key].lower() in seen:
                raise SeedError(f"duplicate tenant {key} {tenant[key]!r}")
            seen.add(tenant[key].lower())
        for app in tenant.get("apps", []):
            if not app.get("clientId"):
                raise SeedError(f"an app in {tenant['domain']} has no clientId")
        for user in tenant.get("users", []):
            if not user.get("upn") or not user.get("id"):
                raise SeedError(f"a user in {tenant['domain']} needs 'id' and 'upn'")
        for mailbox in tenant.get("sharedMailboxes", []):
            if not mailbox.get("address") or not mailbox.get("id"):
                raise SeedError(f"a shared mailbox in {tenant['domain']} needs 'id' and 'address'")
