"""The Graph types the sandbox serves, as OData sees them: properties and their types.

Query options are checked against these (an unknown property in $filter, $select, $orderby
or $expand is 400, as Graph answers), so a typo fails locally instead of matching nothing.
"""

from __future__ import annotations

from typing import Any

S = "Edm"  # a scalar (string, number, boolean, date-time)

# property -> type name (str), a collection of it ([type]), or S.
TYPES: dict[str, dict[str, Any]] = {
    "message": {
        "id": S,
        "subject": S,
        "body": "itemBody",
        "uniqueBody": "itemBody",
        "bodyPreview": S,
        "importance": S,
        "from": "recipient",
        "sender": "recipient",
        "toRecipients": ["recipient"],
        "ccRecipients": ["recipient"],
        "bccRecipients": ["recipient"],
        "replyTo": ["recipient"],
        "categories": [S],
        "changeKey": S,
        "conversationId": S,
        "conversationIndex": S,
        "createdDateTime": S,
        "lastModifiedDateTime": S,
        "receivedDateTime": S,
        "sentDateTime": S,
        "flag": "followupFlag",
        "hasAttachments": S,
        "inferenceClassification": S,
        "internetMessageHeaders": ["internetMessageHeader"],
        "internetMessageId": S,
        "isDeliveryReceiptRequested": S,
        "isDraft": S,
        "isRead": S,
        "isReadReceiptRequested": S,
        "parentFolderId": S,
        "webLink": S,
        "attachments": ["attachment"],
        "extensions": ["extension"],
        "singleValueExtendedProperties": ["singleValueLegacyExtendedProperty"],
        "multiValueExtendedProperties": ["multiValueLegacyExtendedProperty"],
    },
    "mailFolder": {
        "id": S,
        "displayName": S,
        "parentFolderId": S,
        "childFolderCount": S,
        "unreadItemCount": S,
        "totalItemCount": S,
        "isHidden": S,
        "childFolders": ["mailFolder"],
        "messages": ["message"],
        "singleValueExtendedProperties": ["singleValueLegacyExtendedProperty"],
        "multiValueExtendedProperties": ["multiValueLegacyExtendedProperty"],
    },
    "attachment": {
        "id": S,
        "name": S,
        "contentType": S,
        "size": S,
        "isInline": S,
        "lastModifiedDateTime": S,
        "contentId": S,
        "contentLocation": S,
        "contentBytes": S,
    },
    "recipient": {"emailAddress": "emailAddress"},
    "emailAddress": {"name": S, "address": S},
    "itemBody": {"contentType": S, "content": S},
    "followupFlag": {
        "flagStatus": S,
        "completedDateTime": "dateTimeTimeZone",
        "dueDateTime": "dateTimeTimeZone",
        "startDateTime": "dateTimeTimeZone",
    },
    "dateTimeTimeZone": {"dateTime": S, "timeZone": S},
    "internetMessageHeader": {"name": S, "value": S},
    "singleValueLegacyExtendedProperty": {"id": S, "value": S},
    "multiValueLegacyExtendedProperty": {"id": S, "value": [S]},
    "extension": {"id": S},
}
# Navigation properties (may be expanded, not compared).
NAVIGATION = {
    "message": {"attachments", "extensions", "singleValueExtendedProperties",
                "multiValueExtendedProperties"},
    "mailFolder": {"childFolders", "messages", "singleValueExtendedProperties",
                   "multiValueExtendedProperties"},
    "attachment": set(),
}  # fmt: skip


def property_of(type_name: str, name: str) -> tuple[str, Any] | None:
    """(canonical name, its type) of `name` on `type_name`, case-insensitively, or None."""
    props = TYPES.get(type_name, {})
    low = name.lower()
    for key, kind in props.items():
        if key.lower() == low:
            return key, kind
    return None
