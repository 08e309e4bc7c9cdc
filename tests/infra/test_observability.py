"""What an operator sees in Azure: the alert queries match the log lines the app really writes,
host.json lets those lines through, and Flex Consumption scales with an explicit concurrency."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from shared.errors import AppError, SenderNotAllowed, ValidationFailed
from shared.oplog import OperationRecord, format_line, operation_log
from tests.conftest import fresh_function_app

REPO = Path(__file__).resolve().parents[2]
HOST_JSON = json.loads((REPO / "host.json").read_text())
# Outcomes that end an operation badly for good (queued work) or reveal a bug (any mode).
ALERTING_OUTCOMES = {"failed", "poisoned", "internal_error"}


def alert_rules(bicep: dict) -> dict[str, dict]:
    tree = bicep["app/alerts.bicep"]["resources"]
    return {
        symbol: r["config"]["properties"]
        for symbol, r in tree.items()
        if r["type"] == "Microsoft.Insights/scheduledQueryRules"
    }


@pytest.fixture(scope="module")
def failed_query(bicep: dict) -> str:
    return alert_rules(bicep)["failedOperationsAlert"]["criteria"]["allOf"][0]["query"]


class KqlFilter:
    """The parts of the failed-operations KQL that decide which trace messages count.

    A deliberately small reading of this one query's shape (contains, parse_json from the first
    "{", tostring(line.<field>), `outcome in (...)`), so the test can run it on real log lines.
    """

    def __init__(self, query: str) -> None:
        contains = re.search(r"Message contains '([^']+)'", query)
        assert contains, f"the query should pre-filter messages with `contains`: {query}"
        self.marker = contains.group(1)
        assert 'parse_json(substring(Message, indexof(Message, "{")))' in query, query
        self.fields = dict(re.findall(r"(\w+) = tostring\(line\.(\w+)\)", query))
        outcomes = re.search(r"where outcome in \(([^)]*)\)", query)
        assert outcomes, query
        self.outcomes = set(re.findall(r'"([^"]+)"', outcomes.group(1)))
        statuses = re.search(r"or status in \(([^)]*)\)", query)
        assert statuses, query
        self.statuses = set(re.findall(r'"([^"]+)"', statuses.group(1)))

    def row(self, message: str) -> dict[str, str] | None:
        """The projected row for one trace message, or None when the query drops it."""
        if self.marker.lower() not in message.lower():  # KQL contains: case-insensitive
            return None
        line = json.loads(message[message.index("{") :])
        row = {column: str(line.get(field, "")) for column, field in self.fields.items()}
        counted = row["outcome"] in self.outcomes or row["status"] in self.statuses
        return row if counted else None


def logged_line(caplog: pytest.LogCaptureFixture, error: BaseException | None) -> str:
    """The message shared.oplog really logs for one operation that raises `error` (or not)."""
    caplog.clear()
    caplog.set_level(logging.INFO, logger="exchange_processor.operations")
    record = OperationRecord("op-7", "send", "contoso.test")
    record.address("from", "administratie@contoso.test")
    try:
        with operation_log(record):
            if error is not None:
                raise error
    except BaseException as exc:  # the test raised it on purpose
        assert exc is error
    (logged,) = [r for r in caplog.records if r.name == "exchange_processor.operations"]
    return logged.getMessage()


def test_failed_operations_alert_counts_internal_errors_from_the_real_log_line(
    failed_query: str, caplog: pytest.LogCaptureFixture
) -> None:
    kql = KqlFilter(failed_query)
    row = kql.row(logged_line(caplog, RuntimeError("a bug")))
    assert row == {
        "outcome": "internal_error",
        "status": "",
        "operation": "send",
        "connection": "contoso.test",
        "operationId": "op-7",
    }


def test_failed_operations_alert_ignores_successes_and_caller_mistakes(
    failed_query: str, caplog: pytest.LogCaptureFixture
) -> None:
    kql = KqlFilter(failed_query)
    assert kql.row(logged_line(caplog, None)) is None
    assert kql.row(logged_line(caplog, ValidationFailed("bad"))) is None
    assert kql.row(logged_line(caplog, SenderNotAllowed("no"))) is None


@pytest.mark.parametrize("outcome", sorted(ALERTING_OUTCOMES))
def test_failed_operations_alert_fires_on_each_terminal_failure_outcome(
    failed_query: str, outcome: str
) -> None:
    kql = KqlFilter(failed_query)
    line = format_line(OperationRecord("op-8", "move", "contoso.test"), outcome, 3.0)
    assert kql.row(line) == {
        "outcome": outcome,
        "status": "",
        "operation": "move",
        "connection": "contoso.test",
        "operationId": "op-8",
    }
    # A prefix in front of the JSON (a log formatter, a host) must not hide the line.
    assert kql.row(f"2026-01-01 INFO exchange_processor.operations {line}") is not None


def test_failed_operations_alert_names_no_error_code_a_caller_can_cause(failed_query: str) -> None:
    codes = {cls.code for cls in _subclasses(AppError)} - {"internal_error"}
    assert not KqlFilter(failed_query).outcomes & codes


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def test_failed_operations_alert_groups_by_operation(bicep: dict) -> None:
    rule = alert_rules(bicep)["failedOperationsAlert"]
    criterion = rule["criteria"]["allOf"][0]
    assert [d["name"] for d in criterion["dimensions"]] == ["operation"]
    assert (criterion["timeAggregation"], criterion["operator"]) == ("Count", "GreaterThan")
    assert "AppTraces" in criterion["query"]
    assert "outcome=failed" not in criterion["query"]  # the old text form never matched


def test_poison_queue_alert_is_kept(bicep: dict) -> None:
    poison = alert_rules(bicep)["poisonQueueAlert"]["criteria"]["allOf"][0]
    assert "StorageQueueLogs" in poison["query"] and 'endswith "-poison"' in poison["query"]
    assert (poison["operator"], poison["threshold"]) == ("GreaterThan", 0)


# --- host.json logging ---------------------------------------------------------------------


def function_names() -> list[str]:
    return [f.get_function_name() for f in fresh_function_app().get_functions()]


def test_host_json_lets_every_function_s_python_logs_through_at_information() -> None:
    # In Azure, what Python code logs during an invocation arrives under the category
    # Function.<function name>.User, whatever the Python logger's name.
    levels = HOST_JSON["logging"]["logLevel"]
    names = function_names()
    assert "send_mail" in names and "operations_cleanup" in names
    for name in names:
        assert levels.get(f"Function.{name}.User") == "Information", name


def test_host_json_log_levels_name_only_host_categories() -> None:
    # A Python logger name (exchange_processor.operations) is not a host category: such a key
    # silently does nothing in Azure.
    host_prefixes = ("default", "Host", "Function", "Microsoft", "Worker", "Azure")
    for category in HOST_JSON["logging"]["logLevel"]:
        assert category.startswith(host_prefixes), f"{category} is not a host log category"


def effective_level(category: str) -> str:
    """The level the host applies to a category: the longest configured prefix that matches on
    dot boundaries, else `default` (Microsoft.Extensions.Logging's filter rule)."""
    levels = HOST_JSON["logging"]["logLevel"]
    parts = category.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in levels:
            return levels[prefix]
    return levels["default"]


def test_host_json_keeps_the_host_quiet_and_our_lines_through() -> None:
    # Categories the Functions host writes (learn.microsoft.com: configure-monitoring,
    # "Configure categories"): only results and our own invocation logs at Information.
    quiet = [
        "Host.Startup",
        "Host.General",
        "Host.Aggregator",
        "Host.Triggers.Queue",
        "Function.send_mail",
        "Function.mail_send_queue",
        "Microsoft.Azure.WebJobs.Hosting",
        "Worker.rpcWorkerProcess",
        "Azure.Core",
    ]
    for category in quiet:
        assert effective_level(category) == "Warning", category
    assert effective_level("Host.Results") == "Information"
    for name in function_names():
        assert effective_level(f"Function.{name}.User") == "Information", name


def test_no_host_json_category_is_more_verbose_than_the_default() -> None:
    # What azure-functions-doctor's check_host_json_log_level_conflict asks: the default is the
    # most verbose level, categories only quieten (no accidental extra volume or personal data).
    order = ["Trace", "Debug", "Information", "Warning", "Error", "Critical", "None"]
    levels = HOST_JSON["logging"]["logLevel"]
    default = order.index(levels["default"])
    for category, level in levels.items():
        assert order.index(level) >= default, f"{category}={level} is above default"


def test_traces_and_requests_are_never_sampled_away() -> None:
    sampling = HOST_JSON["logging"]["applicationInsights"]["samplingSettings"]
    excluded = set(sampling["excludedTypes"].split(";"))
    # The alert counts trace lines; sampling would make it miss failures.
    assert {"Trace", "Request", "Exception"} <= excluded


# --- Flex Consumption scale ----------------------------------------------------------------


def test_flex_consumption_scale_and_http_concurrency_are_explicit_parameters(bicep: dict) -> None:
    function = bicep["app/function.bicep"]
    site = function["resources"]["site"]["config"]
    scale = site["properties"]["functionAppConfig"]["scaleAndConcurrency"]
    assert scale == {
        "maximumInstanceCount": "maximumInstanceCount",
        "instanceMemoryMB": "instanceMemoryMB",
        "triggers": {"http": {"perInstanceConcurrency": "httpPerInstanceConcurrency"}},
    }
    params = function["parameters"]
    # Python's default on Flex Consumption is 1 request per instance: ours must be more.
    assert params["httpPerInstanceConcurrency"]["default"] > 1
    for name in ("maximumInstanceCount", "instanceMemoryMB", "httpPerInstanceConcurrency"):
        kinds = {d["type"] for d in params[name]["decorators"]}
        assert "description" in kinds and ({"min_value", "allowed"} & kinds), name
    main = bicep["main.bicep"]
    module = main["modules"]["functionApp"]["config"]["params"]
    assert module["httpPerInstanceConcurrency"] == "httpPerInstanceConcurrency"
    assert main["parameters"]["httpPerInstanceConcurrency"]["default"] > 1


def test_python_worker_has_a_thread_for_every_concurrent_invocation(bicep: dict) -> None:
    function = bicep["app/function.bicep"]
    setting = function["variables"]["appSettings"]["value"]["PYTHON_THREADPOOL_THREAD_COUNT"]
    args = setting["function"]["parameters"]["value_to_convert"]["function"]
    assert args["type"] == "max"
    assert set(args["parameters"].values()) == {"httpPerInstanceConcurrency", "queueConcurrency"}
    queues = HOST_JSON["extensions"]["queues"]
    expected = queues["batchSize"] + queues["newBatchThreshold"]
    assert function["variables"]["queueConcurrency"]["value"] == expected


@pytest.mark.parametrize(
    ("status", "code"), [("failed", "send_as_denied"), ("poisoned", "graph_error")]
)
def test_failed_operations_alert_counts_queued_work_that_ended_badly_whatever_its_code(
    failed_query: str, status: str, code: str
) -> None:
    """Queued lines carry the error code as outcome and the final status (shared/background)."""
    kql = KqlFilter(failed_query)
    record = OperationRecord("op-9", "send", "contoso.test")
    record.fields.update(mode="queue", status=status, attempts=1)
    row = kql.row(format_line(record, code, 12.0))
    assert row is not None and row["status"] == status and row["outcome"] == code
    record.fields["status"] = "succeeded"
    assert kql.row(format_line(record, "succeeded", 12.0)) is None
