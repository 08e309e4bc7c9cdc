"""What the Graph operations share: the context, the store, throttles, rendering, the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sandbox.context import SandboxContext
from sandbox.graph.render import Renderer
from sandbox.graph.store import Store
from sandbox.graph.throttle import Throttle

if TYPE_CHECKING:
    from sandbox.graph.delivery import Delivery
    from sandbox.graph.outbox import Outbox


@dataclass
class Services:
    """Built once by sandbox.graph.register and handed to every operations module."""

    ctx: SandboxContext
    store: Store
    throttle: Throttle
    render: Renderer
    delivery: Delivery
    outbox: Outbox

    @property
    def limits(self) -> dict[str, Any]:
        return self.ctx.limits

    @property
    def directory(self) -> Any:
        return self.ctx.directory
