"""One HTTP-streams request between its connection thread (all socket I/O) and the event loop.

The app runs on the loop as an ASGI app would under the worker's uvicorn: `receive` hands it the
body piece by piece as it arrives on the socket (with the devhost's framing limits), `send`
writes the answer as the app produces it (Content-Length when the app gives one, chunked
otherwise). Each call is carried out by the connection thread and awaited by the app, so a slow
client slows the app down instead of filling memory. As uvicorn (ASGI spec 2.3) does: after the
client went away `send` does nothing and `receive` answers `http.disconnect`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import select
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devhost.http_framing import BodyPieces, FramingError, Truncated

# How often the connection thread looks for a client that hung up while the app is busy.
_WATCH_SECONDS = 0.1
# Headers that describe the devhost's own framing, not the app's.
_FRAMING = {b"transfer-encoding", b"connection", b"keep-alive"}


@dataclass
class Outcome:
    """What happened on the connection: status sent, bytes of body, whether it ended cleanly."""

    status: int | None = None
    body_bytes: int = 0
    complete: bool = False
    client_gone: bool = False
    refused: int | None = None  # the framing status (400/408/413/501) the body ended with
    headers: list[tuple[str, str]] = field(default_factory=list)


class AsgiExchange:
    """`receive` and `send` for the app (loop side), carried out by `serve` (connection side).

    `start(status, headers)` writes the status line and headers; `write(data)` writes raw
    bytes (OSError when the client is gone); `on_body_read()` runs once the whole body has been
    handed to the app (the peak-memory report resets there).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        body: BodyPieces,
        method: str,
        start: Callable[[int, list[tuple[str, str]]], None],
        write: Callable[[bytes], None],
        on_body_read: Callable[[], None] = lambda: None,
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._body = body
        self._method = method
        self._start = start
        self._write = write
        self._on_body_read = on_body_read
        self._actions: queue.Queue[tuple[Callable[[], Any], asyncio.Future]] = queue.Queue()
        self._disconnected = asyncio.Event()
        self._body_handed = False
        self._reading: asyncio.Future | None = None
        self._watch_eof = True
        self._chunked = False
        self._length: int | None = None
        self.outcome = Outcome()

    # --- the app's side (event loop) -----------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        if self._reading is None:
            if self._body_handed or self.outcome.client_gone or self.outcome.refused:
                await self._disconnected.wait()
                return {"type": "http.disconnect"}
            self._reading = self._request(self._read_piece)
        # Shielded: a caller that stops waiting (Starlette's is_disconnected() asks and cancels
        # at once) loses no piece; the next receive() gets it, as from uvicorn's queue.
        piece = await asyncio.shield(self._reading)
        self._reading = None
        if piece is None:
            return {"type": "http.disconnect"}
        data, more = piece
        return {"type": "http.request", "body": data, "more_body": more}

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if self.outcome.client_gone or self.outcome.refused:
            return
        if kind == "http.response.start":
            if self.outcome.status is not None:
                raise RuntimeError("http.response.start sent twice")
            await self._ask(lambda: self._begin(message))
        elif kind == "http.response.body":
            if self.outcome.status is None:
                raise RuntimeError("http.response.body before http.response.start")
            if self.outcome.complete:
                raise RuntimeError("http.response.body after the response ended")
            body = bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))
            await self._ask(lambda: self._body_piece(body, more))
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")

    def _request(self, action: Callable[[], Any]) -> asyncio.Future:
        future = self._loop.create_future()
        self._actions.put((action, future))
        return future

    async def _ask(self, action: Callable[[], Any]) -> Any:
        return await self._request(action)

    # --- the connection's side (its own thread) ------------------------------------------

    def serve(self, done: concurrent.futures.Future) -> None:
        """Carry out the app's reads and writes until `done` (the invocation) has finished."""
        while True:
            try:
                action, future = self._actions.get(timeout=_WATCH_SECONDS)
            except queue.Empty:
                if done.done() and self._actions.empty():
                    return
                self._look_for_hang_up()
                continue
            try:
                result = action()
            except BaseException as exc:  # handed to the app, which decides
                self._loop.call_soon_threadsafe(_settle, future, None, exc)
            else:
                self._loop.call_soon_threadsafe(_settle, future, result, None)

    def _read_piece(self) -> tuple[bytes, bool] | None:
        """The next piece of the body (None: the client is gone or the framing was refused)."""
        try:
            data = self._body.read()
        except FramingError as exc:
            self.outcome.refused = exc.status
            self._gone()
            return None
        except TimeoutError:
            self.outcome.refused = 408
            self._gone()
            return None
        except (Truncated, OSError):
            self.outcome.client_gone = True
            self._gone()
            return None
        more = not self._body.done
        if not more:
            self._body_handed = True
            self._on_body_read()
        return data, more

    def _begin(self, message: dict[str, Any]) -> None:
        status = int(message["status"])
        headers: list[tuple[str, str]] = []
        for raw_name, raw_value in message.get("headers", []):
            name = bytes(raw_name).lower()
            if name in _FRAMING:
                continue
            if name == b"content-length":
                self._length = int(raw_value)
            headers.append((bytes(raw_name).decode("latin-1"), bytes(raw_value).decode("latin-1")))
        bodiless = self._method == "HEAD" or status in (204, 304) or status < 200
        if self._length is None and not bodiless:
            self._chunked = True
            headers.append(("Transfer-Encoding", "chunked"))
        self.outcome.status = status
        self.outcome.headers = headers
        if bodiless:
            self._length = 0
        try:
            self._start(status, headers)
        except OSError:
            self.outcome.client_gone = True
            self._gone()

    def _body_piece(self, body: bytes, more: bool) -> None:
        sent = self.outcome.body_bytes
        if self._length is not None and sent + len(body) > self._length:
            raise RuntimeError(f"the body is longer than its Content-Length {self._length}")
        try:
            if body and self._method != "HEAD":
                self._write(b"%x\r\n%b\r\n" % (len(body), body) if self._chunked else body)
            self.outcome.body_bytes = sent + len(body)
            if not more:
                if self._length is not None and self.outcome.body_bytes < self._length:
                    raise RuntimeError(
                        f"the body ended {self._length - self.outcome.body_bytes} bytes short of "
                        "its Content-Length"
                    )
                if self._chunked:
                    self._write(b"0\r\n\r\n")
                self.outcome.complete = True
        except OSError:
            self.outcome.client_gone = True
            self._gone()

    def _look_for_hang_up(self) -> None:
        """While the app works: a client that closed its side is gone (uvicorn would see it)."""
        if not self._watch_eof or self.outcome.client_gone:
            return
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
            if not readable:
                return
            if self._sock.recv(1, socket.MSG_PEEK):
                self._watch_eof = False  # the next request, pipelined: nothing to tell
                return
        except (OSError, ValueError):
            pass
        if not self._body.done:
            return  # reading the body will tell (Truncated)
        self.outcome.client_gone = True
        self._gone()

    def _gone(self) -> None:
        self._loop.call_soon_threadsafe(self._disconnected.set)


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():  # the app stopped waiting (its task was cancelled)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def abort(sock: socket.socket) -> None:
    """End the connection mid-answer, so the client sees a short body or broken chunks."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
