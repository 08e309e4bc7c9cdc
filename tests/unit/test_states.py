"""What the lifecycle does after a failed attempt (pure classification, no I/O), the queue
envelope and the mailbox limiter's URL parsing."""

import pytest

from shared.errors import (
    AttachmentFetchFailed,
    AuthFailed,
    GraphError,
    GraphInfo,
    GraphOutcomeUnknown,
    GraphUnavailable,
    MailboxNotFound,
    MessageNotFound,
    ReauthRequired,
    SecretsUnavailable,
    SendAsDenied,
    SenderNotAllowed,
    StorageUnavailable,
    Throttled,
    ValidationFailed,
)
from shared.graph.limiter import mailbox_of
from shared.work.queueing import MAX_ENVELOPE_BYTES, decode_envelope, encode_envelope
from shared.work.states import Action, classify, error_info


@pytest.mark.parametrize(
    "exc",
    [
        ValidationFailed("bad"),
        SenderNotAllowed("no"),
        SendAsDenied("no"),
        MailboxNotFound("gone"),
        MessageNotFound("gone"),
        AuthFailed("misconfigured"),
    ],
    ids=lambda e: e.code,
)
def test_permanent_errors_fail_at_once(exc):
    assert classify(exc).action == Action.FAIL


def test_throttling_is_rescheduled_no_earlier_than_retry_after():
    decision = classify(Throttled("slow down", retry_after=7.2))
    assert decision.action == Action.RESCHEDULE and decision.delay >= 7.2


@pytest.mark.parametrize(
    "exc",
    [
        GraphUnavailable("down", retry_after=3),
        SecretsUnavailable("vault down"),
        StorageUnavailable("table down"),
        GraphOutcomeUnknown("no answer"),
    ],
    ids=lambda e: e.code,
)
def test_outages_and_unknown_outcomes_are_rescheduled_not_failed(exc):
    decision = classify(exc, attempts=2)
    assert decision.action == Action.RESCHEDULE and decision.delay >= 1


def test_reauth_required_parks_the_operation():
    assert (
        classify(ReauthRequired("sign in", sign_in_url="/api/auth/x/login")).action == Action.PARK
    )


@pytest.mark.parametrize(
    "exc", [GraphError("500"), AttachmentFetchFailed("down"), RuntimeError("bug")], ids=str
)
def test_other_failures_go_back_to_the_host_to_count_towards_the_poison_queue(exc):
    assert classify(exc).action == Action.RETRY


def test_the_recorded_error_keeps_graphs_request_id_and_hides_unexpected_exceptions():
    info = error_info(GraphError("boom", graph=GraphInfo(500, "ErrorInternal", "rid-1")))
    assert info["code"] == "graph_error" and info["graph"]["requestId"] == "rid-1"
    hidden = error_info(RuntimeError("password=hunter2"))
    assert hidden["code"] == "internal_error" and "hunter2" not in str(hidden)


def test_the_envelope_round_trips_and_too_large_requests_are_refused():
    data = encode_envelope("op-1", {"connection": "c", "subject": "é"})
    envelope = decode_envelope(data)
    assert (envelope.v, envelope.operationId, envelope.request["subject"]) == (1, "op-1", "é")
    with pytest.raises(Exception) as exc:
        encode_envelope("op-2", {"blob": "x" * MAX_ENVELOPE_BYTES})
    assert getattr(exc.value, "code", None) == "payload_too_large"


def test_the_limiter_finds_the_mailbox_in_graph_urls_only():
    assert mailbox_of("https://g/v1.0/users/Anna%40Contoso.test/messages") == "anna@contoso.test"
    assert mailbox_of("https://g/upload/attachmentSessions/1?authtoken=x") is None
