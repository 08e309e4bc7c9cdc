"""Message resources as Graph shapes them: input validation, defaults and Exchange's limits."""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sandbox.graph.errors import GraphError, bad_request, too_large

RECIPIENT_FIELDS = ("toRecipients", "ccRecipients", "bccRecipients")
WRITABLE = frozenset(
    {
        "subject",
        "body",
        "from",
        "sender",
        "toRecipients",
        "ccRecipients",
        "bccRecipients",
        "replyTo",
        "importance",
        "internetMessageId",
        "internetMessageHeaders",
        "singleValueExtendedProperties",
        "categories",
        "isRead",
        "isDeliveryReceiptRequested",
        "isReadReceiptRequested",
        "flag",
        "inferenceClassification",
        "attachments",
    }
)
# Only drafts may change these (message-update.md: "Updatable only if isDraft = true"; the
# sandbox also holds recipients to it): ErrorInvalidPropertyUpdateSentMessage otherwise.
DRAFT_ONLY = frozenset(
    {
        "subject",
        "body",
        "toRecipients",
        "ccRecipients",
        "bccRecipients",
        "replyTo",
        "internetMessageId",
    }
)
# message-update.md: `from` "must correspond to the actual mailbox used"; on a message that is
# not a draft Exchange answers ErrorInvalidPropertySet "Message is not draft.".
SENDER_FIELDS = frozenset({"from", "sender"})
# Settable only when the message is created (message.md lists them read-only afterwards).
CREATE_ONLY = frozenset({"internetMessageHeaders"})
# Read-only properties: echoing one back is ErrorInvalidPropertySet, as Exchange answers.
READ_ONLY = frozenset(
    {
        "id",
        "createdDateTime",
        "lastModifiedDateTime",
        "changeKey",
        "receivedDateTime",
        "sentDateTime",
        "hasAttachments",
        "bodyPreview",
        "conversationId",
        "conversationIndex",
        "parentFolderId",
        "isDraft",
        "webLink",
        "uniqueBody",
    }
)
# followupFlag.flagStatus (followupflag.md) and the booleans a client may set on any message.
FLAG_STATUSES = ("notFlagged", "complete", "flagged")
FLAG_DATES = ("startDateTime", "dueDateTime", "completedDateTime")
BOOLEANS = frozenset({"isRead", "isDeliveryReceiptRequested", "isReadReceiptRequested"})
# Properties of a message that exist in the store but are no Graph property (threading
# headers a reply carries, for delivery): never rendered, never writable.
INTERNAL_PREFIX = "_"
# OData annotations clients put on any object; they carry no property value.
ANNOTATIONS = frozenset({"@odata.type", "@odata.etag", "@odata.context", "@odata.id"})
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _recipient(value: Any, field: str, names: Resolver | None = None) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("emailAddress"), dict):
        raise bad_request(f"Invalid recipient in '{field}': expected {{'emailAddress': {{...}}}}.")
    email = value["emailAddress"]
    address = email.get("address")
    if not isinstance(address, str) or not address:
        raise GraphError(
            400,
            "ErrorInvalidRecipients",
            "At least one recipient is not valid., A recipient has no e-mail address.",
        )
    # Graph answers with the name it resolved (the directory's display name, else the address
    # itself) unless the client gave one (user-post-messages.md, example 1).
    name = email.get("name") or (names(address) if names else None) or address
    return {"emailAddress": {"name": str(name), "address": address}}


def check_headers(headers: Any, maximum: int) -> list[dict[str, str]]:
    """Graph's rules for internetMessageHeaders: at most `maximum`, each named x-…."""
    if headers is None:
        return []
    if not isinstance(headers, list):
        raise bad_request("internetMessageHeaders must be a collection.")
    if len(headers) > maximum:
        raise GraphError(
            400,
            "InvalidInternetMessageHeaderCollection",
            f"Maximum number of headers in one message should be less than or equal to {maximum}.",
        )
    out = []
    for header in headers:
        name = header.get("name") if isinstance(header, dict) else None
        if not isinstance(name, str) or not name.lower().startswith("x-"):
            raise GraphError(
                400,
                "InvalidInternetMessageHeader",
                f"The internet message header name '{name}' should start with 'x-' or 'X-'.",
            )
        out.append({"name": name, "value": str(header.get("value", ""))})
    return out


def _extended(props: Any) -> list[dict[str, str]]:
    if not isinstance(props, list):
        raise bad_request("singleValueExtendedProperties must be a collection.")
    out = []
    for prop in props:
        if not isinstance(prop, dict) or not isinstance(prop.get("id"), str):
            raise bad_request("Each singleValueExtendedProperty needs an 'id' and a 'value'.")
        out.append({"id": prop["id"], "value": str(prop.get("value", ""))})
    return out


def merge_extended(old: list[dict[str, str]], new: list[dict[str, str]]) -> list[dict[str, str]]:
    """Properties are keyed by id (case-insensitive, as Exchange names them)."""
    merged = {p["id"].lower(): p for p in old}
    for prop in new:
        merged[prop["id"].lower()] = prop
    return list(merged.values())


def invalid_property_set(message: str = "Set action is invalid for property.") -> GraphError:
    return GraphError(400, "ErrorInvalidPropertySet", message)


def action_params(body: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """An action's parameters by their canonical names, read case-insensitively as Graph does
    (msgraph-sdk sends "Message", "DestinationId", "AttachmentItem"). Raises 400 when the
    body is not an object or names a parameter twice."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object with the action's parameters.")
    canonical = {n.lower(): n for n in names}
    out: dict[str, Any] = {}
    for key, value in body.items():
        name = canonical.get(str(key).lower())
        if name is None:
            raise bad_request(f"The parameter '{key}' in the request payload is not valid.")
        if name in out:
            raise bad_request(f"The parameter '{name}' is given more than once.")
        out[name] = value
    return out


Resolver = Callable[[str], str | None]


def clean_input(
    body: Any,
    limits: dict[str, Any],
    *,
    existing: dict[str, Any] | None = None,
    names: Resolver | None = None,
) -> dict[str, Any]:
    """Validate a message body (create, PATCH or sendMail's `message`); returns Graph fields.

    `existing` is the stored message for a PATCH; `names` resolves a recipient's display name
    from its address (Graph fills `name` in as it resolves recipients). Raises GraphError 400
    for unknown or read-only properties, bad recipients or headers, headers on a PATCH, and
    changes a sent message does not allow.
    """
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object (a message).")
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key in ANNOTATIONS or key.endswith("@odata.type"):
            continue
        if key in READ_ONLY:
            raise invalid_property_set()
        if key not in WRITABLE:
            raise GraphError(
                400,
                "RequestBodyRead",
                f"The property '{key}' does not exist on type 'microsoft.graph.message'. "
                "Make sure to only use property names that are defined by the type.",
            )
        if existing is not None and key in CREATE_ONLY:
            raise invalid_property_set()
        if existing is not None and not existing.get("isDraft"):
            if key in SENDER_FIELDS:
                raise invalid_property_set("Message is not draft.")
            if key in DRAFT_ONLY:
                raise GraphError(
                    400,
                    "ErrorInvalidPropertyUpdateSentMessage",
                    "Update operation is not valid for a property of a sent message.",
                )
        if key in (*RECIPIENT_FIELDS, "replyTo"):
            if value is None:
                value = []
            if not isinstance(value, list):
                raise bad_request(f"'{key}' must be a collection of recipients.")
            out[key] = [_recipient(v, key, names) for v in value]
        elif key in ("from", "sender"):
            out[key] = None if value is None else _recipient(value, key, names)
        elif key == "body":
            if not isinstance(value, dict):
                raise bad_request("'body' must be an itemBody with contentType and content.")
            kind = str(value.get("contentType") or "text").lower()
            if kind not in ("text", "html"):
                raise bad_request(f"Invalid body contentType '{kind}' (text or html).")
            out["body"] = {"contentType": kind, "content": str(value.get("content") or "")}
        elif key == "importance":
            level = str(value).lower()
            if level not in ("low", "normal", "high"):
                raise bad_request(f"Invalid importance '{value}' (low, normal or high).")
            out["importance"] = level
        elif key == "internetMessageHeaders":
            out[key] = check_headers(value, int(limits.get("maxInternetMessageHeaders", 5)))
        elif key == "singleValueExtendedProperties":
            out[key] = _extended(value)
        elif key == "attachments":
            out[key] = [attachment_input(a, limits, names) for a in (value or [])]
        elif key == "categories":
            out[key] = categories(value)
        elif key == "flag":
            out[key] = followup_flag(value)
        elif key in BOOLEANS:
            if not isinstance(value, bool):
                raise bad_request(
                    f"Cannot convert the literal '{value}' to the expected type 'Edm.Boolean'."
                )
            out[key] = value
        else:
            out[key] = value
    return out


def categories(value: Any) -> list[str]:
    """A message's categories: a collection of strings (Outlook category names)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise bad_request("'categories' must be a collection of strings.")
    return list(value)


def _date_time_time_zone(value: Any, field: str) -> dict[str, str]:
    if not isinstance(value, dict) or set(value) - {"dateTime", "timeZone", "@odata.type"}:
        raise bad_request(f"'{field}' must be a dateTimeTimeZone (dateTime, timeZone).")
    text, zone = value.get("dateTime"), value.get("timeZone") or "UTC"
    try:
        when = datetime.fromisoformat(str(text))
    except ValueError as exc:
        raise bad_request(f"'{field}.dateTime' is not a date and time: {text!r}.") from exc
    if not isinstance(zone, str) or not zone.strip():
        raise bad_request(f"'{field}.timeZone' must name a time zone.")
    return {"dateTime": when.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": zone}


def followup_flag(value: Any) -> dict[str, Any]:
    """followupFlag (followupflag.md): a status and optional dates. "To set the due date, you
    must also specify the startDateTime; otherwise, you get a 400 Bad Request response."
    Marking it complete without a completedDateTime records now (as Outlook does); notFlagged
    clears the dates."""
    if not isinstance(value, dict):
        raise bad_request("'flag' must be a followupFlag object.")
    unknown = set(value) - {"flagStatus", "@odata.type", *FLAG_DATES}
    if unknown:
        raise GraphError(
            400,
            "RequestBodyRead",
            f"The property '{sorted(unknown)[0]}' does not exist on type "
            "'microsoft.graph.followupFlag'.",
        )
    status = value.get("flagStatus", "notFlagged")
    if status not in FLAG_STATUSES:
        raise bad_request(
            f"Requested value '{status}' was not found (flagStatus: notFlagged, complete or "
            "flagged)."
        )
    if value.get("dueDateTime") is not None and value.get("startDateTime") is None:
        raise bad_request("To set the due date, you must also specify the startDateTime.")
    out: dict[str, Any] = {"flagStatus": status}
    if status == "notFlagged":
        return out
    for field in FLAG_DATES:
        if value.get(field) is not None:
            out[field] = _date_time_time_zone(value[field], f"flag.{field}")
    if status == "complete" and "completedDateTime" not in out:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000")
        out["completedDateTime"] = {"dateTime": now, "timeZone": "UTC"}
    if status != "complete":
        out.pop("completedDateTime", None)
    return out


ITEM_TYPES = ("#microsoft.graph.message", "microsoft.graph.message")


def attachment_input(body: Any, limits: dict[str, Any], names: Resolver | None = None) -> dict:
    """A fileAttachment or an itemAttachment holding a message (the only item the sandbox
    keeps); raises GraphError 400/413."""
    if not isinstance(body, dict):
        raise bad_request("An attachment must be a JSON object.")
    kind = str(body.get("@odata.type", "#microsoft.graph.fileAttachment")).lower()
    if kind != "#microsoft.graph.itemattachment":
        return file_attachment(body, limits)
    unknown = set(body) - {"@odata.type", "name", "item", "isInline", "contentType"}
    if unknown:
        raise bad_request(
            f"The property '{sorted(unknown)[0]}' does not exist on type "
            "'microsoft.graph.itemAttachment'."
        )
    item = body.get("item")
    if not isinstance(item, dict) or str(item.get("@odata.type", "")).lower() not in ITEM_TYPES:
        raise bad_request(
            "An itemAttachment needs an 'item' with @odata.type microsoft.graph.message (the "
            "sandbox keeps no events or contacts)."
        )
    fields = {k: v for k, v in item.items() if k != "@odata.type"}
    if "attachments" in fields or "singleValueExtendedProperties" in fields:
        raise bad_request(
            "The sandbox does not take attachments or extended properties inside an "
            "itemAttachment's item."
        )
    data = clean_input(fields, limits, names=names)
    name = body.get("name") or data.get("subject") or "Untitled"
    if not isinstance(name, str):
        raise bad_request("An attachment's 'name' must be a string.")
    content = json.dumps(data).encode()
    maximum = int(limits.get("maxAttachmentPostBytes", 3 * 1024 * 1024))
    if len(content) > maximum:
        raise too_large(maximum)
    return {
        "kind": "item",
        "name": name,
        "contentType": "",
        "content": content,
        "isInline": False,
        "contentId": None,
    }


def file_attachment(body: Any, limits: dict[str, Any]) -> dict[str, Any]:
    """A fileAttachment's fields with its bytes decoded; raises GraphError 400/413."""
    if not isinstance(body, dict):
        raise bad_request("An attachment must be a JSON object.")
    kind = body.get("@odata.type", "#microsoft.graph.fileAttachment")
    if kind.lower() != "#microsoft.graph.fileattachment":
        raise bad_request(f"The sandbox supports only fileAttachment, not '{kind}'.")
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise bad_request("An attachment needs a 'name'.")
    try:
        content = base64.b64decode(body.get("contentBytes") or "", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise bad_request("contentBytes is not valid base64.") from exc
    maximum = int(limits.get("maxAttachmentPostBytes", 3 * 1024 * 1024))
    if len(content) > maximum:
        raise too_large(maximum)
    return {
        "kind": "file",
        "name": name,
        "contentType": body.get("contentType") or "application/octet-stream",
        "content": content,
        "isInline": bool(body.get("isInline", False)),
        "contentId": body.get("contentId"),
    }


def addresses(message: dict[str, Any], fields: tuple[str, ...] = RECIPIENT_FIELDS) -> list[str]:
    """Recipient addresses in order, without duplicates (case-insensitive)."""
    seen, out = set(), []
    for field in fields:
        for rcpt in message.get(field) or []:
            address = rcpt["emailAddress"]["address"]
            if address.lower() not in seen:
                seen.add(address.lower())
                out.append(address)
    return out


def check_sendable(message: dict[str, Any], limits: dict[str, Any]) -> None:
    """Exchange's submission checks: some recipients, not too many, all well-formed."""
    everyone = [r for f in RECIPIENT_FIELDS for r in message.get(f) or []]
    if not everyone:
        raise GraphError(
            400,
            "ErrorInvalidRecipients",
            "At least one recipient is not valid., A message can't be sent because it contains "
            "no recipients.",
        )
    maximum = int(limits.get("maxRecipients", 500))
    if len(everyone) > maximum:
        raise GraphError(
            400,
            "ErrorTooManyRecipients",
            f"The message has {len(everyone)} recipients; the maximum is {maximum}.",
        )
    for rcpt in everyone:
        if not _ADDRESS.match(rcpt["emailAddress"]["address"]):
            raise GraphError(
                400,
                "ErrorInvalidRecipients",
                "At least one recipient is not valid., Recipient "
                f"'{rcpt['emailAddress']['address']}' is not resolved.",
            )


def stored_data(row: Any) -> dict[str, Any]:
    """The Graph fields of a stored message row."""
    return json.loads(row["data"])


def new_internet_message_id(domain: str) -> str:
    return f"<{secrets.token_hex(12).upper()}@{domain or 'sandbox.test'}>"


def preview(body: dict[str, Any] | None) -> str:
    """bodyPreview: the first 255 characters of the text (tags stripped)."""
    content = (body or {}).get("content", "")
    if (body or {}).get("contentType") == "html":
        content = re.sub(r"<(script|style)\b.*?</\1>", " ", content, flags=re.S | re.I)
        content = re.sub(r"<[^>]+>", " ", content)
    return " ".join(content.split())[:255]
