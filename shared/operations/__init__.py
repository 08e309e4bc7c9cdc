"""The operations (send, move, draft, reply, export) as plain functions of a request and a context.

This package imports nothing: the operation modules import one another, and the first requests of
a cold instance import them from several threads at once. A package that imported its modules
would take part in every such import and make a cycle of module locks (ImportError or
_DeadlockError in one thread); tests/unit/test_import_threads.py holds it to that.
"""
