"""The worker's side of HTTP streams: one event loop for every HTTP invocation, as the Python
worker has (its uvicorn server and the invocations share it), and a thread pool for sync ones.

An invocation gets the extension's Request (FastAPI's) for the request's ASGI scope, with the
route parameters the host matched as `path_params`; an async function is awaited on the loop, a
sync one runs in the pool (the worker's `run_in_executor`). What it returns is answered as FastAPI
answers the worker's catch-all route: a Response runs as the ASGI app it is, anything else is
JSON (`jsonable_encoder`). Output bindings are delivered after the function returns.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from devhost.app_index import IndexedFunction, QueueOutput
from devhost.asgi_exchange import AsgiExchange
from devhost.invoke import prepare
from devhost.streams_mode import request_type

OutputSink = Callable[[list[tuple[QueueOutput, Any]]], None]


class StreamsWorker:
    """The event loop thread and the sync pool; stop() ends both."""

    def __init__(self, sync_threads: int | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=sync_threads, thread_name_prefix="devhost-sync"
        )
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="devhost-event-loop", daemon=True
        )
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.pool.shutdown(wait=False, cancel_futures=True)


async def invoke_streamed(
    worker: StreamsWorker,
    function: IndexedFunction,
    scope: dict[str, Any],
    exchange: AsgiExchange,
    root: Path,
    deliver_outputs: OutputSink | None,
) -> None:
    """Call `function` with a Request over `exchange` and send its answer; its exceptions
    propagate (before the answer started, the caller answers 500)."""
    request = request_type()(scope, exchange.receive)
    call = prepare(function, request, root)
    if function.is_async:
        result = await function.func(**call.kwargs)
    else:
        result = await asyncio.get_running_loop().run_in_executor(
            worker.pool, functools.partial(function.func, **call.kwargs)
        )
    outputs = call.outputs()
    if outputs and deliver_outputs:
        await asyncio.get_running_loop().run_in_executor(worker.pool, deliver_outputs, outputs)
    await as_response(result)(scope, exchange.receive, exchange.send)


def as_response(result: Any) -> Any:
    """The ASGI app answering `result`, as FastAPI answers what a route returned."""
    from starlette.responses import Response

    if isinstance(result, Response):
        return result
    from fastapi.encoders import jsonable_encoder
    from fastapi.responses import JSONResponse

    return JSONResponse(jsonable_encoder(result))
