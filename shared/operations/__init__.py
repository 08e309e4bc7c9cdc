"""The operations (send, move, draft, export) as plain functions of a request and a context."""

from shared.operations.context import OperationContext
from shared.operations.draft import draft
from shared.operations.export import export
from shared.operations.move import move
from shared.operations.send import send

__all__ = ["OperationContext", "draft", "export", "move", "send"]
