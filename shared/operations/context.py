"""What an operation needs besides its request: connection, Graph client, settings, progress."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from shared.graph.client import GraphClient
from shared.graph.folders import FolderCache
from shared.identity.connections import Connection
from shared.settings import Settings


class Progress:
    """An operation's checkpoints: what earlier attempts recorded, and how to record the next.

    A multi-step operation records a step BEFORE an effect it cannot take back (the send
    records `sendIssuedAt` before `/send`), so an attempt after a crash or a lost answer knows
    the effect may have happened and resumes instead of repeating it. Queued and `auto` runs
    persist every record on the operation (its `progress`) while holding the claim before
    `record` returns; a sync run keeps them in memory (there is no later attempt).
    """

    def __init__(
        self,
        steps: Mapping[str, Any] | None = None,
        *,
        resume: bool = False,
        persist: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._steps = dict(steps or {})
        # True when an earlier attempt may have acted: look for its traces before acting.
        self.resume = resume
        self._persist = persist

    def get(self, step: str) -> Any:
        """What was recorded for `step` (None: nothing)."""
        return self._steps.get(step)

    def record(self, step: str, value: Any) -> None:
        """Record `step` (None removes it) and persist it before returning.

        Raises StorageUnavailable when it cannot be persisted (then do not take the step), and
        shared.work.lifecycle.ClaimLost when another attempt took the operation over.
        """
        steps = {k: v for k, v in {**self._steps, step: value}.items() if v is not None}
        if self._persist is not None:
            self._persist(steps)
        self._steps = steps

    @property
    def steps(self) -> dict[str, Any]:
        return dict(self._steps)

    @property
    def durable(self) -> bool:
        """True when the operation's record keeps the progress: its work can come back later
        (queued or `auto`), unlike a sync call that answers now or never."""
        return self._persist is not None


@dataclass
class OperationContext:
    """Collaborators of one operation run (built by shared.runtime; tests build their own)."""

    operation_id: str
    connection: Connection
    graph: GraphClient
    settings: Settings
    # Attachment downloads use their own sessions: other hosts, other trust decisions. `http`
    # serves connections that allow private hosts; `guarded_http` checks every peer address.
    http: requests.Session = field(default_factory=requests.Session)
    guarded_http: Any = None
    folders: FolderCache = field(default_factory=FolderCache)
    resolve: Callable[[str, int], list[str]] | None = None
    progress: Progress = field(default_factory=Progress)
