"""Builds the sandbox: the context (directory, tokens, faults, log) and every surface's routes."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

from sandbox import control, entra, keyvault
from sandbox.context import SandboxContext
from sandbox.db import Database
from sandbox.directory import Directory
from sandbox.faults import Faults
from sandbox.requestlog import RequestLog
from sandbox.tokens import Tokens
from sandbox.web import Router

DB_FILE = "sandbox.db"
# Surfaces built by other parts of the project; each has register(ctx) and may be absent.
OPTIONAL_SURFACES = ("sandbox.graph", "sandbox.webview")


def build(
    seed: dict[str, Any], state_dir: Path, base_url: str, *, persist: bool = True
) -> SandboxContext:
    """The sandbox context with all routes registered; state in state_dir (SQLite when persist)."""
    db = Database(state_dir / DB_FILE if persist else None)
    ctx = SandboxContext(
        router=Router(), db=db, seed=seed, state_dir=state_dir, base_url=base_url.rstrip("/")
    )
    ctx.extras.setdefault("reset_hooks", [])
    ctx.directory = Directory(seed)
    ctx.tokens = Tokens(ctx.directory, db, state_dir, ctx.base_url, seed.get("tokens", {}))
    ctx.faults = Faults()
    ctx.request_log = RequestLog()
    control.register(ctx)
    entra.register(ctx)
    keyvault.register(ctx)
    for name in OPTIONAL_SURFACES:
        # find_spec, not a bare try/except ImportError: a broken import inside the module must
        # surface, only a module that does not exist yet is skipped.
        if importlib.util.find_spec(name) is None:
            continue
        importlib.import_module(name).register(ctx)
    return ctx
