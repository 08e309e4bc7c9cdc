"""Blueprint: POST /api/mail/export and the mail-export queue trigger; both call one operation."""

import azure.functions as func

from shared.api.http import Request, Response, handle
from shared.settings import QUEUE_EXPORT, STORAGE_CONNECTION

bp = func.Blueprint()


@bp.function_name("export_mail")
@bp.route(route="mail/export", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def export_mail(req: Request) -> Response:
    """A message as .eml (message/rfc822, streamed from Graph), or PUT to archiveUrl (200 with
    its size and SHA-256)."""
    return await handle(req, "export")


@bp.function_name("mail_export_queue")
@bp.queue_trigger(arg_name="msg", queue_name=QUEUE_EXPORT, connection=STORAGE_CONNECTION)
def mail_export_queue(msg: func.QueueMessage) -> None:
    """Archive a message for a queued export (mail-export)."""
    # Imported here: the storage SDKs load on the first message, not at cold start.
    from shared.work.processor import process_message

    process_message("export", msg.get_body(), msg.dequeue_count or 1)
