"""The devhost indexes a function app from the same metadata the Functions host uses."""

import importlib.util

import pytest

from devhost.app_index import index_functions
from devhost.queue_host import decode_message, encode_message
from tests.devhost.conftest import FIXTURE_APP


def _fixture_app():
    # Loaded under its own module name so it never collides with the product's function_app.
    spec = importlib.util.spec_from_file_location(
        "devhost_fixture_app", FIXTURE_APP / "function_app.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


def test_http_functions_carry_route_methods_and_auth_level():
    index = index_functions(_fixture_app())
    by_name = {f.name: f for f in index.http}
    assert by_name["hello"].route.template == "hello/{name}"
    assert by_name["hello"].methods == ("GET",)
    assert by_name["hello"].auth_level == "function"
    assert by_name["public"].auth_level == "anonymous"
    assert by_name["admin"].auth_level == "admin"
    # No methods declared means every method, as under the host.
    assert by_name["admin"].methods == ()


def test_queue_trigger_and_queue_output_are_indexed():
    index = index_functions(_fixture_app())
    (record,) = index.queue
    assert (record.name, record.queue_name, record.connection) == (
        "record",
        "work",
        "AzureWebJobsStorage",
    )
    assert record.trigger_arg == "msg"
    enqueue = next(f for f in index.http if f.name == "enqueue")
    assert [(o.arg_name, o.queue_name) for o in enqueue.outputs] == [("out", "work")]
    assert index.skipped == []


def test_base64_encoding_round_trips_bytes():
    data = bytes(range(256))
    assert decode_message(encode_message(data, "base64"), "base64") == data


def test_plain_encoding_keeps_text():
    assert encode_message("héllo", "none") == "héllo"
    assert decode_message("héllo", "none") == "héllo".encode()


def test_non_base64_content_is_refused_when_base64_is_expected():
    with pytest.raises(ValueError, match="base64"):
        decode_message("not base64!", "base64")
