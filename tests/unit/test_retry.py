"""Retry-After parsing and the bounded retry budget."""

import email.utils

from shared.graph.retry import MAX_ATTEMPTS, backoff, next_delay, parse_retry_after


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    date = email.utils.formatdate(1_000_010, usegmt=True)
    assert parse_retry_after(date, now=1_000_000) == 10.0


def test_retry_after_in_the_past_means_now():
    assert parse_retry_after("-5") == 0.0


def test_server_retry_after_is_honoured_within_budget():
    assert next_delay(0, 2.0, elapsed=0.0, budget=20) == 2.0


def test_no_retry_when_the_wait_would_end_past_the_budget():
    assert next_delay(0, 5.0, elapsed=16.0, budget=20) is None


def test_backoff_grows_and_is_capped():
    assert backoff(0) < backoff(1) < backoff(2)
    assert backoff(30) == backoff(31)


def test_attempts_are_bounded_even_with_a_huge_budget():
    assert next_delay(MAX_ATTEMPTS - 1, 0.0, elapsed=0, budget=1e9) is None
