"""A loopback HTTPS server that takes .eml uploads (PUT) the way an archive would, for tests.

Bodies go to files (a 100 MB upload costs the test no memory); each PUT is recorded with its
path, headers, size and SHA-256. `redirect_to` makes it answer 307 instead, `status` any other
answer, to test that the product refuses them.
"""

from __future__ import annotations

import hashlib
import http.server
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.loopback_https import start_https_server, stop_https_server


@dataclass
class Upload:
    path: str
    headers: dict[str, str]
    size: int
    sha256: str
    file: Path

    def read(self) -> bytes:
        return self.file.read_bytes()


@dataclass
class ArchiveServer:
    """`with ArchiveServer(ca_dir) as archive: archive.url("/case/42.eml")`."""

    ca_dir: Path
    uploads: list[Upload] = field(default_factory=list)
    status: int = 201
    redirect_to: str | None = None
    server: http.server.ThreadingHTTPServer | None = None
    _dir: tempfile.TemporaryDirectory | None = None

    def url(self, path: str, query: str = "sv=2024&sig=secret-signature") -> str:
        assert self.server is not None
        port = self.server.server_address[1]
        return f"https://127.0.0.1:{port}{path}" + (f"?{query}" if query else "")

    def __enter__(self) -> ArchiveServer:
        owner = self
        self._dir = tempfile.TemporaryDirectory(prefix="archive-")
        folder = Path(self._dir.name)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                target = folder / f"upload-{len(owner.uploads)}"
                sha = hashlib.sha256()
                with target.open("wb") as fh:
                    left = length
                    while left:
                        piece = self.rfile.read(min(left, 1024 * 1024))
                        if not piece:
                            break
                        sha.update(piece)
                        fh.write(piece)
                        left -= len(piece)
                if owner.redirect_to:
                    self.send_response(307)
                    self.send_header("Location", owner.redirect_to)
                else:
                    owner.uploads.append(
                        Upload(
                            self.path,
                            dict(self.headers.items()),
                            length - left,
                            sha.hexdigest(),
                            target,
                        )
                    )
                    self.send_response(owner.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = start_https_server(self.ca_dir, Handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self.server is not None
        stop_https_server(self.server)
        if self._dir is not None:
            self._dir.cleanup()
