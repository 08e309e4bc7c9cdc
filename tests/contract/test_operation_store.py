"""The OperationStore contract, run on the in-memory fake and on the Table store (Azurite): the
lifecycle's unit tests trust the fake only as far as both pass these."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from shared.errors import IdempotencyConflict
from shared.timestamps import now_utc
from shared.work.record import key_hash, new_operation
from shared.work.states import Status
from shared.work.store import StoreConflict
from tests.fakes import MemoryStore, accept_one

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["memory", "table"])
def store(request):
    if request.param == "memory":
        return MemoryStore()
    from azure.data.tables import TableServiceClient

    from shared.work.table_store import TableOperationStore

    azurite = request.getfixturevalue("azurite")
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    # A table of its own: purge and stale must not see other tests' operations.
    return TableOperationStore(service.get_table_client(f"contract{uuid.uuid4().hex[:12]}"))


def send_request(subject: str = "Hi") -> dict:
    return {
        "connection": f"conn-{uuid.uuid4().hex[:8]}",
        "from": "anna@contoso.test",
        "to": ["bram@contoso.test"],
        "subject": subject,
        "user": "anna@contoso.test",
    }


def test_an_operation_round_trips_every_field_and_a_stale_etag_cannot_overwrite_it(store):
    op = store.create(new_operation(str(uuid.uuid4()), "send", "c", envelope=b'{"x":1}'))
    first, second = store.get(op.operation_id), store.get(op.operation_id)
    first.status, first.attempts, first.result = Status.RUNNING, 1, {"messageId": "m"}
    first.progress = {"sendIssuedAt": "2026-01-01T00:00:00.000000Z"}
    first.user, first.claimed_until = "anna@contoso.test", "2026-01-01T00:11:00.000000Z"
    store.save(first)
    second.status = Status.SUCCEEDED
    with pytest.raises(StoreConflict):
        store.save(second)
    again = store.get(op.operation_id)
    assert (again.status, again.attempts, again.result) == (Status.RUNNING, 1, {"messageId": "m"})
    assert again.progress == {"sendIssuedAt": "2026-01-01T00:00:00.000000Z"}
    assert (again.user, again.claimed_until) == (first.user, first.claimed_until)
    assert again.envelope == b'{"x":1}' and again.created_at and again.updated_at
    public = again.public()
    assert public["status"] == "running" and public["operation"] == "send"
    assert not {"envelope", "progress", "user", "claimedUntil", "etag"} & set(public)


def test_creating_an_existing_id_conflicts_and_saving_a_missing_one_conflicts(store):
    op = store.create(new_operation(str(uuid.uuid4()), "send", "c"))
    with pytest.raises(StoreConflict):
        store.create(new_operation(op.operation_id, "send", "c"))
    store.delete(op.operation_id)
    assert store.get(op.operation_id) is None
    with pytest.raises(StoreConflict):
        store.save(op)
    store.delete(op.operation_id)  # deleting what is gone is fine


def test_five_concurrent_duplicates_of_one_key_become_one_operation(store):
    request = send_request()
    with ThreadPoolExecutor(5) as pool:
        results = list(pool.map(lambda _: accept_one(store, request, key="k-1"), range(5)))
    assert sum(r.new for r in results) == 1
    assert len({r.operation.operation_id for r in results}) == 1
    with pytest.raises(IdempotencyConflict):
        accept_one(store, {**request, "subject": "other"}, key="k-1")


def test_without_a_key_the_operation_id_is_the_key(store):
    request = send_request()
    op_id = str(uuid.uuid4())
    assert accept_one(store, request, operation_id=op_id).new
    # The same message delivered again (DocuFlow dropped it on the queue twice).
    with pytest.raises(StoreConflict):
        accept_one(store, request, operation_id=op_id)


def test_forget_removes_the_operation_and_frees_its_key(store):
    request = send_request()
    first = accept_one(store, request, key="k-forget").operation
    store.forget(first)
    assert store.get(first.operation_id) is None
    again = accept_one(store, request, key="k-forget")
    assert again.new and again.operation.operation_id != first.operation_id
    claim = store.claim_key(key_hash(request["connection"], "send", "k-forget"), "other", "h")
    assert claim.operation_id == again.operation.operation_id and not claim.new


def test_the_parked_index_finds_operations_per_connection_and_user(store):
    connection = f"conn-{uuid.uuid4().hex[:8]}"
    anna = new_operation(str(uuid.uuid4()), "send", connection, user="Anna@Contoso.test")
    bram = new_operation(str(uuid.uuid4()), "send", connection, user="bram@contoso.test")
    for op in (anna, bram):
        store.index_parked(op)
    assert sorted(store.parked_ids(connection)) == sorted([anna.operation_id, bram.operation_id])
    assert store.parked_ids(connection.upper(), "anna@contoso.test") == [anna.operation_id]
    assert store.parked_ids("another", None) == []
    store.unindex_parked(connection, anna.operation_id)
    assert store.parked_ids(connection) == [bram.operation_id]
    entries = [e for e in store.all_parked() if e.operation_id == bram.operation_id]
    assert len(entries) == 1
    store.drop_parked(entries[0])
    assert store.parked_ids(connection) == []


def test_stale_lists_unfinished_operations_untouched_since_the_cutoff(store):
    accepted = store.create(new_operation(str(uuid.uuid4()), "send", "c"))
    running = store.create(new_operation(str(uuid.uuid4()), "send", "c", status=Status.RUNNING))
    done = store.create(new_operation(str(uuid.uuid4()), "send", "c", status=Status.SUCCEEDED))
    later = now_utc() + timedelta(minutes=5)
    found = {op.operation_id for op in store.stale(later)}
    assert {accepted.operation_id, running.operation_id} <= found
    assert done.operation_id not in found
    assert not {op.operation_id for op in store.stale(now_utc() - timedelta(minutes=5))} & {
        accepted.operation_id
    }


def test_purge_removes_only_finished_operations_past_the_retention(store):
    done = store.create(new_operation(str(uuid.uuid4()), "send", "c", status=Status.SUCCEEDED))
    open_ = store.create(new_operation(str(uuid.uuid4()), "send", "c"))
    assert store.purge(30) == 0 and store.get(done.operation_id) is not None
    assert store.purge(30, now=now_utc() + timedelta(days=31)) >= 1
    assert store.get(done.operation_id) is None
    assert store.get(open_.operation_id) is not None


def test_a_record_written_by_the_previous_version_reads_with_its_send_step():
    from shared.work.table_store import from_entity

    op = from_entity(
        {
            "PartitionKey": "0b6c3f5e-2f7e-4a44-9a67-9a1f1f6c2d11",
            "RowKey": "op",
            "kind": "send",
            "connection": "c",
            "status": "running",
            "attempts": 1,
            "sendIssuedAt": "2026-01-01T00:00:00.000000Z",
        }
    )
    assert (op.kind, op.status, op.attempts) == ("send", "running", 1)
    assert op.progress == {"sendIssuedAt": "2026-01-01T00:00:00.000000Z"}
