"""The devhost decides HTTP streams as the Python worker does, and refuses what the worker would
refuse or never answer (devhost.streams_mode)."""

from __future__ import annotations

import azure.functions as func
import azurefunctions.extensions.http.fastapi as streams  # the import is what switches the mode
import pytest

from devhost.streams_mode import StreamsModeError, check_http_signature, http_streams_enabled


def test_the_web_extension_imported_means_http_streams_when_init_indexing_is_on():
    assert streams.Request  # imported above, as function_app does
    assert http_streams_enabled({"PYTHON_ENABLE_INIT_INDEXING": "1"}) is True
    assert http_streams_enabled({"PYTHON_ENABLE_INIT_INDEXING": "true"}) is True
    # Turned off explicitly: the worker keeps the classic HTTP types.
    assert http_streams_enabled({"PYTHON_ENABLE_INIT_INDEXING": "0"}) is False


def test_without_init_indexing_the_311_worker_never_starts_the_streams_server():
    with pytest.raises(StreamsModeError, match="PYTHON_ENABLE_INIT_INDEXING"):
        http_streams_enabled({})


async def streamed(req: streams.Request) -> streams.Response:
    return streams.Response()


async def streamed_unannotated(req):
    return streams.Response()


def classic(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse()


def classic_return(req: streams.Request) -> func.HttpResponse:
    return func.HttpResponse()


def test_each_mode_loads_only_functions_declared_with_its_types():
    check_http_signature("streamed", streamed, "req", streams=True)
    check_http_signature("unannotated", streamed_unannotated, "req", streams=True)
    check_http_signature("classic", classic, "req", streams=False)
    with pytest.raises(StreamsModeError, match="cannot load the classic function: req"):
        check_http_signature("classic", classic, "req", streams=True)
    with pytest.raises(StreamsModeError, match="its return is annotated HttpResponse"):
        check_http_signature("classic_return", classic_return, "req", streams=True)
    with pytest.raises(StreamsModeError, match="cannot load the streamed function"):
        check_http_signature("streamed", streamed, "req", streams=False)
