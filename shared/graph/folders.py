"""Mail folder destinations: parse `archive` or `Inbox/Verwerkt/2026` and resolve them to ids.

Raises `FolderNotFound` when a path segment is missing and creation was not asked for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from shared.errors import AppError, FolderNotFound

if TYPE_CHECKING:
    from shared.graph.client import GraphClient

# Graph's well-known folder names (case-insensitive), usable as the first path segment.
WELL_KNOWN = frozenset(
    {
        "archive",
        "clutter",
        "conflicts",
        "conversationhistory",
        "deleteditems",
        "drafts",
        "inbox",
        "junkemail",
        "localfailures",
        "msgfolderroot",
        "outbox",
        "recoverableitemsdeletions",
        "scheduled",
        "searchfolders",
        "sentitems",
        "serverfailures",
        "syncissues",
    }
)


@dataclass(frozen=True)
class Destination:
    """A parsed destination: a start folder (well-known name) and display names below it."""

    root: str
    names: tuple[str, ...]

    @property
    def key(self) -> str:
        return "/".join((self.root, *(n.casefold() for n in self.names)))


def parse_destination(text: str) -> Destination:
    """`archive` → (archive, ()); `Inbox/Verwerkt/2026` → (inbox, (Verwerkt, 2026)).

    A first segment that is not a well-known name is a folder under the mailbox root
    (`Projects/2026` → (msgfolderroot, (Projects, 2026))). Raises ValueError on empty segments,
    `.` or `..` segments, or control characters.
    """
    if any(ord(c) < 32 for c in text):
        raise ValueError("must not contain control characters")
    segments = [s.strip() for s in text.strip().strip("/").split("/")]
    if not segments or any(not s for s in segments):
        raise ValueError("is not a folder path: empty segment")
    if any(len(s) > 255 for s in segments):
        raise ValueError("a folder name is longer than 255 characters")
    if any(s in (".", "..") for s in segments):
        # Folders are found by display name, so `..` could only ever mean "go up" to a reader:
        # refused rather than taken as a folder literally named "..".
        raise ValueError("'.' and '..' are not folder names (a path cannot go up)")
    first = segments[0].casefold().replace(" ", "")
    if first in WELL_KNOWN:
        return Destination(first, tuple(segments[1:]))
    return Destination("msgfolderroot", tuple(segments))


class FolderCache:
    """Resolved folder ids per (connection, mailbox, path) with a TTL; thread-safe."""

    def __init__(self, ttl: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._items: dict[tuple[str, str, str], tuple[float, str]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> str | None:
        with self._lock:
            item = self._items.get(key)
            if item is None or self.clock() - item[0] > self.ttl:
                self._items.pop(key, None)
                return None
            return item[1]

    def put(self, key: tuple[str, str, str], folder_id: str) -> None:
        with self._lock:
            self._items[key] = (self.clock(), folder_id)

    def forget(self, key: tuple[str, str, str]) -> None:
        with self._lock:
            self._items.pop(key, None)


def _find_child(graph: GraphClient, mailbox: str, parent: str, name: str) -> str | None:
    path = f"{_mailbox_path(mailbox)}/mailFolders/{quote(parent, safe='')}/childFolders"
    wanted = name.casefold()
    for folder in graph.pages(path, params={"$top": "100"}, not_found=FolderNotFound):
        if str(folder.get("displayName", "")).casefold() == wanted:
            return folder["id"]
    return None


def resolve(
    graph: GraphClient,
    mailbox: str,
    destination: Destination,
    *,
    create_missing: bool,
    cache: FolderCache,
    connection: str,
) -> str:
    """The folder id (or well-known name) for `destination`, creating folders if asked."""
    if not destination.names:
        return destination.root  # Graph accepts well-known names as destinationId
    key = (connection, mailbox.casefold(), destination.key)
    cached = cache.get(key)
    if cached:
        return cached
    parent = destination.root
    walked: list[str] = [destination.root]
    for name in destination.names:
        walked.append(name)
        found = _find_child(graph, mailbox, parent, name)
        if found is None:
            if not create_missing:
                raise FolderNotFound(
                    f"Folder '{'/'.join(walked[1:])}' does not exist under {destination.root}; "
                    "set createMissingFolders to create it."
                )
            found = _create_child(graph, mailbox, parent, name)
        parent = found
    cache.put(key, parent)
    return parent


def _create_child(graph: GraphClient, mailbox: str, parent: str, name: str) -> str:
    path = f"{_mailbox_path(mailbox)}/mailFolders/{quote(parent, safe='')}/childFolders"
    try:
        created = graph.post(path, json={"displayName": name}, not_found=FolderNotFound)
    except AppError as exc:
        # Another request created it between our look-up and our create: use theirs.
        if exc.graph and exc.graph.code == "ErrorFolderExists":
            found = _find_child(graph, mailbox, parent, name)
            if found:
                return found
        raise
    return created["id"]


def _mailbox_path(mailbox: str) -> str:
    # Imported here: validation imports this module at cold start, and shared.graph.client
    # loads requests.
    from shared.graph.client import mailbox_path

    return mailbox_path(mailbox)
