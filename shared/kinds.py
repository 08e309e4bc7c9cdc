"""The operation kinds: the one place a new kind (reply, forward, ...) plugs in.

A kind names its request model (decoded the same way from HTTP and from the queue envelope),
its queue, and its function `run(request, ctx) -> result Struct`, imported on first use so the
cold start stays small. The HTTP edge, the queue triggers and the lifecycle look kinds up here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.models import (
    DraftRequest,
    ExportRequest,
    ForwardRequest,
    MoveRequest,
    OperationRequest,
    ReplyRequest,
    SendRequest,
)
from shared.settings import (
    QUEUE_DRAFT,
    QUEUE_EXPORT,
    QUEUE_FORWARD,
    QUEUE_MOVE,
    QUEUE_REPLY,
    QUEUE_SEND,
)

if TYPE_CHECKING:
    from shared.operations.context import OperationContext


@dataclass(frozen=True)
class Kind:
    """One operation kind."""

    name: str  # the `operation` of its records, the route's and the queue trigger's kind
    request: type[Any]  # the msgspec request Struct
    queue: str  # where its background attempts are queued (`<queue>-poison` after that)
    function: str  # "module:function" taking (request, OperationContext)

    def run(self, request: OperationRequest, ctx: OperationContext) -> Any:
        """Run the operation once; `ctx.progress` says whether to resume and records steps."""
        module, name = self.function.split(":")
        return getattr(importlib.import_module(module), name)(request, ctx)


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("send", SendRequest, QUEUE_SEND, "shared.operations.send:send"),
        Kind("move", MoveRequest, QUEUE_MOVE, "shared.operations.move:move"),
        Kind("draft", DraftRequest, QUEUE_DRAFT, "shared.operations.draft:draft"),
        # One queue per kind: a queue trigger names its kind, and the processor refuses a
        # message whose operation is of another kind (a re-routed message).
        Kind("reply", ReplyRequest, QUEUE_REPLY, "shared.operations.reply:reply"),
        Kind("forward", ForwardRequest, QUEUE_FORWARD, "shared.operations.reply:forward"),
        Kind("export", ExportRequest, QUEUE_EXPORT, "shared.operations.export:export"),
    )
}


def kind(name: str) -> Kind:
    """The kind called `name`; raises KeyError for a name nobody registered."""
    return KINDS[name]
