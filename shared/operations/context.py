"""What an operation needs besides its request: the connection, a Graph client, settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import requests

from shared.connections import Connection
from shared.folders import FolderCache
from shared.graph import GraphClient
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
