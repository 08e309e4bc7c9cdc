"""host.json settings are read with the host's defaults and validated like the host does."""

import json

import pytest

from devhost.host_config import (
    HostConfigError,
    QueueOptions,
    load_host_config,
    parse_timespan,
)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("00:00:02", 2.0), ("00:01:00", 60.0), ("00:00:00.500", 0.5), ("1.00:00:00", 86400.0)],
)
def test_timespans_become_seconds(value, seconds):
    assert parse_timespan(value, "x") == seconds


def test_a_number_is_milliseconds():
    assert parse_timespan(2000, "x") == 2.0


def test_a_malformed_timespan_names_the_setting():
    with pytest.raises(HostConfigError, match="maxPollingInterval"):
        parse_timespan("two seconds", "extensions.queues.maxPollingInterval")


def test_defaults_are_the_hosts_documented_ones():
    options = QueueOptions.from_dict({})
    assert options.batch_size == 16
    assert options.new_batch_threshold == 8
    assert options.max_polling_interval == 60.0
    assert options.visibility_timeout == 0.0
    assert options.max_dequeue_count == 5
    assert options.message_encoding == "base64"


def test_new_batch_threshold_defaults_to_half_the_batch_size():
    assert QueueOptions.from_dict({"batchSize": 4}).new_batch_threshold == 2


@pytest.mark.parametrize(
    "raw",
    [
        {"batchSize": 33},
        {"batchSize": 0},
        {"maxDequeueCount": 0},
        {"maxPollingInterval": "00:00:00.050"},
        {"messageEncoding": "utf-16"},
    ],
)
def test_values_the_host_rejects_are_rejected(raw):
    with pytest.raises(HostConfigError):
        QueueOptions.from_dict(raw)


def test_missing_host_json_gives_defaults(tmp_path):
    config = load_host_config(tmp_path)
    assert config.route_prefix == "api"
    assert config.queues == QueueOptions()


def test_host_json_queues_and_route_prefix_are_read(tmp_path):
    (tmp_path / "host.json").write_text(
        json.dumps(
            {
                "version": "2.0",
                "extensions": {
                    "http": {"routePrefix": "/v2/"},
                    "queues": {"batchSize": 8, "visibilityTimeout": "00:00:30"},
                },
            }
        )
    )
    config = load_host_config(tmp_path)
    assert config.route_prefix == "v2"
    assert config.queues.batch_size == 8
    assert config.queues.visibility_timeout == 30.0


def test_unreadable_host_json_is_a_clear_error(tmp_path):
    (tmp_path / "host.json").write_text("{not json")
    with pytest.raises(HostConfigError, match=r"host\.json"):
        load_host_config(tmp_path)
