"""The error hierarchy of the app and the one function that maps it to the HTTP error shape.

Every error a caller can see is an `AppError` subclass with a stable `code` and HTTP `status`
(DESIGN §3). Foreign exceptions (requests, MSAL, Key Vault) are wrapped at the edge with
`raise ... from exc`; Graph's status, error code and request-id travel along in `GraphInfo`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GraphInfo:
    """What Graph said about a failed call (kept for callers and logs; never a body)."""

    status: int | None = None
    code: str | None = None
    request_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            key: value
            for key, value in (
                ("status", self.status),
                ("code", self.code),
                ("requestId", self.request_id),
            )
            if value is not None
        }


@dataclass(frozen=True)
class Detail:
    """One field-level problem: `field` is a path like `to[0]` (None: the whole body)."""

    field: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "message": self.message}


class AppError(Exception):
    """Base of every error a caller may see; subclasses fix `code` and `status`."""

    code = "internal_error"
    status = 500

    def __init__(
        self,
        message: str,
        *,
        details: list[Detail] | None = None,
        graph: GraphInfo | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details or [])
        self.graph = graph
        self.retry_after = retry_after


class ValidationFailed(AppError):
    """The request is malformed or breaks a rule; `details` names every bad field."""

    code, status = "validation_failed", 400


class Unauthorized(AppError):
    code, status = "unauthorized", 401


class ReauthRequired(AppError):
    """A delegated sign-in expired or needs MFA; `sign_in_url` tells the user where to go."""

    code, status = "reauth_required", 401

    def __init__(
        self,
        message: str,
        *,
        sign_in_url: str | None = None,
        admin_command: str | None = None,
        connection: str | None = None,
        user: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.sign_in_url = sign_in_url
        # Service-account mode: what an admin runs (no browser link can fix a shared sign-in).
        self.admin_command = admin_command
        # Who must sign in again: the queue issue parks work under these and resumes it after
        # runtime.sign_in_hooks.notify(connection, user).
        self.connection = connection
        self.user = user


class SenderNotAllowed(AppError):
    code, status = "sender_not_allowed", 403


class SendAsDenied(AppError):
    code, status = "send_as_denied", 403


class SendOnBehalfDenied(AppError):
    """Exchange refused a send on behalf (`sender` set): the delegate lacks Send on Behalf."""

    code, status = "send_on_behalf_denied", 403


class DraftAlreadySent(AppError):
    """`draftId` names a message that is no longer a draft: it was sent already."""

    code, status = "draft_already_sent", 409


class AccessDenied(AppError):
    """Graph refused the mailbox operation (permissions, RBAC for Applications scope)."""

    code, status = "access_denied", 403


class UnknownConnection(AppError):
    code, status = "unknown_connection", 404


class MailboxNotFound(AppError):
    code, status = "mailbox_not_found", 404


class MessageNotFound(AppError):
    code, status = "message_not_found", 404


class FolderNotFound(AppError):
    code, status = "folder_not_found", 404


class PayloadTooLarge(AppError):
    code, status = "payload_too_large", 413


class Throttled(AppError):
    code, status = "throttled", 429


class MailboxBusy(Throttled):
    """The mailbox's shared limits (slots, send rate, a server's pause) leave no room soon:
    come back after `retry_after` (queued work is re-scheduled, never counted as a failure)."""


class IdempotencyConflict(AppError):
    """The idempotency key was used before with a different payload."""

    code, status = "idempotency_conflict", 409


class OperationNotFound(AppError):
    """No operation with this id (never accepted, or removed after the retention period)."""

    code, status = "operation_not_found", 404


class StorageUnavailable(AppError):
    """Table or queue storage could not be reached; the request was not accepted."""

    code, status = "storage_unavailable", 503


class NotImplementedYet(AppError):
    code, status = "not_implemented", 501


class GraphError(AppError):
    """Graph answered with an error we cannot attribute to the caller."""

    code, status = "graph_error", 502


class AuthFailed(AppError):
    """The connection's own credentials were refused (misconfigured connection)."""

    code, status = "auth_failed", 502


class AttachmentFetchFailed(AppError):
    """An attachment URL could not be fetched (network error or a 5xx from its server)."""

    code, status = "attachment_fetch_failed", 502


class GraphOutcomeUnknown(AppError):
    """A non-idempotent Graph call was sent but no answer came back: it may have taken effect.

    Distinct from `GraphUnavailable` (not processed, safe to retry): retrying this one blindly
    could send a mail twice, so callers must look for the operation id first.
    """

    code, status = "outcome_unknown", 502


class SendUnconfirmed(GraphOutcomeUnknown):
    """`/send` was issued but its Sent Items copy never appeared: final, a human must check
    (same code as GraphOutcomeUnknown; the queue does not retry this one)."""


class SentCopyMissing(SendUnconfirmed):
    """The mail was sent but its Sent Items copy never appeared, so it could not be filed or
    archived: final (a human files it), never sent again."""

    code = "sent_copy_missing"


class Pending(AppError):
    """Exchange has not finished its part yet (the Sent Items copy of a sent mail is not filed):
    the queue looks again after `retry_after`, as a new message that holds no worker meanwhile."""

    code, status = "pending", 503


class ArchiveFailed(AppError):
    """The archive URL could not take the .eml (network error or a 5xx from its server)."""

    code, status = "archive_failed", 502


class GraphUnavailable(AppError):
    code, status = "graph_unavailable", 503


class SecretsUnavailable(AppError):
    """Key Vault could not be reached and no earlier value is cached."""

    code, status = "secrets_unavailable", 503


# Graph error codes that mean the same thing to our callers, whatever the HTTP status.
SEND_AS_HINT = (
    "The connection's account may not send as this mailbox. An Exchange admin must grant "
    "Send As and Full Access on it, e.g. `Add-RecipientPermission -Identity <mailbox> "
    "-Trustee <account> -AccessRights SendAs` and `Add-MailboxPermission -Identity <mailbox> "
    "-User <account> -AccessRights FullAccess` (Full Access puts the copy in its Sent Items)."
)


def send_on_behalf_hint(principal: str, delegate: str) -> str:
    """What an Exchange admin grants so `delegate` may send on behalf of `principal`."""
    return (
        f"{delegate} may not send on behalf of {principal}. An Exchange admin grants it with "
        f'`Set-Mailbox -Identity {principal} -GrantSendOnBehalfTo @{{Add="{delegate}"}}` '
        "(it can take up to two hours to apply). A delegated connection must be signed in as "
        "the delegate; the mail is sent from the delegate's own mailbox, so its copy lands in "
        "the delegate's Sent Items (and also in the principal's when the principal has "
        "`Set-Mailbox -MessageCopyForSendOnBehalfEnabled $true`)."
    )


MESSAGE_SIZE_HINT = (
    "Exchange refused the message: it is larger than the sender mailbox's maximum message "
    "size (35 MB unless the tenant raised it; attachments count base64-encoded, a third "
    "larger). Send fewer or smaller attachments or links to them, and set MESSAGE_MAX_BYTES to "
    "the tenant's limit so this is caught before anything is uploaded."
)
_MAILBOX_CODES = {"ErrorInvalidUser", "MailboxNotEnabledForRESTAPI", "MailboxNotFound"}
_THROTTLE_STATUSES = {429}
_UNAVAILABLE_STATUSES = {502, 503, 504}


def from_graph_error(
    status: int,
    code: str | None,
    message: str | None,
    request_id: str | None,
    *,
    retry_after: float | None = None,
    not_found: type[AppError] = MessageNotFound,
) -> AppError:
    """Turn one Graph error answer into our error (pure; `not_found` says what a 404 means)."""
    info = GraphInfo(status, code, request_id)
    text = (
        f"Graph answered {status}"
        + (f" {code}" if code else "")
        + (f": {message}" if message else "")
    )
    if code == "ErrorSendAsDenied":
        return SendAsDenied(SEND_AS_HINT, graph=info)
    if code == "ErrorMessageSizeExceeded":
        # Exchange answers 400; to our callers it is the same as our own size check: 413.
        return PayloadTooLarge(MESSAGE_SIZE_HINT, graph=info)
    if code in _MAILBOX_CODES:
        return MailboxNotFound("The mailbox does not exist or has no mail API.", graph=info)
    if status in _THROTTLE_STATUSES:
        return Throttled(
            "Graph is throttling this mailbox; retry later.",
            graph=info,
            retry_after=retry_after or 1.0,
        )
    if status in _UNAVAILABLE_STATUSES:
        return GraphUnavailable(
            "Graph is unavailable; retry later.", graph=info, retry_after=retry_after or 5.0
        )
    if status == 404:
        return not_found(text, graph=info)
    if status == 413:
        return PayloadTooLarge(text, graph=info)
    if status == 403:
        return AccessDenied(text, graph=info)
    if status == 400:
        return ValidationFailed(f"Graph rejected the request: {text}", graph=info)
    if status == 401:
        return AuthFailed(f"Graph refused the connection's token: {text}", graph=info)
    return GraphError(text, graph=info)


def error_body(error: AppError, operation_id: str | None = None) -> dict[str, Any]:
    """The DESIGN §3 error object for `error` (no stack, no secret: only what we chose)."""
    inner: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.details:
        inner["details"] = [d.as_dict() for d in error.details]
    if operation_id:
        inner["operationId"] = operation_id
    if isinstance(error, ReauthRequired) and error.sign_in_url:
        inner["signInUrl"] = error.sign_in_url
    if isinstance(error, ReauthRequired) and error.admin_command:
        inner["adminCommand"] = error.admin_command
    if error.graph is not None and error.graph.as_dict():
        inner["graph"] = error.graph.as_dict()
    return {"error": inner}


def to_http(
    error: BaseException, operation_id: str | None = None
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Map any exception to (status, headers, body); the only place errors become responses.

    Anything that is not an `AppError` is a bug: callers get a plain 500 without its text.
    """
    if not isinstance(error, AppError):
        error = AppError("Internal error; the operation id is in the logs.")
    headers: dict[str, str] = {}
    if error.retry_after is not None and error.status in (429, 503):
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    return error.status, headers, error_body(error, operation_id)
