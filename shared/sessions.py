"""requests sessions as the app makes them: environment read once, pooled for Graph.

shared.runtime builds the process's sessions from these (Graph, attachment downloads,
callbacks); shared.urlsafety adds the peer check on top.
"""

from __future__ import annotations

import urllib.request

import requests
from requests.adapters import HTTPAdapter


def environment_session(ca_bundle: str = "") -> requests.Session:
    """A requests session that does not re-read proxy and CA settings on every request.

    With `trust_env` on, requests scans the whole environment for proxies and .netrc on every
    request: a third of the client CPU of a small Graph call (docs/performance.md). With no
    proxy configured we use `ca_bundle` (Settings.ca_bundle: REQUESTS_CA_BUNDLE, read once) and
    switch that off; with a proxy we keep requests' per-request `no_proxy` handling. Off also
    means a stray .netrc can never replace our bearer token.
    """
    session = requests.Session()
    if not urllib.request.getproxies():
        session.trust_env = False
        if ca_bundle:
            session.verify = ca_bundle
    return session


def pooled_session(ca_bundle: str = "") -> requests.Session:
    """A session with a connection pool sized for Graph (keep-alive TLS saves a handshake per
    call); shared.runtime builds the process's one."""
    session = environment_session(ca_bundle)
    adapter = HTTPAdapter(pool_connections=8, pool_maxsize=32, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
