"""Graph's error shape: one exception type and the single place that renders it as a response."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sandbox.web import Request, Response


class GraphError(Exception):
    """An error Graph would answer with `status` and `{"error": {"code", "message"}}`."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def bad_request(message: str, code: str = "BadRequest") -> GraphError:
    return GraphError(400, code, message)


def access_denied() -> GraphError:
    return GraphError(
        403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
    )


def send_as_denied() -> GraphError:
    return GraphError(
        403,
        "ErrorSendAsDenied",
        "The user account which was used to submit this request does not have the right to "
        "send mail on behalf of the specified sending account., Cannot submit message.",
    )


def invalid_user(name: str) -> GraphError:
    return GraphError(404, "ErrorInvalidUser", f"The requested user '{name}' is invalid.")


def item_not_found() -> GraphError:
    return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def too_large(limit: int) -> GraphError:
    return GraphError(
        413,
        "RequestEntityTooLarge",
        f"The request is larger than the maximum of {limit} bytes this API accepts.",
    )


def throttled(retry_after: int, limit_name: str) -> GraphError:
    return GraphError(
        429,
        "ApplicationThrottled",
        f"Application is over its {limit_name} limit.",
        {"Retry-After": str(retry_after)},
    )


def request_ids(req: Request) -> tuple[str, str]:
    """The request-id (made once per request) and the client-request-id (echoed, or made)."""
    rid = req.log.get("graph_request_id")
    if not rid:
        rid = req.log["graph_request_id"] = str(uuid.uuid4())
    client = req.headers.get("client-request-id") or rid
    return rid, client


def id_headers(req: Request) -> dict[str, str]:
    rid, client = request_ids(req)
    return {"request-id": rid, "client-request-id": client}


def error_response(req: Request, err: GraphError) -> Response:
    """Render `err` as Graph does, with request ids in the body and the headers."""
    rid, client = request_ids(req)
    body = {
        "error": {
            "code": err.code,
            "message": err.message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": rid,
                "client-request-id": client,
            },
        }
    }
    return Response.json(body, err.status, {**id_headers(req), **err.headers})
