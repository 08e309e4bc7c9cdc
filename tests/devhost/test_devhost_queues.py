"""Queue triggers on Azurite follow host.json's extensions.queues semantics.

The fixture app's host.json: maxDequeueCount 3, visibilityTimeout 1 s, maxPollingInterval 0.5 s.
"""

import json
import uuid

import pytest
from azure.storage.queue import (
    BinaryBase64DecodePolicy,
    BinaryBase64EncodePolicy,
    QueueClient,
    TextBase64DecodePolicy,
    TextBase64EncodePolicy,
)

from devhost.services import wait_until

WAIT = 30  # seconds; generous bound for every wait below


@pytest.fixture
def work_queue(azurite):
    client = QueueClient.from_connection_string(
        azurite.connection_string,
        "work",
        message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=TextBase64DecodePolicy(),
    )
    return client


def _send(queue: QueueClient, **spec) -> str:
    tag = uuid.uuid4().hex
    queue.send_message(json.dumps({"tag": tag, **spec}))
    return tag


def _deliveries(host, tag: str) -> list[dict]:
    return [r for r in host.records() if tag in r["body"]]


def _queue_empty(queue: QueueClient) -> bool:
    # Counts invisible (leased) messages too, unlike peek.
    return queue.get_queue_properties().approximate_message_count == 0


def test_success_runs_once_and_deletes_the_message(fixture_host, work_queue):
    tag = _send(work_queue)
    assert wait_until(lambda: _deliveries(fixture_host, tag), WAIT)
    assert wait_until(lambda: _queue_empty(work_queue), WAIT)
    (delivery,) = _deliveries(fixture_host, tag)
    assert delivery["dequeueCount"] == 1


def test_message_metadata_reaches_the_function(fixture_host, work_queue):
    sent = work_queue.send_message(json.dumps({"tag": "meta-" + uuid.uuid4().hex}))
    assert wait_until(lambda: any(r["id"] == sent.id for r in fixture_host.records()), WAIT)
    delivery = next(r for r in fixture_host.records() if r["id"] == sent.id)
    assert delivery["insertionTime"] and delivery["expirationTime"] and delivery["popReceipt"]


def test_failure_is_retried_with_a_growing_dequeue_count_then_succeeds(
    fixture_host, work_queue, azurite
):
    tag = _send(work_queue, failTimes=2)
    assert wait_until(lambda: len(_deliveries(fixture_host, tag)) == 3, WAIT)
    assert [d["dequeueCount"] for d in _deliveries(fixture_host, tag)] == [1, 2, 3]
    assert wait_until(lambda: _queue_empty(work_queue), WAIT)
    poison = QueueClient.from_connection_string(azurite.connection_string, "work-poison")
    assert not any(tag in m.content for m in _peek_all(poison))


def _peek_all(queue: QueueClient) -> list:
    try:
        return list(queue.peek_messages(max_messages=32))
    except Exception:  # the poison queue does not exist until something is poisoned
        return []


def test_message_failing_every_time_goes_to_the_poison_queue(fixture_host, work_queue, azurite):
    tag = _send(work_queue, failTimes=99)
    poison = QueueClient.from_connection_string(
        azurite.connection_string,
        "work-poison",
        message_decode_policy=TextBase64DecodePolicy(),
    )
    assert wait_until(lambda: any(tag in m.content for m in _peek_all(poison)), WAIT)
    # maxDequeueCount is 3: three attempts, then no more.
    assert [d["dequeueCount"] for d in _deliveries(fixture_host, tag)] == [1, 2, 3]
    assert wait_until(lambda: _queue_empty(work_queue), WAIT)
    # The poison copy carries the original body (still base64 text, as the host leaves it).
    (poisoned,) = [m for m in _peek_all(poison) if tag in m.content]
    assert json.loads(poisoned.content)["failTimes"] == 99


def test_binary_body_round_trips_through_base64(fixture_host, azurite):
    queue = QueueClient.from_connection_string(
        azurite.connection_string,
        "work",
        message_encode_policy=BinaryBase64EncodePolicy(),
        message_decode_policy=BinaryBase64DecodePolicy(),
    )
    marker = uuid.uuid4().hex.encode()
    body = marker + bytes(range(256))
    queue.send_message(body)
    assert wait_until(lambda: _deliveries(fixture_host, marker.decode()), WAIT)
    (delivery,) = _deliveries(fixture_host, marker.decode())
    # The fixture records the body as latin-1, which maps each byte to one character.
    assert delivery["body"].encode("latin-1") == body


def test_text_that_is_not_base64_ends_in_poison_without_reaching_the_function(
    fixture_host, azurite
):
    raw = QueueClient.from_connection_string(azurite.connection_string, "work")
    tag = "not-base64 " + uuid.uuid4().hex + " !"
    raw.send_message(tag)
    poison = QueueClient.from_connection_string(azurite.connection_string, "work-poison")
    assert wait_until(lambda: any(m.content == tag for m in _peek_all(poison)), WAIT)
    assert _deliveries(fixture_host, tag) == []


def test_killed_devhost_leaves_the_message_to_be_redelivered_after_a_restart(
    fixture_host, work_queue
):
    tag = _send(work_queue, hang=True)
    assert wait_until(lambda: _deliveries(fixture_host, tag), WAIT)
    fixture_host.kill()
    fixture_host.start()
    # Visible again once the dead devhost's lease runs out; the new devhost gets delivery 2.
    assert wait_until(lambda: len(_deliveries(fixture_host, tag)) == 2, WAIT)
    assert [d["dequeueCount"] for d in _deliveries(fixture_host, tag)] == [1, 2]
    assert wait_until(lambda: _queue_empty(work_queue), WAIT)
