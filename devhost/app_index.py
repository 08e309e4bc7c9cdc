"""Import function_app and index its functions from their decorator metadata, as the host does."""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devhost.routes import Route, compile_route

HTTP_TRIGGER = "httpTrigger"
QUEUE_TRIGGER = "queueTrigger"
TIMER_TRIGGER = "timerTrigger"
QUEUE_OUTPUT = "queue"
HTTP_OUTPUT = "http"


class AppIndexError(RuntimeError):
    """function_app could not be imported or declares something the devhost cannot host."""


@dataclass(frozen=True)
class QueueOutput:
    """A queue output binding: the argument receives a func.Out whose value is enqueued."""

    arg_name: str
    queue_name: str
    connection: str


@dataclass
class IndexedFunction:
    """One function: its name, the user callable and its trigger's metadata."""

    name: str
    func: Callable[..., Any]
    trigger_type: str
    trigger_arg: str
    # HTTP triggers
    route: Route | None = None
    methods: tuple[str, ...] = ()
    auth_level: str = "function"
    # Queue triggers
    queue_name: str = ""
    connection: str = "AzureWebJobsStorage"
    outputs: list[QueueOutput] = field(default_factory=list)
    # Timer triggers
    schedule: str = ""
    run_on_startup: bool = False
    use_monitor: bool | None = None
    takes_context: bool = False
    is_async: bool = False


@dataclass
class FunctionIndex:
    """The app's functions, split by trigger type; `skipped` names the ones not hosted."""

    http: list[IndexedFunction]
    queue: list[IndexedFunction]
    skipped: list[str]
    timer: list[IndexedFunction] = field(default_factory=list)


def _binding_dict(binding: Any) -> dict[str, Any]:
    return {
        str(k): (v.value if hasattr(v, "value") else v) for k, v in binding.get_dict_repr().items()
    }


def index_functions(app: Any) -> FunctionIndex:
    """Index `app` (a func.FunctionApp) from get_functions(), the metadata the worker sends."""
    http: list[IndexedFunction] = []
    queue: list[IndexedFunction] = []
    skipped: list[str] = []
    timer: list[IndexedFunction] = []
    for function in app.get_functions():
        # function.json, exactly what the worker reports to the host when it indexes the app.
        bindings = json.loads(function.get_function_json())["bindings"]
        trigger_name = function.get_trigger().name
        trigger = next(b for b in bindings if b["name"] == trigger_name)
        user_func = function.get_user_function()
        params = inspect.signature(user_func).parameters
        indexed = IndexedFunction(
            name=function.get_function_name(),
            func=user_func,
            trigger_type=trigger["type"],
            trigger_arg=trigger["name"],
            takes_context="context" in params,
            is_async=inspect.iscoroutinefunction(user_func),
        )
        for raw in bindings:
            if raw.get("type") == QUEUE_OUTPUT and raw.get("direction") == "OUT":
                connection = raw.get("connection") or "AzureWebJobsStorage"
                indexed.outputs.append(QueueOutput(raw["name"], raw["queueName"], connection))
        if indexed.trigger_type == HTTP_TRIGGER:
            indexed.route = compile_route(str(trigger.get("route") or indexed.name))
            methods = trigger.get("methods") or []
            # No methods in the metadata means every method, as in the host.
            indexed.methods = tuple(str(m).upper() for m in methods)
            indexed.auth_level = str(trigger.get("authLevel") or "function").lower()
            http.append(indexed)
        elif indexed.trigger_type == QUEUE_TRIGGER:
            indexed.queue_name = str(trigger["queueName"])
            indexed.connection = str(trigger.get("connection") or "AzureWebJobsStorage")
            queue.append(indexed)
        elif indexed.trigger_type == TIMER_TRIGGER:
            indexed.schedule = str(trigger["schedule"])
            indexed.run_on_startup = bool(trigger.get("runOnStartup"))
            monitor = trigger.get("useMonitor")
            indexed.use_monitor = None if monitor is None else bool(monitor)
            timer.append(indexed)
        else:
            skipped.append(f"{indexed.name} ({indexed.trigger_type})")
    return FunctionIndex(http, queue, skipped, timer)


def import_app(root: Path, module: str = "function_app") -> Any:
    """Import `module` from `root` and return its FunctionApp; raises AppIndexError if none."""
    from azure.functions.decorators.function_app import FunctionRegister

    root_str = str(root.resolve())
    if root_str not in sys.path:
        sys.path.insert(0, root_str)
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            raise AppIndexError(f"no {module}.py under {root_str}") from exc
        raise
    apps = [v for v in vars(mod).values() if isinstance(v, FunctionRegister)]
    if not apps:
        raise AppIndexError(f"{module}.py defines no func.FunctionApp")
    return apps[0]
