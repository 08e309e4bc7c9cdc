"""What an operation needs besides its request: the connection, a Graph client, settings."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field

import requests

from shared.graph.client import GraphClient
from shared.graph.folders import FolderCache
from shared.identity.connections import Connection
from shared.settings import Settings


@dataclass
class OperationContext:
    """Collaborators of one operation run (built by shared.runtime; tests build their own)."""

    operation_id: str
    connection: Connection
    graph: GraphClient
    settings: Settings
    # Attachment downloads use their own session: other hosts, other trust decisions.
    http: requests.Session = field(default_factory=requests.Session)
    folders: FolderCache = field(default_factory=FolderCache)
    resolve: Callable[[str, int], list[str]] | None = None


@dataclass
class SendJournal:
    """The operation record's memory of a `/send`: set before it is issued, read on resume.

    The background path (and `mode: auto`) installs one with `current_journal`; a sync send has
    none. `record` persists the time and raises (StorageUnavailable) when it cannot, so a
    send is never issued without a trace of it.
    """

    issued_at: str | None = None
    record: Callable[[str | None], None] | None = None

    def mark_issued(self, when: str | None) -> None:
        """Record `when` (None: the send definitely failed, nothing is on its way)."""
        if self.record is not None:
            self.record(when)
        self.issued_at = when


current_journal: ContextVar[SendJournal | None] = ContextVar("send_journal", default=None)
