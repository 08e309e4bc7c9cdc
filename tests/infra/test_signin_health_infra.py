"""infra/ for sign-in health: the NAT gateway option (off by default), and the alert rules and
workbook queries run by a KQL engine (duckdb-kql) on log lines the app really writes."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.health import job
from shared.health.audit import MISSING, AuditReport, Check, MailboxAudit
from shared.health.parked import report_overdue
from shared.oplog import OperationRecord, format_line
from shared.work.lifecycle import _log_end
from shared.work.record import new_operation
from shared.work.states import Status
from tests.fakes import MemoryStore
from tests.health_kit import HealthKit, LineCapture
from tests.infra.test_preprovision_hook import run_hook

REPO = Path(__file__).resolve().parents[2]
WORKBOOK = json.loads((REPO / "infra/app/workbook.json").read_text())
SA, USERS = "docs.contoso.test", "users.contoso.test"


def unwrap_conditional(node: dict) -> dict:
    return node["operator"]["operands"]


def accessor_path(node: object) -> str:
    """`a.b.c` of a pycep property accessor."""
    if isinstance(node, str):
        return node
    assert isinstance(node, dict) and node["operator"]["type"] == "property_accessor", node
    ops = node["operator"]["operands"]
    return f"{accessor_path(ops['operand_1'])}.{accessor_path(ops['operand_2'])}"


# --- the NAT gateway option ----------------------------------------------------------------


def test_nat_gateway_is_off_by_default_and_needs_private_networking(bicep: dict) -> None:
    main = bicep["main.bicep"]
    assert main["parameters"]["natGateway"]["default"] is False
    given = json.loads((REPO / "infra/main.parameters.json").read_text())["parameters"]
    assert given["natGateway"]["value"] == "${NAT_GATEWAY=false}"
    both = main["variables"]["fixedOutboundAddress"]["value"]["operator"]
    assert both["type"] == "and"
    assert set(both["operands"].values()) == {"privateNetworking", "natGateway"}
    module = main["modules"]["outboundNat"]
    assert module["detail"]["path"] == "app/nat-gateway.bicep"
    assert module["config"]["condition"] == "fixedOutboundAddress"


def test_nat_gateway_has_a_static_standard_public_ip(bicep: dict) -> None:
    nat = bicep["app/nat-gateway.bicep"]["resources"]
    ip = nat["publicIp"]
    assert ip["type"] == "Microsoft.Network/publicIPAddresses"
    assert ip["config"]["sku"]["name"] == "Standard"
    assert ip["config"]["properties"]["publicIPAllocationMethod"] == "Static"
    gateway = nat["natGateway"]
    assert gateway["type"] == "Microsoft.Network/natGateways"
    (address,) = gateway["config"]["properties"]["publicIpAddresses"]
    assert accessor_path(address["id"]) == "publicIp.id"
    outputs = bicep["app/nat-gateway.bicep"]["outputs"]
    assert accessor_path(outputs["outboundIpAddress"]["value"]) == "publicIp.properties.ipAddress"


def test_the_nat_gateway_is_associated_with_the_vnet_integration_subnet(bicep: dict) -> None:
    network = bicep["app/network.bicep"]
    (app_subnet, _) = network["resources"]["vnet"]["config"]["properties"]["subnets"]
    assert app_subnet["name"] == "app"
    delegation = app_subnet["properties"]["delegations"][0]["properties"]["serviceName"]
    assert delegation == "Microsoft.App/environments"  # the one the function app integrates with
    association = unwrap_conditional(app_subnet["properties"]["natGateway"])
    assert (
        association["false_value"] == {"id": "natGatewayId"} and association["true_value"] is None
    )
    assert network["parameters"]["natGatewayId"]["default"] == ""
    given = bicep["main.bicep"]["modules"]["network"]["config"]["config"]["params"]["natGatewayId"]
    wired = unwrap_conditional(given)
    assert wired["condition"] == "fixedOutboundAddress" and wired["false_value"] == ""
    assert accessor_path(wired["true_value"]) == "outboundNat.outputs.natGatewayId"
    site = bicep["main.bicep"]["modules"]["functionApp"]["config"]["params"]
    integration = unwrap_conditional(site["virtualNetworkSubnetId"])
    assert accessor_path(integration["true_value"]) == "network.outputs.appSubnetId"


def test_azd_outputs_the_fixed_outbound_address(bicep: dict) -> None:
    output = bicep["main.bicep"]["outputs"]["AZURE_OUTBOUND_IP"]
    chosen = unwrap_conditional(output["value"])
    assert chosen["condition"] == "fixedOutboundAddress" and chosen["false_value"] == ""
    assert accessor_path(chosen["true_value"]) == "outboundNat.outputs.outboundIpAddress"


def test_the_preprovision_hook_stops_a_nat_gateway_without_private_networking() -> None:
    done = run_hook({"ALERT_EMAIL": "ops@documizers.com", "NAT_GATEWAY": "true"})
    assert done.returncode == 1
    assert "NAT_GATEWAY=true needs the VNet integration of PRIVATE_NETWORKING=true" in done.stderr


# --- real log lines ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_lines() -> list[str]:
    """Lines the app writes: operations (sync, queued, parked), sign-in health and state
    changes, parked work overdue, a Graph 429, a failing permission-audit check."""
    kit = HealthKit()
    kit.connection(SA, "service_account", account="svc-docuflow@contoso.test")
    kit.connection(USERS, "user")
    kit.signed_in(SA, None, days_idle=80)
    kit.signed_in(USERS, "anna@contoso.test", days_idle=3)
    kit.signed_in(USERS, "bram@contoso.test", days_idle=30)
    kit.refuse(USERS, "bram@contoso.test")
    ops = MemoryStore()
    with LineCapture() as captured:
        kit.health.run()
        # Operations: a sync success, a sync caller mistake, queued ones parked and failed.
        logging.getLogger("exchange_processor.operations").info(
            format_line(OperationRecord("op-1", "send", SA), "succeeded", 10.0)
        )
        logging.getLogger("exchange_processor.operations").info(
            format_line(OperationRecord("op-2", "send", SA), "validation_failed", 1.0)
        )
        parked = new_operation("op-3", "send", USERS, status=Status.PARKED)
        parked.user = "bram@contoso.test"
        parked.parked_until = (kit.now + timedelta(hours=72)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        _log_end(parked, [], kit.now)
        failed = new_operation("op-4", "move", SA, status=Status.FAILED)
        failed.error = None
        _log_end(failed, [], kit.now)
        ops.create(parked)
        ops.index_parked(parked)
        report_overdue(ops, kit.store, kit.settings, now=kit.now + timedelta(minutes=61))
        throttled_graph_call(kit)
        report = AuditReport(SA, "service_account", "svc-docuflow@contoso.test", None, [], [])
        report.mailboxes.append(
            MailboxAudit(
                "bram@contoso.test",
                [Check("fullAccess", MISSING, "no Full Access", "Add-MailboxPermission ...")],
            )
        )
        job.audit_lines(report, mask=True)
    return captured.lines


def throttled_graph_call(kit: HealthKit) -> None:
    """One Graph call that meets a 429 (then succeeds): the client writes the throttle line."""
    import requests

    from shared.graph.client import GraphClient

    answers = [429, 200]

    class Session:
        def request(self, method, url, **kw):
            resp = requests.Response()
            resp.status_code = answers.pop(0)
            resp.headers["Retry-After"] = "1"
            resp._content = b"{}"
            resp._content_consumed = True
            return resp

    graph = GraphClient(
        base_url="https://graph.example.test/v1.0",
        token=lambda force_refresh=False: "t",
        session=Session(),
        sleep=lambda _s: None,
    )
    graph.get("/users/bram%40contoso.test/mailFolders/inbox")
    assert not answers


@pytest.fixture(scope="module")
def traces(app_lines: list[str]):
    """An AppTraces table (the documented columns the queries use) holding the app's lines,
    as Application Insights stores them: the message, a time within the last hour."""
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE AppTraces (TimeGenerated TIMESTAMP, Message VARCHAR, SeverityLevel INTEGER,"
        " AppRoleName VARCHAR, OperationName VARCHAR)"
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    for i, line in enumerate(app_lines):
        con.execute(
            "INSERT INTO AppTraces VALUES (?, ?, 1, 'func-mail', 'signin_health')",
            [now - timedelta(minutes=30) + timedelta(seconds=i), line],
        )
    yield con
    con.close()


def kql(con, query: str) -> list[dict]:
    import duckdb_kql

    relation = duckdb_kql.query(con, query)
    return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


def alert_query(bicep: dict, symbol: str) -> str:
    rule = bicep["app/alerts.bicep"]["resources"][symbol]["config"]["properties"]
    return rule["criteria"]["allOf"][0]["query"]


def test_the_sign_in_alert_counts_the_state_changes_into_needs_sign_in_and_expiring(
    bicep: dict, traces
) -> None:
    rows = kql(traces, alert_query(bicep, "signInAlert"))
    got = {(r["connection"], r["user"], r["state"]) for r in rows}
    assert got == {(USERS, "b***@contoso.test", "needs_sign_in")}, rows


def test_the_sign_in_alert_sees_an_expiring_sign_in(bicep: dict) -> None:
    import duckdb

    kit = HealthKit(signin_max_vault_writes=0)  # no refresh: it runs into the warning period
    kit.connection(SA, "service_account")
    kit.signed_in(SA, None, days_idle=80)
    with LineCapture() as captured:
        kit.health.run()
    con = duckdb.connect()
    con.execute("CREATE TABLE AppTraces (TimeGenerated TIMESTAMP, Message VARCHAR)")
    for line in captured.lines:
        con.execute("INSERT INTO AppTraces VALUES (now(), ?)", [line])

    rows = kql(con, alert_query(bicep, "signInAlert"))

    assert [(r["connection"], r["state"], r["daysLeft"]) for r in rows] == [(SA, "expiring", 10.0)]


def test_the_parked_work_alert_counts_the_overdue_line(bicep: dict, traces) -> None:
    rows = kql(traces, alert_query(bicep, "parkedWorkAlert"))
    assert [(r["connection"], r["operationId"], r["parkedMinutes"]) for r in rows] == [
        (USERS, "op-3", 61)
    ]


def test_the_permission_audit_alert_counts_failing_checks(bicep: dict, traces) -> None:
    rows = kql(traces, alert_query(bicep, "permissionAuditAlert"))
    assert [(r["connection"], r["mailbox"], r["check"]) for r in rows] == [
        (SA, "b***@contoso.test", "fullAccess")
    ]
    assert rows[0]["grant"].startswith("Add-MailboxPermission")


def test_the_failed_operations_alert_runs_on_the_same_lines(bicep: dict, traces) -> None:
    rows = kql(traces, alert_query(bicep, "failedOperationsAlert"))
    assert [(r["operationId"], r["status"]) for r in rows] == [("op-4", "failed")]


# --- the workbook --------------------------------------------------------------------------


def workbook_queries() -> dict[str, str]:
    return {
        item["name"]: item["content"]["query"] for item in WORKBOOK["items"] if item["type"] == 3
    }


def test_the_workbook_is_deployed_on_the_workspace_from_its_json(bicep: dict) -> None:
    tree = bicep["app/workbook.bicep"]["resources"]["workbook"]
    assert tree["type"] == "Microsoft.Insights/workbooks"
    config = tree["config"]
    assert config["kind"] == "shared" and config["properties"]["category"] == "workbook"
    assert config["properties"]["sourceId"] == "logAnalyticsWorkspaceId"
    loaded = config["properties"]["serializedData"]["function"]
    assert loaded["type"] == "load_text_content"
    assert loaded["parameters"]["file_path"] == "workbook.json"
    module = bicep["main.bicep"]["modules"]["workbook"]["config"]["params"]
    assert accessor_path(module["logAnalyticsWorkspaceId"]).endswith("logAnalyticsWorkspaceId")
    assert WORKBOOK["version"] == "Notebook/1.0"
    assert set(workbook_queries()) == {
        "operations-by-status",
        "parked-work",
        "signins-days-left",
        "throttled-per-mailbox",
        "failures-by-code",
    }


def test_workbook_operations_by_status(traces) -> None:
    rows = kql(traces, workbook_queries()["operations-by-status"])
    counts = {r["status"]: r["operations"] for r in rows}
    assert counts == {"succeeded": 1, "failed": 2, "parked": 1}, rows


def test_workbook_parked_work_per_connection_and_user(traces) -> None:
    rows = kql(traces, workbook_queries()["parked-work"])
    assert [(r["connection"], r["user"], r["parked"]) for r in rows] == [
        (USERS, "b***@contoso.test", 1)
    ]


def test_workbook_sign_ins_by_days_left(traces) -> None:
    rows = kql(traces, workbook_queries()["signins-days-left"])
    got = [(r["connection"], r["user"], r["state"], r["daysLeft"]) for r in rows]
    assert got == [
        (USERS, "b***@contoso.test", "needs_sign_in", 60.0),
        (USERS, "a***@contoso.test", "ok", 87.0),
        (SA, "", "ok", 90.0),
    ], rows


def test_workbook_throttling_per_mailbox(traces) -> None:
    rows = kql(traces, workbook_queries()["throttled-per-mailbox"])
    assert [(r["mailbox"], r["throttled"]) for r in rows] == [("b***@contoso.test", 1)]


def test_workbook_failures_by_code(traces) -> None:
    rows = kql(traces, workbook_queries()["failures-by-code"])
    assert {r["code"]: r["failures"] for r in rows} == {"validation_failed": 1, "failed": 1}
