"""The operations' functions in one namespace, for code that runs them directly rather than
through the HTTP edge or a queue (the admin probe, tests): `direct.send(request, ctx)`.

A module of its own, not the package's `__init__`: nothing on the request path imports it, so it
adds no cycle to the operation modules' imports (see shared/operations/__init__.py).
"""

from shared.operations.context import OperationContext
from shared.operations.draft import draft
from shared.operations.export import export
from shared.operations.move import move
from shared.operations.reply import forward, reply
from shared.operations.send import send

__all__ = ["OperationContext", "draft", "export", "forward", "move", "reply", "send"]
