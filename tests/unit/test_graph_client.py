"""GraphClient behaviour that needs no server: failure classification of requests errors."""

import requests
import urllib3.exceptions as u3

from shared.graph.client import sent_before_failure
from shared.settings import Settings


def test_connect_failures_were_not_sent_so_they_are_safe_to_retry():
    refused = requests.ConnectionError(
        u3.MaxRetryError(None, "/x", u3.NewConnectionError(None, "refused"))
    )
    assert sent_before_failure(refused) is False
    assert sent_before_failure(requests.ConnectTimeout()) is False


def test_dropped_connection_or_read_timeout_after_sending_is_outcome_unknown():
    dropped = requests.ConnectionError(
        u3.ProtocolError("Connection aborted.", ConnectionResetError())
    )
    assert sent_before_failure(dropped) is True
    assert sent_before_failure(requests.ReadTimeout()) is True


def test_session_reads_the_ca_bundle_once_and_skips_per_request_environment_scans(monkeypatch):
    """GIVEN no proxy set WHEN a session is made THEN requests stops re-reading the environment."""
    from shared.sessions import environment_session

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/tmp/bundle.pem")
    session = environment_session(Settings.load().ca_bundle)
    assert session.trust_env is False
    assert session.verify == "/tmp/bundle.pem"


def test_session_keeps_per_request_proxy_rules_when_a_proxy_is_configured(monkeypatch):
    """GIVEN HTTPS_PROXY WHEN a session is made THEN requests keeps its per-request no_proxy."""
    from shared.sessions import environment_session

    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    assert environment_session().trust_env is True
