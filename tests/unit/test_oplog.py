"""The per-operation log line: fields present, addresses masked, errors recorded by code."""

import json
import logging

import pytest

from shared.errors import GraphInfo, Throttled
from shared.oplog import OperationRecord, format_line, mask_address, operation_log


def test_mask_keeps_first_letter_and_domain():
    assert mask_address("anna@contoso.test") == "a***@contoso.test"
    assert mask_address("garbage") == "***"


def test_line_has_the_agreed_fields_and_masked_addresses():
    record = OperationRecord("op-1", "send", "contoso.test")
    record.address("from", "administratie@contoso.test")
    record.request_ids.append("rid-1")
    line = json.loads(format_line(record, "succeeded", 12.34))
    assert line["operationId"] == "op-1" and line["operation"] == "send"
    assert line["connection"] == "contoso.test" and line["outcome"] == "succeeded"
    assert line["durationMs"] == 12.3 and line["graphRequestIds"] == ["rid-1"]
    assert line["from"] == "a***@contoso.test"


def test_masking_can_be_turned_off():
    record = OperationRecord("op", "send", mask=False)
    record.address("from", "anna@contoso.test")
    assert record.fields["from"] == "anna@contoso.test"


def test_failed_operation_logs_its_error_code_and_graph_request_id(caplog):
    caplog.set_level(logging.INFO, logger="exchange_processor.operations")
    with pytest.raises(Throttled), operation_log(OperationRecord("op-2", "move", "c")):
        raise Throttled("x", graph=GraphInfo(429, "ApplicationThrottled", "rid-9"))
    line = json.loads(caplog.records[-1].getMessage())
    assert line["outcome"] == "throttled" and line["graphRequestIds"] == ["rid-9"]
