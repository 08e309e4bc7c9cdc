"""Mailboxes' folders, messages, attachments, upload sessions and the outbound log in SQLite."""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sandbox.db import Database
from sandbox.graph import ids
from sandbox.graph.errors import GraphError

# (wellKnownName, displayName); msgfolderroot is the hidden parent of the others.
WELL_KNOWN = (
    ("inbox", "Inbox"),
    ("drafts", "Drafts"),
    ("sentitems", "Sent Items"),
    ("deleteditems", "Deleted Items"),
    ("archive", "Archive"),
    ("outbox", "Outbox"),
    ("junkemail", "Junk Email"),
    ("conversationhistory", "Conversation History"),
)
ROOT = "msgfolderroot"
# Names Graph accepts in place of a folder id (lower-case; compared case-insensitively).
WELL_KNOWN_NAMES = frozenset({ROOT, *(name for name, _ in WELL_KNOWN)})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS g_folders (
    id TEXT PRIMARY KEY, mailbox TEXT NOT NULL, parent_id TEXT, name TEXT NOT NULL,
    well_known TEXT, created TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS g_folders_parent ON g_folders (mailbox, parent_id);
CREATE TABLE IF NOT EXISTS g_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL,
    immutable_id TEXT UNIQUE NOT NULL, mailbox TEXT NOT NULL, folder_id TEXT NOT NULL,
    internet_message_id TEXT, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS g_messages_folder ON g_messages (mailbox, folder_id);
CREATE INDEX IF NOT EXISTS g_messages_imid ON g_messages (mailbox, internet_message_id);
CREATE TABLE IF NOT EXISTS g_blobs (sha TEXT PRIMARY KEY, content BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS g_attachments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, message TEXT NOT NULL,
    name TEXT NOT NULL, content_type TEXT NOT NULL, size INTEGER NOT NULL,
    is_inline INTEGER NOT NULL, content_id TEXT, modified TEXT NOT NULL, blob TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'file');
CREATE INDEX IF NOT EXISTS g_attachments_message ON g_attachments (message);
CREATE TABLE IF NOT EXISTS g_uploads (
    id TEXT PRIMARY KEY, secret TEXT NOT NULL, mailbox TEXT NOT NULL, message TEXT NOT NULL,
    name TEXT NOT NULL, content_type TEXT NOT NULL, size INTEGER NOT NULL,
    is_inline INTEGER NOT NULL, content_id TEXT, received INTEGER NOT NULL, expires TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS g_transit (
    outbox_id TEXT PRIMARY KEY, mailbox TEXT NOT NULL, tenant TEXT NOT NULL,
    final_id TEXT NOT NULL, save INTEGER NOT NULL, due REAL NOT NULL, also TEXT);
CREATE TABLE IF NOT EXISTS g_outbound (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, tenant TEXT NOT NULL,
    mailbox TEXT NOT NULL, sender TEXT, from_address TEXT, recipients TEXT NOT NULL,
    subject TEXT, internet_message_id TEXT, message TEXT NOT NULL);
"""
_TABLES = (
    "g_folders",
    "g_messages",
    "g_blobs",
    "g_attachments",
    "g_uploads",
    "g_transit",
    "g_outbound",
)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    """All mail state of the sandbox; ids are opaque and a message's REST id changes on a move."""

    def __init__(self, db: Database, state_dir: Path) -> None:
        self.db = db
        self.upload_dir = Path(state_dir) / "graph-uploads"
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        self.db.script(_SCHEMA)
        columns = {r["name"] for r in self.db.query("PRAGMA table_info(g_uploads)")}
        if "owner" not in columns:  # a state dir from before upload sessions had an owner
            self.db.execute("ALTER TABLE g_uploads ADD COLUMN owner TEXT NOT NULL DEFAULT ''")
        columns = {r["name"] for r in self.db.query("PRAGMA table_info(g_transit)")}
        if "also" not in columns:  # a state dir from before delegators' Sent Items copies
            self.db.execute("ALTER TABLE g_transit ADD COLUMN also TEXT")
        columns = {r["name"] for r in self.db.query("PRAGMA table_info(g_attachments)")}
        if "kind" not in columns:  # a state dir from before item attachments
            self.db.execute(
                "ALTER TABLE g_attachments ADD COLUMN kind TEXT NOT NULL DEFAULT 'file'"
            )
        self._ready: set[str] = set()
        self._ready_lock = threading.Lock()

    def reset(self) -> None:
        """Back to the seed: every mailbox empty (its well-known folders come back on first use)."""
        with self.db.transaction() as conn:
            for table in _TABLES:
                conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
        with self._ready_lock:
            self._ready.clear()
        shutil.rmtree(self.upload_dir, ignore_errors=True)
        self.upload_dir.mkdir(parents=True, exist_ok=True)

    # -- folders -----------------------------------------------------------------------------

    def ensure_mailbox(self, mailbox: str) -> None:
        """Create the well-known folders of `mailbox` (a directory mailbox id) if missing."""
        if mailbox in self._ready:
            return
        with self._ready_lock, self.db.transaction() as conn:
            if not conn.execute(
                "SELECT 1 FROM g_folders WHERE mailbox=? AND well_known=?", (mailbox, ROOT)
            ).fetchone():
                root = ids.new_rest_id("folder", mailbox)
                created = now_iso()
                conn.execute(
                    "INSERT INTO g_folders VALUES (?,?,?,?,?,?)",
                    (root, mailbox, None, "Top of Information Store", ROOT, created),
                )
                for well_known, name in WELL_KNOWN:
                    conn.execute(
                        "INSERT INTO g_folders VALUES (?,?,?,?,?,?)",
                        (
                            ids.new_rest_id("folder", mailbox),
                            mailbox,
                            root,
                            name,
                            well_known,
                            created,
                        ),
                    )
            self._ready.add(mailbox)

    def folder(self, mailbox: str, ref: str) -> sqlite3.Row | None:
        """A folder by id or well-known name (case-insensitive), or None."""
        self.ensure_mailbox(mailbox)
        return self.db.one(
            "SELECT * FROM g_folders WHERE mailbox=? AND (id=? OR well_known=?)",
            (mailbox, ref, ref.lower()),
        )

    def folder_by_id(self, folder_id: str) -> sqlite3.Row | None:
        return self.db.one("SELECT * FROM g_folders WHERE id=?", (folder_id,))

    def child_folders(self, mailbox: str, parent_id: str) -> list[sqlite3.Row]:
        self.ensure_mailbox(mailbox)
        return self.db.query(
            "SELECT * FROM g_folders WHERE mailbox=? AND parent_id=? ORDER BY rowid",
            (mailbox, parent_id),
        )

    def create_folder(self, mailbox: str, parent_id: str, name: str) -> sqlite3.Row:
        """A new child folder; raises GraphError 409 ErrorFolderExists on a duplicate name."""
        self.ensure_mailbox(mailbox)
        with self.db.transaction() as conn:
            clash = conn.execute(
                "SELECT 1 FROM g_folders WHERE mailbox=? AND parent_id=? AND lower(name)=lower(?)",
                (mailbox, parent_id, name),
            ).fetchone()
            if clash:
                raise GraphError(
                    409, "ErrorFolderExists", "A folder with the specified name already exists."
                )
            folder_id = ids.new_rest_id("folder", mailbox)
            conn.execute(
                "INSERT INTO g_folders VALUES (?,?,?,?,?,?)",
                (folder_id, mailbox, parent_id, name, None, now_iso()),
            )
        return self.folder_by_id(folder_id)  # type: ignore[return-value]

    def folder_counts(self, folder_id: str) -> tuple[int, int, int]:
        """(childFolderCount, totalItemCount, unreadItemCount)."""
        children = self.db.one("SELECT count(*) FROM g_folders WHERE parent_id=?", (folder_id,))
        rows = self.db.query("SELECT data FROM g_messages WHERE folder_id=?", (folder_id,))
        unread = sum(1 for r in rows if not json.loads(r["data"]).get("isRead"))
        return children[0], len(rows), unread

    def folders(self, mailbox: str) -> list[sqlite3.Row]:
        self.ensure_mailbox(mailbox)
        return self.db.query("SELECT * FROM g_folders WHERE mailbox=? ORDER BY rowid", (mailbox,))

    # -- messages ----------------------------------------------------------------------------

    def create_message(self, mailbox: str, folder_id: str, data: dict[str, Any]) -> sqlite3.Row:
        rest_id = ids.new_rest_id("message", mailbox)
        immutable_id = ids.new_immutable_id()
        with self.db.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO g_messages (id, immutable_id, mailbox, folder_id, "
                "internet_message_id, data) VALUES (?,?,?,?,?,?)",
                (
                    rest_id,
                    immutable_id,
                    mailbox,
                    folder_id,
                    data.get("internetMessageId"),
                    json.dumps(data),
                ),
            )
            seq = cur.lastrowid
        return self.db.one("SELECT * FROM g_messages WHERE seq=?", (seq,))  # type: ignore[return-value]

    def message(self, mailbox: str, ref: str) -> sqlite3.Row | None:
        """A message by its current REST id or its immutable id, or None."""
        return self.db.one(
            "SELECT * FROM g_messages WHERE mailbox=? AND (id=? OR immutable_id=?)",
            (mailbox, ref, ref),
        )

    def message_anywhere(self, ref: str) -> sqlite3.Row | None:
        return self.db.one("SELECT * FROM g_messages WHERE id=? OR immutable_id=?", (ref, ref))

    def messages(
        self, mailbox: str, folder_id: str | None = None, internet_message_id: str | None = None
    ) -> list[sqlite3.Row]:
        sql, args = "SELECT * FROM g_messages WHERE mailbox=?", [mailbox]
        if folder_id:
            sql += " AND folder_id=?"
            args.append(folder_id)
        if internet_message_id:
            sql += " AND internet_message_id=?"
            args.append(internet_message_id)
        return self.db.query(sql + " ORDER BY seq DESC", args)

    def update_message(self, row: sqlite3.Row, data: dict[str, Any]) -> sqlite3.Row:
        self.db.execute(
            "UPDATE g_messages SET data=?, internet_message_id=? WHERE seq=?",
            (json.dumps(data), data.get("internetMessageId"), row["seq"]),
        )
        return self.db.one("SELECT * FROM g_messages WHERE seq=?", (row["seq"],))  # type: ignore[return-value]

    def move_message(
        self, row: sqlite3.Row, folder_id: str, data: dict[str, Any] | None = None
    ) -> sqlite3.Row:
        """Move to `folder_id`: the REST id changes (as in Exchange), the immutable id stays."""
        new = ids.new_rest_id("message", row["mailbox"])
        self.db.execute(
            "UPDATE g_messages SET id=?, folder_id=?, data=?, internet_message_id=? WHERE seq=?",
            (
                new,
                folder_id,
                json.dumps(data) if data is not None else row["data"],
                (data or {}).get("internetMessageId", row["internet_message_id"]),
                row["seq"],
            ),
        )
        return self.db.one("SELECT * FROM g_messages WHERE seq=?", (row["seq"],))  # type: ignore[return-value]

    def rekey_message(self, row: sqlite3.Row, immutable_id: str) -> sqlite3.Row:
        """Give the message another immutable id (its attachments follow)."""
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE g_attachments SET message=? WHERE message=?",
                (immutable_id, row["immutable_id"]),
            )
            conn.execute(
                "UPDATE g_messages SET immutable_id=? WHERE seq=?", (immutable_id, row["seq"])
            )
        return self.db.one("SELECT * FROM g_messages WHERE seq=?", (row["seq"],))  # type: ignore[return-value]

    def delete_message(self, row: sqlite3.Row) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM g_attachments WHERE message=?", (row["immutable_id"],))
            conn.execute("DELETE FROM g_messages WHERE seq=?", (row["seq"],))

    # -- attachments -------------------------------------------------------------------------

    def add_attachment(
        self,
        message: str,
        name: str,
        content_type: str,
        content: bytes,
        is_inline: bool = False,
        content_id: str | None = None,
        kind: str = "file",
    ) -> sqlite3.Row:
        """Attach `content` to the message with immutable id `message`; an `item` attachment's
        content is its message's Graph fields as JSON."""
        sha = hashlib.sha256(content).hexdigest()
        att_id = ids.new_rest_id("attachment", message)
        with self.db.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO g_blobs VALUES (?,?)", (sha, content))
            conn.execute(
                "INSERT INTO g_attachments (id, message, name, content_type, size, is_inline, "
                "content_id, modified, blob, kind) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    att_id,
                    message,
                    name,
                    content_type,
                    len(content),
                    int(is_inline),
                    content_id,
                    now_iso(),
                    sha,
                    kind,
                ),
            )
        return self.attachment(message, att_id)  # type: ignore[return-value]

    def attachments(self, message: str) -> list[sqlite3.Row]:
        return self.db.query("SELECT * FROM g_attachments WHERE message=? ORDER BY seq", (message,))

    def attachment(self, message: str, att_id: str) -> sqlite3.Row | None:
        return self.db.one(
            "SELECT * FROM g_attachments WHERE message=? AND id=?", (message, att_id)
        )

    def attachment_by_id(self, att_id: str) -> sqlite3.Row | None:
        return self.db.one("SELECT * FROM g_attachments WHERE id=?", (att_id,))

    def content(self, attachment: sqlite3.Row) -> bytes:
        row = self.db.one("SELECT content FROM g_blobs WHERE sha=?", (attachment["blob"],))
        return bytes(row["content"]) if row else b""

    def blob_chunks(self, attachment: sqlite3.Row, size: int) -> Iterator[bytes]:
        """An attachment's bytes in chunks of `size`, read incrementally (never all at once)."""
        found = self.db.one("SELECT rowid FROM g_blobs WHERE sha=?", (attachment["blob"],))
        if found is None:
            return
        offset = 0
        while True:
            # Opened per chunk: a handle must not outlive the lock other threads share.
            with (
                self.db.lock,
                self.db.conn.blobopen("g_blobs", "content", found[0], readonly=True) as blob,
            ):
                blob.seek(offset)
                piece = blob.read(size)
            if not piece:
                return
            offset += len(piece)
            yield piece

    def copy_attachments(self, source: str, target: str) -> None:
        """Give message `target` copies of `source`'s attachments (new ids, shared bytes)."""
        for att in self.attachments(source):
            self.db.execute(
                "INSERT INTO g_attachments (id, message, name, content_type, size, is_inline, "
                "content_id, modified, blob, kind) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    ids.new_rest_id("attachment", target),
                    target,
                    att["name"],
                    att["content_type"],
                    att["size"],
                    att["is_inline"],
                    att["content_id"],
                    att["modified"],
                    att["blob"],
                    att["kind"],
                ),
            )

    def delete_attachment(self, att: sqlite3.Row) -> None:
        self.db.execute("DELETE FROM g_attachments WHERE seq=?", (att["seq"],))

    # -- upload sessions ---------------------------------------------------------------------

    def create_upload(
        self,
        mailbox: str,
        message: str,
        name: str,
        content_type: str,
        size: int,
        is_inline: bool,
        content_id: str | None,
        owner: str = "",
        lifetime: timedelta = timedelta(hours=1),
    ) -> sqlite3.Row:
        """A new session; `owner` names who created it (the upload throttle's key)."""
        upload_id = secrets.token_urlsafe(24)
        expires = (datetime.now(UTC) + lifetime).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
        self.db.execute(
            "INSERT INTO g_uploads VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                upload_id,
                secrets.token_urlsafe(32),
                mailbox,
                message,
                name,
                content_type,
                size,
                int(is_inline),
                content_id,
                0,
                expires,
                owner,
            ),
        )
        (self.upload_dir / upload_id).write_bytes(b"")
        return self.upload(upload_id)  # type: ignore[return-value]

    def upload(self, upload_id: str) -> sqlite3.Row | None:
        return self.db.one("SELECT * FROM g_uploads WHERE id=?", (upload_id,))

    def append_upload(self, session: sqlite3.Row, chunk: bytes) -> int:
        """Append the next chunk; returns the bytes received so far."""
        with (self.upload_dir / session["id"]).open("ab") as fh:
            fh.write(chunk)
        received = session["received"] + len(chunk)
        self.db.execute("UPDATE g_uploads SET received=? WHERE id=?", (received, session["id"]))
        return received

    def finish_upload(self, session: sqlite3.Row) -> sqlite3.Row:
        """Turn a complete upload into an attachment and forget the session."""
        path = self.upload_dir / session["id"]
        att = self.add_attachment(
            session["message"],
            session["name"],
            session["content_type"],
            path.read_bytes(),
            bool(session["is_inline"]),
            session["content_id"],
        )
        self.delete_upload(session["id"])
        return att

    def delete_upload(self, upload_id: str) -> None:
        self.db.execute("DELETE FROM g_uploads WHERE id=?", (upload_id,))
        (self.upload_dir / upload_id).unlink(missing_ok=True)

    # -- mail in transit (the Outbox's schedule, kept across restarts) -----------------------

    def add_transit(
        self,
        outbox_id: str,
        mailbox: str,
        tenant: str,
        final_id: str,
        save: bool,
        due: float,
        also: str | None = None,
    ) -> None:
        """Remember that the Outbox message `outbox_id` leaves at `due` (epoch seconds), with
        a further Sent Items copy for mailbox id `also`."""
        self.db.execute(
            "INSERT OR REPLACE INTO g_transit (outbox_id, mailbox, tenant, final_id, save, due, "
            "also) VALUES (?,?,?,?,?,?,?)",
            (outbox_id, mailbox, tenant, final_id, int(save), due, also),
        )

    def transit(self) -> list[sqlite3.Row]:
        return self.db.query("SELECT * FROM g_transit ORDER BY due")

    def claim_transit(self, outbox_id: str) -> sqlite3.Row | None:
        """Take the schedule entry of `outbox_id` (once: a second claim gets None)."""
        with self.db.transaction() as conn:
            row = conn.execute("SELECT * FROM g_transit WHERE outbox_id=?", (outbox_id,)).fetchone()
            if row is not None:
                conn.execute("DELETE FROM g_transit WHERE outbox_id=?", (outbox_id,))
        return row

    # -- outbound log ------------------------------------------------------------------------

    def log_outbound(
        self, tenant: str, mailbox: str, message: dict[str, Any], recipients: list[str]
    ) -> None:
        """Record a message leaving the sandbox for addresses no sandbox mailbox owns."""
        self.db.execute(
            "INSERT INTO g_outbound (time, tenant, mailbox, sender, from_address, recipients, "
            "subject, internet_message_id, message) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                now_iso(),
                tenant,
                mailbox,
                ((message.get("sender") or {}).get("emailAddress") or {}).get("address"),
                ((message.get("from") or {}).get("emailAddress") or {}).get("address"),
                json.dumps(recipients),
                message.get("subject"),
                message.get("internetMessageId"),
                json.dumps(message),
            ),
        )

    def outbound(self, limit: int = 200) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT * FROM g_outbound ORDER BY seq DESC LIMIT ?", (limit,))
        return [
            {
                "time": r["time"],
                "tenant": r["tenant"],
                "mailbox": r["mailbox"],
                "from": r["from_address"],
                "sender": r["sender"],
                "recipients": json.loads(r["recipients"]),
                "subject": r["subject"],
                "internetMessageId": r["internet_message_id"],
            }
            for r in rows
        ]
