"""Microsoft Graph mail (v1.0 subset) for the sandbox, with Exchange Online's rules and limits.

One module per concern: `api` (the envelope around every call), `folders`, `messages`,
`attachments` (+ `uploads` for the pre-authenticated upload URL), `sending` (sendMail and
/send, who may send as whom), `replies` (createReply/createReplyAll/createForward and the
reply/replyAll/forward actions), `outbox` (mail in transit until its Sent Items copy is filed),
`delivery` (recipients' copies and the outbound log), `render` (Graph's shapes), `query` and
`odata` (query options), `model` (input rules), `permissions`, `throttle`, `store`,
`control` (the limits and outbound control endpoints).
"""

from __future__ import annotations

import copy

from sandbox.context import SandboxContext


def register(ctx: SandboxContext):
    """Add the Graph routes, the upload URL and the limits/outbound control endpoints to ctx."""
    from sandbox.graph import control
    from sandbox.graph.api import GraphApi
    from sandbox.graph.attachments import AttachmentOps
    from sandbox.graph.delivery import Delivery
    from sandbox.graph.folders import FolderOps
    from sandbox.graph.limits import with_defaults
    from sandbox.graph.messages import MessageOps
    from sandbox.graph.outbox import Outbox
    from sandbox.graph.render import Renderer
    from sandbox.graph.replies import ReplyOps
    from sandbox.graph.sending import SendOps
    from sandbox.graph.services import Services
    from sandbox.graph.store import Store
    from sandbox.graph.throttle import Throttle
    from sandbox.graph.uploads import Uploads

    store = Store(ctx.db, ctx.state_dir)

    def mailbox_of(mailbox_id: str):
        return next((m for m in ctx.directory.mailboxes() if m.id == mailbox_id), None)

    throttle = Throttle(lambda: ctx.limits)
    delivery = Delivery(store, ctx.directory)
    svc = Services(
        ctx=ctx,
        store=store,
        throttle=throttle,
        render=Renderer(store),
        delivery=delivery,
        outbox=Outbox(store, delivery.deliver, mailbox_of),
    )
    api = GraphApi(svc)
    folders = FolderOps(svc)
    messages = MessageOps(svc, folders)
    uploads = Uploads(ctx, store, throttle)
    sending = SendOps(svc, messages)
    for ops in (
        folders,
        messages,
        AttachmentOps(svc, messages, uploads),
        sending,
        ReplyOps(svc, messages, sending),
    ):
        api.add(ops.routes())
    ctx.extras["graph"] = api
    # Every Graph limit a seed leaves out gets its realistic default (sandbox.graph.limits).
    with_defaults(ctx.seed.setdefault("limits", {}))
    seed_limits = copy.deepcopy(ctx.limits)
    methods = ("GET", "POST", "PUT", "PATCH", "DELETE")
    ctx.router.add(methods, r"/v1\.0/(?P<rest>.*)", api.handle, consumes_delay=True)
    ctx.router.add(
        ("PUT", "DELETE"), r"/upload/attachmentSessions/(?P<session>[\w-]+)", uploads.put
    )
    control.register(ctx, store, seed_limits, throttle)

    def reset() -> None:
        svc.outbox.reset()
        store.reset()
        throttle.reset()
        current = ctx.seed.setdefault("limits", {})
        current.clear()
        current.update(copy.deepcopy(seed_limits))

    ctx.extras.setdefault("reset_hooks", []).append(reset)
    return api
