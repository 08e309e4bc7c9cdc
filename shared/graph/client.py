"""A small Microsoft Graph client: one pooled session, timeouts, bounded retries, clear errors.

Raises (all from shared.errors): `Throttled` / `GraphUnavailable` (with Retry-After) when the
retry budget is spent, `GraphOutcomeUnknown` when a non-idempotent call was sent but its answer
was lost, and the mapped Graph error (`SendAsDenied`, `MessageNotFound`, ...) otherwise.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from shared.errors import (
    AppError,
    GraphInfo,
    GraphOutcomeUnknown,
    GraphUnavailable,
    MessageNotFound,
    from_graph_error,
)
from shared.graph.limiter import MailboxGate, is_submission, mailbox_of
from shared.graph.retry import RETRY_STATUSES, maybe_processed, next_delay, parse_retry_after
from shared.oplog import mask_address
from shared.sessions import pooled_session

# One JSON line per 429 Graph answers (the workbook's "429s per mailbox"; never a token).
throttle_log = logging.getLogger("exchange_processor.graph")

CONNECT_TIMEOUT = 10.0
# Message ids stay the same when a message moves or is sent (a draft becomes the Sent Items
# copy): the id we return keeps working, and the move cache never holds a stale id.
IMMUTABLE_IDS = 'IdType="ImmutableId"'
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


def mailbox_path(mailbox: str) -> str:
    """`users/{mailbox}` for Graph paths (the one place that quotes a mailbox)."""
    return f"users/{quote(mailbox, safe='@')}"


def sent_before_failure(exc: requests.RequestException) -> bool:
    """True when the request may have reached the server (so its effect is unknown).

    Connect failures (refused, DNS, connect timeout, TLS handshake) never sent a byte of the
    request; a read timeout or a connection dropped while waiting for the answer did.
    """
    if isinstance(exc, (requests.ConnectTimeout, requests.exceptions.SSLError)):
        return False
    if isinstance(exc, requests.ConnectionError):
        import urllib3.exceptions as u3

        seen: set[int] = set()
        todo: list[BaseException | None] = [exc]
        while todo:
            item = todo.pop()
            if item is None or id(item) in seen:
                continue
            seen.add(id(item))
            if isinstance(item, (u3.NewConnectionError, u3.NameResolutionError)):
                return False
            todo.extend(a for a in getattr(item, "args", ()) if isinstance(a, BaseException))
            todo.append(getattr(item, "reason", None))
            todo.append(item.__cause__)
            todo.append(item.__context__)
    return True


@dataclass
class GraphResponse:
    status: int
    data: Any
    headers: Any
    request_id: str | None


def _error_parts(resp: requests.Response) -> tuple[str | None, str | None, str | None]:
    """(code, message, request-id) of a Graph error answer, tolerating non-JSON bodies."""
    request_id = resp.headers.get("request-id")
    try:
        err = resp.json().get("error", {})
    except ValueError:
        return None, None, request_id
    if not isinstance(err, dict):
        return None, None, request_id
    inner = err.get("innerError") or err.get("innererror") or {}
    if isinstance(inner, dict):
        request_id = request_id or inner.get("request-id")
    message = err.get("message")
    return err.get("code"), (str(message)[:300] if message else None), request_id


@dataclass
class GraphClient:
    """Graph calls for one connection; `token` returns a current access token."""

    base_url: str
    token: Callable[..., str]
    timeout: float = 30.0
    retry_budget: float = 20.0
    session: Any = field(default_factory=pooled_session)
    client_request_id: str | None = None
    request_ids: list[str] = field(default_factory=list)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    # The mailbox limits every call to a mailbox goes through (shared.graph.limiter); None:
    # unlimited (tests of the client alone).
    limits: MailboxGate | None = None
    # MASK_ADDRESSES_IN_LOGS for the throttling line's mailbox.
    mask_addresses: bool = True

    def _log_throttled(self, url: str, retry_after: float | None, request_id: str | None) -> None:
        mailbox = mailbox_of(url)
        shown = mask_address(mailbox) if mailbox and self.mask_addresses else mailbox
        line = {
            "event": "graph.throttled",
            "mailbox": shown,
            "status": 429,
            "retryAfter": retry_after,
            "requestId": request_id,
        }
        throttle_log.warning(json.dumps(line, separators=(",", ":")))

    def url(self, path: str) -> str:
        if path.startswith("https://") or path.startswith("http://"):
            return path
        return f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
        authenticated: bool = True,
        not_found: type[AppError] = MessageNotFound,
        stream: bool = False,
    ) -> GraphResponse:
        """One Graph call with retries on 429/503/504 and connect failures within the budget.

        Non-idempotent calls retry only what Graph did not process (429, 503 + Retry-After,
        connect failures); a 502/504 or a bare 503 raises GraphOutcomeUnknown instead.
        `stream`: a successful answer's body is left unread; `data` is the open
        requests.Response, which the caller reads and closes.
        """
        method = method.upper()
        idempotent = method in _IDEMPOTENT if idempotent is None else idempotent
        url = self.url(path)
        mailbox = mailbox_of(url) if self.limits is not None else None
        submission = mailbox is not None and is_submission(method, url)
        start = self.clock()
        attempt = 0
        force_token = refreshed = False
        while True:
            hdrs = {"Prefer": IMMUTABLE_IDS, "Accept": "application/json"}
            if self.client_request_id:
                hdrs["client-request-id"] = self.client_request_id
            if authenticated:
                token = self.token(force_refresh=True) if force_token else self.token()
                force_token = False
                hdrs["Authorization"] = f"Bearer {token}"
            hdrs.update(headers or {})
            sent_at = self.clock()
            try:
                # A slot of the mailbox for the whole call (the body is read inside, except a
                # `stream`ed answer's: read after the slot is given back); a submission first
                # waits for its booked departure.
                with self._slot(mailbox, submission, method == "DELETE"):
                    sent_at = self.clock()
                    resp = self.session.request(
                        method,
                        url,
                        json=json,
                        data=data,
                        params=params,
                        headers=hdrs,
                        timeout=(CONNECT_TIMEOUT, self.timeout),
                        allow_redirects=False,
                        **({"stream": True} if stream else {}),
                    )
            except requests.RequestException as exc:
                sent = sent_before_failure(exc)
                if sent and not idempotent:
                    raise GraphOutcomeUnknown(
                        f"Graph did not answer {method} {_safe_path(path)} after it was sent "
                        "(timeout or dropped connection); it may have taken effect."
                    ) from exc
                delay = next_delay(
                    attempt,
                    None,
                    self.clock() - start,
                    self.retry_budget,
                    attempt_cost=self.clock() - sent_at,
                )
                if delay is None:
                    raise GraphUnavailable(
                        f"Graph could not be reached ({type(exc).__name__}); retry later.",
                        retry_after=5.0,
                    ) from exc
                self.sleep(delay)
                attempt += 1
                continue
            request_id = resp.headers.get("request-id")
            if request_id:
                self.request_ids.append(request_id)
            if resp.status_code < 400:
                data = resp if stream else _json_or_none(resp)
                return GraphResponse(resp.status_code, data, resp.headers, request_id)
            if resp.status_code == 401 and authenticated and not refreshed:
                # A token revoked or signed with a rotated key: one retry with a new token.
                resp.close()
                force_token = refreshed = True
                continue
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            if resp.status_code == 429:
                self._log_throttled(self.url(path), retry_after, request_id)
            if mailbox is not None and retry_after and resp.status_code == 429:
                # Graph's throttling pause holds for the mailbox, not this call: every instance
                # waits. (A 503's Retry-After is about the service, not the mailbox: this call
                # honours it, as before, without holding every instance off the mailbox.)
                assert self.limits is not None
                self.limits.pause(mailbox, retry_after)
            if not idempotent and maybe_processed(resp.status_code, retry_after):
                # A gateway error on a POST (e.g. /send) may come after the backend acted:
                # only 429 and 503 + Retry-After say "not processed" (docs/operations.md).
                resp.close()
                raise GraphOutcomeUnknown(
                    f"Graph answered {resp.status_code} to {method} {_safe_path(path)}; "
                    "it may have taken effect.",
                    retry_after=retry_after,
                )
            if resp.status_code in RETRY_STATUSES:
                delay = next_delay(
                    attempt,
                    retry_after,
                    self.clock() - start,
                    self.retry_budget,
                    attempt_cost=self.clock() - sent_at,
                )
                if delay is not None:
                    resp.close()
                    self.sleep(delay)
                    attempt += 1
                    continue
            code, message, rid = _error_parts(resp)
            raise from_graph_error(
                resp.status_code, code, message, rid, retry_after=retry_after, not_found=not_found
            )

    def _slot(
        self, mailbox: str | None, submission: bool, cleanup: bool
    ) -> contextlib.AbstractContextManager:
        if mailbox is None or self.limits is None:
            return contextlib.nullcontext()
        return self.limits.call(mailbox, submission=submission, cleanup=cleanup)

    def pace_send(self, mailbox: str) -> None:
        """Book the departure of a message `mailbox` is about to send, before composing it.

        Raises MailboxBusy (a Throttled) when the sending rate leaves no room soon: nothing is
        composed in vain, and queued work comes back for its booked moment.
        """
        if self.limits is not None:
            self.limits.pace(mailbox)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw).data

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, json=json, **kw).data

    def patch(self, path: str, json: Any = None, **kw: Any) -> Any:
        """PATCH is idempotent for Graph's resources (it sets values), so it is retried like a
        GET when its answer is lost."""
        return self.request("PATCH", path, json=json, idempotent=True, **kw).data

    def stream(self, path: str, **kw: Any) -> requests.Response:
        """GET `path` with the body unread (e.g. a message's `$value`); close it when done.

        The mailbox's request slot (shared.graph.limiter) covers the call up to the answer's
        headers; the body is read after it, at the caller's pace.
        """
        return self.request("GET", path, stream=True, **kw).data

    def pages(self, path: str, params: dict[str, str] | None = None, **kw: Any) -> Iterator[dict]:
        """Every item of a collection, following @odata.nextLink."""
        url: str | None = path
        while url:
            data = self.request("GET", url, params=params, **kw).data or {}
            yield from data.get("value", [])
            url = data.get("@odata.nextLink")
            params = None  # the next link carries the query already


def _json_or_none(resp: requests.Response) -> Any:
    if not resp.content:
        return None
    try:
        return resp.json()
    except ValueError:
        return None


def _safe_path(path: str) -> str:
    """A path for messages: no query string (it may hold addresses) and no pre-auth token."""
    if path.startswith(("https://", "http://")):
        return "<absolute URL>"  # upload URLs are pre-authenticated: never echo them
    return path.split("?", 1)[0][:120]


__all__ = ["GraphClient", "GraphInfo", "GraphResponse", "pooled_session", "sent_before_failure"]
