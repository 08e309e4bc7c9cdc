"""GraphClient behaviour that needs no server: failure classification of requests errors."""

import requests
import urllib3.exceptions as u3

from shared.graph import sent_before_failure


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
