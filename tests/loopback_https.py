"""A threaded HTTPS server on a free loopback port, its certificate from the sandbox CA: the
stand-in for a DocuFlow callback endpoint or an archive in tests."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def start_https_server(ca_dir: Path, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """Serve `handler` on 127.0.0.1:<free port> over TLS until `stop_https_server`."""
    from sandbox.certs import load_or_create_ca, server_context

    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    context = server_context(load_or_create_ca(ca_dir))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop_https_server(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()
