"""Queued work: the operation store, idempotency, queues, the processor, parking, callbacks."""
