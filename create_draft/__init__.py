"""Blueprint: POST /api/mail/draft and the mail-draft queue trigger; both call one operation."""

import azure.functions as func

from shared.api.http import Request, Response, handle
from shared.settings import QUEUE_DRAFT, STORAGE_CONNECTION

bp = func.Blueprint()


@bp.function_name("create_draft")
@bp.route(route="mail/draft", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def create_draft(req: Request) -> Response:
    """Create a draft in the sender's Drafts; 201 with messageId, webLink, conversationId."""
    return await handle(req, "draft", success_status=201)


@bp.function_name("mail_draft_queue")
@bp.queue_trigger(arg_name="msg", queue_name=QUEUE_DRAFT, connection=STORAGE_CONNECTION)
def mail_draft_queue(msg: func.QueueMessage) -> None:
    """Create a draft for a queued request (mail-draft)."""
    # Imported here: the storage SDKs load on the first message, not at cold start.
    from shared.work.processor import process_message

    process_message("draft", msg.get_body(), msg.dequeue_count or 1)
