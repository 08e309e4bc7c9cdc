"""The layers import-linter cannot see: function_app.py is a module, not a package."""

from __future__ import annotations

import ast
from pathlib import Path

BLUEPRINTS = {
    "api_meta",
    "auth_routes",
    "create_draft",
    "export_mail",
    "forward_mail",
    "move_mail",
    "operations_api",
    "reply_mail",
    "send_mail",
    "signin_health",
}


def test_function_app_imports_only_the_host_library_and_the_blueprints():
    # azurefunctions: the HTTP streams web extension, which the worker must see imported.
    tree = ast.parse((Path(__file__).parents[2] / "function_app.py").read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported <= BLUEPRINTS | {"azure", "azurefunctions", "__future__"}, imported - BLUEPRINTS
    assert imported >= BLUEPRINTS  # every blueprint is registered
