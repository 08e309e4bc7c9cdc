"""The Graph half of the control API: limits (GET/PATCH), what the throttles saw (GET/DELETE
/_sandbox/throttle) and the outbound log."""

from __future__ import annotations

from typing import Any

from sandbox.context import SandboxContext
from sandbox.graph.limits import check_change
from sandbox.graph.store import Store
from sandbox.graph.throttle import Throttle
from sandbox.web import Request, Response


def _bad(message: str) -> Response:
    return Response.json({"error": {"code": "BadRequest", "message": message}}, 400)


def register(
    ctx: SandboxContext, store: Store, seed_limits: dict[str, Any], throttle: Throttle
) -> None:
    """Add /_sandbox/limits, /_sandbox/throttle and /_sandbox/outbound to ctx.router."""

    def limits(req: Request) -> Response:
        if req.method == "PATCH":
            changes = req.json()
            if not isinstance(changes, dict):
                return _bad("a JSON object")
            problem = check_change(changes, set(seed_limits))
            if problem:
                return _bad(problem)
            ctx.seed.setdefault("limits", {}).update(changes)
        return Response.json(ctx.limits)

    def throttle_stats(req: Request) -> Response:
        if req.method == "DELETE":
            throttle.reset_stats()
            return Response(204)
        stats = throttle.stats()
        addresses = {m.id: m.address for m in ctx.directory.mailboxes()}
        for entry in stats["mailboxes"]:
            entry["mailbox"] = addresses.get(entry["mailboxId"], entry["mailboxId"])
        return Response.json(stats)

    def outbound(req: Request) -> Response:
        return Response.json({"value": store.outbound(int(req.arg("limit") or 200))})

    ctx.router.add(("GET", "PATCH"), r"/_sandbox/limits", limits)
    ctx.router.add(("GET", "DELETE"), r"/_sandbox/throttle", throttle_stats)
    ctx.router.add("GET", r"/_sandbox/outbound", outbound)
