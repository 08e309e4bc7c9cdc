"""Call one user function with real azure.functions objects, as the Python worker does."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func

from devhost.app_index import IndexedFunction, QueueOutput


class _Context(func.Context):
    """The `context` argument: invocation id and function name (no tracing locally)."""

    def __init__(self, function_name: str, directory: str) -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._directory = directory
        self._local = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> threading.local:  # type: ignore[override]
        return self._local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._directory

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None


class _Out(func.Out):
    """An output binding's value holder."""

    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


@dataclass
class Invocation:
    """What one call produced: the return value and the values set on output bindings."""

    result: Any
    outputs: list[tuple[QueueOutput, Any]]
    invocation_id: str


@dataclass
class Call:
    """The arguments of one call: the trigger value, output holders and the context."""

    kwargs: dict[str, Any]
    invocation_id: str
    _outs: dict[str, tuple[QueueOutput, _Out]]

    def outputs(self) -> list[tuple[QueueOutput, Any]]:
        """The values the function set on its output bindings."""
        return [(o, h.get()) for o, h in self._outs.values() if h.get() is not None]


def prepare(function: IndexedFunction, trigger_value: Any, root: Path) -> Call:
    """The keyword arguments the worker passes `function` for `trigger_value`."""
    context = _Context(function.name, str(root))
    kwargs: dict[str, Any] = {function.trigger_arg: trigger_value}
    outs = {o.arg_name: (o, _Out()) for o in function.outputs}
    kwargs.update({name: holder for name, (_, holder) in outs.items()})
    if function.takes_context:
        kwargs["context"] = context
    return Call(kwargs, context.invocation_id, outs)


def invoke(
    function: IndexedFunction, trigger_value: Any, root: Path, *, on_start: Callable | None = None
) -> Invocation:
    """Run `function` with `trigger_value` as its trigger argument; its exceptions propagate."""
    call = prepare(function, trigger_value, root)
    if on_start:
        on_start(call.invocation_id)
    result = function.func(**call.kwargs)
    if function.is_async:
        # Each request or message runs on its own thread, so a fresh event loop is safe here.
        result = asyncio.run(result)
    return Invocation(result, call.outputs(), call.invocation_id)


def to_http_response(result: Any) -> func.HttpResponse:
    """Turn a function's return value into an HttpResponse, as the worker's converters do."""
    if isinstance(result, func.HttpResponse):
        return result
    if result is None:
        return func.HttpResponse(status_code=204)
    if isinstance(result, bytes | str):
        return func.HttpResponse(result, status_code=200)
    raise TypeError(f"HTTP function returned {type(result).__name__}, not func.HttpResponse")
