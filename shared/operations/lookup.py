"""Finding an existing message in a mailbox by its Graph id or its internetMessageId."""

from __future__ import annotations

from urllib.parse import quote

from shared.errors import Detail, MessageNotFound, ValidationFailed
from shared.graph.client import mailbox_path
from shared.operations.context import OperationContext

# Graph's answer to an id that cannot be one (400), where an unknown id is 404.
MALFORMED_ID = "ErrorInvalidIdMalformed"
# What a message read for an answer or an attachment needs.
SELECT = "id,isDraft,internetMessageId,conversationId,subject,webLink,parentFolderId"


def find_by_internet_message_id(
    ctx: OperationContext, mailbox: str, imid: str, field: str = "internetMessageId"
) -> str:
    """The id of the one message with this internetMessageId; raises MessageNotFound if none
    and ValidationFailed (on `field`) if several."""
    literal = imid.replace("'", "''")  # OData string literal escaping
    data = ctx.graph.get(
        f"{mailbox_path(mailbox)}/messages",
        params={
            "$filter": f"internetMessageId eq '{literal}'",
            "$select": "id,parentFolderId",
            "$top": "2",
        },
    )
    found = (data or {}).get("value", [])
    if not found:
        raise MessageNotFound(
            "No message with this internetMessageId is in the mailbox.",
            details=[Detail(field, "no such message in the mailbox")],
        )
    if len(found) > 1:
        raise ValidationFailed(
            "Several messages in the mailbox have this internetMessageId.",
            details=[Detail(field, "matches more than one message; use messageId")],
        )
    return found[0]["id"]


def read_message(
    ctx: OperationContext,
    mailbox: str,
    message_id: str | None,
    internet_message_id: str | None,
    *,
    fields: tuple[str, str] = ("messageId", "internetMessageId"),
    select: str = SELECT,
) -> dict:
    """The message (its `select`ed properties) named by id or internetMessageId in `mailbox`;
    `fields` name the two request fields in error details.

    Raises MessageNotFound (404: unknown here, also when the id belongs to another mailbox),
    ValidationFailed (an id Graph calls malformed) and Graph's mapped errors (403 when the
    connection may not read the mailbox).
    """
    field = fields[0]
    if message_id is None:
        message_id = find_by_internet_message_id(ctx, mailbox, internet_message_id or "", fields[1])
    try:
        return ctx.graph.get(
            f"{mailbox_path(mailbox)}/messages/{quote(message_id, safe='')}",
            params={"$select": select},
        )
    except MessageNotFound as exc:
        raise MessageNotFound(
            "No such message in the mailbox (an id from another mailbox is not found either).",
            details=[Detail(field, "no such message in the mailbox")],
            graph=exc.graph,
        ) from exc
    except ValidationFailed as exc:
        if exc.graph is None or exc.graph.code != MALFORMED_ID:
            raise
        raise ValidationFailed(
            "The message id is not a message id of Microsoft Graph.",
            details=[Detail(field, "Graph says the id is malformed")],
            graph=exc.graph,
        ) from exc
