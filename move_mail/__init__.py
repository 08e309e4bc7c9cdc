"""Blueprint: POST /api/mail/move and the mail-move queue trigger; both call one operation."""

import azure.functions as func

from shared.api.http import Request, Response, handle
from shared.settings import QUEUE_MOVE, STORAGE_CONNECTION

bp = func.Blueprint()


@bp.function_name("move_mail")
@bp.route(route="mail/move", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def move_mail(req: Request) -> Response:
    """Move a mail now; 200 with its new message id."""
    return await handle(req, "move")


@bp.function_name("mail_move_queue")
@bp.queue_trigger(arg_name="msg", queue_name=QUEUE_MOVE, connection=STORAGE_CONNECTION)
def mail_move_queue(msg: func.QueueMessage) -> None:
    """Move a mail for a queued request (mail-move)."""
    # Imported here: the storage SDKs load on the first message, not at cold start.
    from shared.work.processor import process_message

    process_message("move", msg.get_body(), msg.dequeue_count or 1)
