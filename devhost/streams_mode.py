"""Whether the app runs its HTTP functions on HTTP streams, decided as the Python worker does.

The worker switches every HTTP trigger of the app to HTTP streams ("HTTP v2") once a web
extension (azurefunctions-extensions-http-fastapi) was imported while function_app was indexed:
`azurefunctions.extensions.base.HttpV2FeatureChecker.http_v2_enabled()`, on Python 3.8+, unless
PYTHON_ENABLE_INIT_INDEXING is false-like. The worker for Python 3.11/3.12 starts the web server
the host forwards requests to only when PYTHON_ENABLE_INIT_INDEXING is true-like (Python 3.13+
no longer needs it); without it every HTTP call of such an app would wait for ever in Azure, so
the devhost refuses to start instead. The worker also checks each HTTP function's annotations
against the types of the mode it is in; a mismatch fails the function's load, here the start.
"""

from __future__ import annotations

import inspect
import os
import sys
import typing
from typing import Any

INIT_INDEXING = "PYTHON_ENABLE_INIT_INDEXING"
# The worker's BASE_EXT_SUPPORTED_PY_MINOR_VERSION, and the first Python whose worker starts the
# HTTP streams server without PYTHON_ENABLE_INIT_INDEXING.
_FIRST_MINOR_WITH_EXTENSIONS = 8
_FIRST_MINOR_WITHOUT_INIT_INDEXING = 13
_BASE = "azurefunctions.extensions.base"


class StreamsModeError(RuntimeError):
    """The app cannot run as it is: what the worker would refuse or never answer."""


def _true_like(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "t", "yes", "y"}


def _false_like(value: str | None) -> bool:
    return (value or "").strip().lower() in {"0", "false", "f", "no", "n"}


def http_streams_enabled(env: typing.Mapping[str, str] | None = None) -> bool:
    """True when the worker would serve this process's HTTP functions on HTTP streams (call it
    after function_app was imported). Raises StreamsModeError when the app asks for HTTP streams
    but the worker would never start their server (PYTHON_ENABLE_INIT_INDEXING unset)."""
    env = os.environ if env is None else env
    if sys.version_info.minor < _FIRST_MINOR_WITH_EXTENSIONS or _false_like(env.get(INIT_INDEXING)):
        return False
    if _BASE not in sys.modules:
        return False  # no web extension was imported: the classic HTTP types
    base = sys.modules[_BASE]
    if not base.HttpV2FeatureChecker.http_v2_enabled():
        return False
    if sys.version_info.minor < _FIRST_MINOR_WITHOUT_INIT_INDEXING and not _true_like(
        env.get(INIT_INDEXING)
    ):
        raise StreamsModeError(
            f"function_app imports {base.ModuleTrackerMeta.get_module()} (HTTP streams), but "
            f"{INIT_INDEXING} is not 1: the Python {sys.version_info.major}."
            f"{sys.version_info.minor} worker then never starts the web server the host forwards "
            f"HTTP requests to, and every HTTP call would hang. Set {INIT_INDEXING}=1 in "
            "local.settings.json and in the app settings."
        )
    return True


def request_type() -> type:
    """The web extension's request type (FastAPI's Request); HTTP streams mode only."""
    return sys.modules[_BASE].RequestTrackerMeta.get_request_type()


def check_http_signature(name: str, func: Any, trigger_arg: str, streams: bool) -> None:
    """Raise StreamsModeError when the worker would refuse to load this HTTP function: its
    trigger argument or return annotated with a type of the other HTTP mode."""
    hints = typing.get_type_hints(func)
    param = hints.get(trigger_arg)
    returned = hints.get("return")
    if streams:
        base = sys.modules[_BASE]
        param_ok = param is None or base.RequestTrackerMeta.check_type(param)
        return_ok = returned is None or base.ResponseTrackerMeta.check_type(returned)
        mode = "HTTP streams (the extension's Request and Response types)"
    else:
        import azure.functions as func_lib

        registry = func_lib.get_binding_registry()
        param_ok = param is None or registry.get("httpTrigger").check_input_type_annotation(param)
        return_ok = returned is None or registry.get("http").check_output_type_annotation(returned)
        mode = "the classic HTTP types (azure.functions.HttpRequest, HttpResponse)"
    if not param_ok:
        raise StreamsModeError(
            f"cannot load the {name} function: {trigger_arg} is annotated "
            f"{_name(param)}, but the app runs on {mode}"
        )
    if not return_ok:
        raise StreamsModeError(
            f"cannot load the {name} function: its return is annotated {_name(returned)}, "
            f"but the app runs on {mode}"
        )


def _name(annotation: Any) -> str:
    return annotation.__qualname__ if inspect.isclass(annotation) else repr(annotation)
