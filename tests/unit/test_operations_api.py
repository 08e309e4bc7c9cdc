"""GET /api/operations/{id}: ids that are not UUIDs are unknown operations (404), whatever
characters they hold, and never reach the operation store."""

from __future__ import annotations

import json

import pytest

from operations_api import operation_status
from shared.runtime import Runtime, use_runtime
from shared.settings import Settings
from tests.fakes import FailingStore
from tests.http_kit import Answer, call_function, make_request


def call(operation_id: str) -> Answer:
    req = make_request(
        "GET",
        f"http://localhost/api/operations/{operation_id}",
        route_params={"operationId": operation_id},
    )
    return call_function(operation_status.build().get_user_function(), req)


@pytest.mark.parametrize("operation_id", ["a#b", "x/y", "what?", "not-a-uuid", "1" * 64])
def test_an_id_that_is_not_a_uuid_is_404_without_touching_storage(operation_id):
    # Any call on this store fails the test (an AssertionError answers 500, not 404).
    runtime = Runtime(Settings.load(env={}), store=FailingStore())
    with use_runtime(runtime):
        resp = call(operation_id)
    assert resp.status == 404
    assert json.loads(resp.body)["error"]["code"] == "operation_not_found"
