"""Blueprint: POST /api/mail/forward and the mail-forward queue trigger; both call one
operation."""

import azure.functions as func

from shared.api.http import Request, Response, handle
from shared.settings import QUEUE_FORWARD, STORAGE_CONNECTION

bp = func.Blueprint()


@bp.function_name("forward_mail")
@bp.route(route="mail/forward", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def forward_mail(req: Request) -> Response:
    """Forward a mail in its conversation; 200 with the sent forward."""
    return await handle(req, "forward")


@bp.function_name("mail_forward_queue")
@bp.queue_trigger(arg_name="msg", queue_name=QUEUE_FORWARD, connection=STORAGE_CONNECTION)
def mail_forward_queue(msg: func.QueueMessage) -> None:
    """Send a queued forward (mail-forward): at most once, whatever the deliveries."""
    # Imported here: the storage SDKs load on the first message, not at cold start.
    from shared.work.processor import process_message

    process_message("forward", msg.get_body(), msg.dequeue_count or 1)
