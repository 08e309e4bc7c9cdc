"""Installed size of requirements and everything they pull in (from the venv's RECORD files)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# The peer's function app: the Functions worker model, the Graph SDK, identity and Key Vault.
PEER_REQUIREMENTS = ("azure-functions", "msgraph-sdk", "azure-identity", "azure-keyvault-secrets")
FLOOR_REQUIREMENTS = ("azure-functions", "msal", "requests")


def read_requirements(path: Path) -> list[str]:
    """Requirement strings of a requirements file (comments, options and blanks dropped)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text = re.sub(r"\s+#.*$", "", line).strip()
        if text and not text.startswith(("#", "-")):
            out.append(text)
    return out


def closure(requirements: Iterable[str]) -> set[str]:
    """Canonical names of the installed distributions `requirements` need, transitively.

    Markers are evaluated for this interpreter, with the extras that were asked for (so
    `httpx[http2]` brings h2). Raises PackageNotFoundError when one is not installed.
    """
    seen: set[tuple[str, str]] = set()
    names: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        extras = sorted(req.extras) or [""]
        if all((name, e) in seen for e in extras):
            continue
        seen.update((name, e) for e in extras)
        names.add(name)
        for text in metadata.requires(name) or []:
            dep = Requirement(text)
            if dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in extras):
                todo.append(dep)
    return names


def installed_bytes(name: str) -> int:
    """Bytes on disk of one installed distribution's files (its RECORD)."""
    total = 0
    for file in metadata.distribution(name).files or []:
        path = Path(str(file.locate()))
        if path.is_file():
            total += path.stat().st_size
    return total


def footprint(requirements: Iterable[str]) -> tuple[int, int]:
    """(installed bytes, number of distributions) of `requirements` and their dependencies."""
    names = closure(requirements)
    return sum(installed_bytes(n) for n in names), len(names)
