"""Blueprint: POST /api/mail/reply and the mail-reply queue trigger; both call one operation."""

import azure.functions as func

from shared.api.http import Request, Response, handle
from shared.settings import QUEUE_REPLY, STORAGE_CONNECTION

bp = func.Blueprint()


@bp.function_name("reply_mail")
@bp.route(route="mail/reply", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def reply_mail(req: Request) -> Response:
    """Reply (or reply to all) in the original's conversation; 200 with the sent answer."""
    return await handle(req, "reply")


@bp.function_name("mail_reply_queue")
@bp.queue_trigger(arg_name="msg", queue_name=QUEUE_REPLY, connection=STORAGE_CONNECTION)
def mail_reply_queue(msg: func.QueueMessage) -> None:
    """Send a queued reply (mail-reply): at most once, whatever the deliveries."""
    # Imported here: the storage SDKs load on the first message, not at cold start.
    from shared.work.processor import process_message

    process_message("reply", msg.get_body(), msg.dequeue_count or 1)
