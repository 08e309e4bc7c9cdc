"""Finding 8: an attachment server that trickles one byte every 8 s no longer holds a request for
minutes: the rate check cuts it off (the answer says so) and nothing is sent."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from tests.e2e.connections_kit import sent_items_subjects

pytestmark = pytest.mark.timeout(180)


class Trickle(http.server.BaseHTTPRequestHandler):
    """Announces 1 MB, then sends one byte every 8 s (until the client gives up)."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(1024 * 1024))
        self.end_headers()
        try:
            for _ in range(40):  # bounded: at most ~5 minutes, far past the test's end
                self.wfile.write(b"x")
                self.wfile.flush()
                if self.server.stop.wait(8):
                    return
        except OSError:
            return  # the client hung up: what the fix does

    def log_message(self, *args) -> None:
        pass


def test_finding_8_a_trickling_attachment_source_is_cut_off_and_nothing_is_sent(
    fresh_devhost, sandbox
):
    from sandbox.certs import load_or_create_ca, server_context

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.stop = threading.Event()
    server.daemon_threads = True
    server.socket = server_context(load_or_create_ca(Path(sandbox.ca).parent)).wrap_socket(
        server.socket, server_side=True
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_address[1]}/slow.pdf"
    try:
        resp = fresh_devhost.post(
            "/api/mail/send",
            json={
                "connection": "contoso.test",
                "from": "administratie@contoso.test",
                "to": ["anna@contoso.test"],
                "subject": "trickled",
                "attachments": [{"name": "slow.pdf", "url": url}],
            },
        )
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()

    assert resp.status_code == 502, resp.text
    assert resp.json()["error"]["code"] == "attachment_fetch_failed"
    assert "slower than" in resp.json()["error"]["message"]
    assert "trickled" not in sent_items_subjects(sandbox, "administratie@contoso.test")
