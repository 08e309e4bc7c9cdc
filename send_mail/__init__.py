"""Blueprint: POST /api/mail/send and the mail-send queue trigger; both call one operation."""

import azure.functions as func

from shared.api.http import Request, Response, handle
from shared.settings import QUEUE_SEND, STORAGE_CONNECTION

bp = func.Blueprint()


@bp.function_name("send_mail")
@bp.route(route="mail/send", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def send_mail(req: Request) -> Response:
    """Send a mail now; 200 with the operation id and message id."""
    return await handle(req, "send")


@bp.function_name("mail_send_queue")
@bp.queue_trigger(arg_name="msg", queue_name=QUEUE_SEND, connection=STORAGE_CONNECTION)
def mail_send_queue(msg: func.QueueMessage) -> None:
    """Send a queued mail (mail-send): at most once, whatever the deliveries."""
    # Imported here: the storage SDKs load on the first message, not at cold start.
    from shared.work.processor import process_message

    process_message("send", msg.get_body(), msg.dequeue_count or 1)
