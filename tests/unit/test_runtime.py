"""The one wiring place: each part is built once per Runtime, given parts replace built ones,
and use_runtime installs a Runtime for the block only."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from shared.runtime import Runtime, get_runtime, use_runtime
from shared.settings import Settings
from tests.fakes import MemoryQueues, MemoryStore


def test_parallel_first_uses_build_one_part():
    runtime = Runtime(Settings.load(env={}))
    with ThreadPoolExecutor(8) as pool:
        folders = list(pool.map(lambda _: runtime.folders, range(32)))
    assert len({id(f) for f in folders}) == 1


def test_given_store_and_queues_are_what_the_lifecycle_uses():
    store, queues = MemoryStore(), MemoryQueues()
    runtime = Runtime(Settings.load(env={}), store=store, queues=queues)
    assert runtime.lifecycle.store is store and runtime.lifecycle.queues is queues
    assert runtime.processor.lifecycle is runtime.lifecycle


def test_use_runtime_installs_it_for_the_block_only():
    before = get_runtime()
    mine = Runtime(Settings.load(env={}))
    with use_runtime(mine):
        assert get_runtime() is mine
    assert get_runtime() is before
