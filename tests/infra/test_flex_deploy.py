"""What would break a first `azd up` on Flex Consumption, checked in the parsed Bicep (pycep).

Each test names the reference it was checked against; docs/deploy.md ("Where these facts come
from") lists the same sources for readers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.infra.test_bicep import one, resources, unwrap

REPO = Path(__file__).resolve().parents[2]

# Site configuration that Flex Consumption refuses or ignores. ftpsState comes back as ARM error
# 51021 ("FtpsState ... for Flex Consumption sites is invalid"); the others are App Service or
# Consumption properties that Flex replaced with functionAppConfig or has no use for
# (learn.microsoft.com: functions-app-settings, "Flex Consumption plan deprecations").
FLEX_UNSUPPORTED_SITE_CONFIG = {
    "ftpsState",
    "http20Enabled",
    "remoteDebuggingEnabled",
    "alwaysOn",
    "linuxFxVersion",
    "use32BitWorkerProcess",
    "functionAppScaleLimit",
    "minimumElasticInstanceCount",
    "preWarmedInstanceCount",
    "netFrameworkVersion",
    "javaVersion",
    "powerShellVersion",
    "pythonVersion",
}
# What our siteConfig may hold: TLS floors and the app settings; Microsoft's Flex samples set no
# more (Azure-Samples/azure-functions-flex-consumption-samples, IaC/bicep/core/host/function.bicep).
SITE_CONFIG_ALLOWED = {"minTlsVersion", "scmMinTlsVersion", "appSettings"}
# App settings Flex sets itself or does not have (same "deprecations" table).
FLEX_DEPRECATED_APP_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTOVERVNET",
    "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
    "WEBSITE_NODE_DEFAULT_VERSION",
    "WEBSITE_TIME_ZONE",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
}
# Regions with Flex Consumption in Microsoft's quickstart
# (Azure-Samples/functions-quickstart-python-http-azd, infra/main.bicep), without its canary
# region eastus2euap.
FLEX_REGIONS = {
    "australiaeast",
    "australiasoutheast",
    "brazilsouth",
    "canadacentral",
    "centralindia",
    "centralus",
    "eastasia",
    "eastus",
    "eastus2",
    "francecentral",
    "germanywestcentral",
    "italynorth",
    "japaneast",
    "koreacentral",
    "northcentralus",
    "northeurope",
    "norwayeast",
    "southafricanorth",
    "southcentralus",
    "southeastasia",
    "southindia",
    "spaincentral",
    "swedencentral",
    "uaenorth",
    "uksouth",
    "ukwest",
    "westcentralus",
    "westeurope",
    "westus",
    "westus2",
    "westus3",
}
# Columns of the Log Analytics tables the alert queries read, from the table references
# learn.microsoft.com/azure/azure-monitor/reference/tables/storagequeuelogs and .../apptraces.
TABLE_COLUMNS = {
    "StorageQueueLogs": {
        "TimeGenerated",
        "AccountName",
        "Location",
        "Protocol",
        "OperationName",
        "AuthenticationType",
        "StatusCode",
        "StatusText",
        "DurationMs",
        "ServerLatencyMs",
        "Uri",
        "CallerIpAddress",
        "CorrelationId",
        "ObjectKey",
        "Category",
        "ClientRequestId",
        "RequesterObjectId",
        "RequesterTenantId",
        "ResponseBodySize",
        "RequestBodySize",
        "UserAgentHeader",
    },
    "AppTraces": {
        "TimeGenerated",
        "Message",
        "SeverityLevel",
        "Properties",
        "Measurements",
        "OperationId",
        "OperationName",
        "ParentId",
        "AppRoleName",
        "AppRoleInstance",
        "AppVersion",
        "ItemCount",
        "SDKVersion",
    },
}


def site(bicep: dict) -> dict:
    return one(bicep, "Microsoft.Web/sites")


def param_decorators(tree: dict, name: str) -> dict[str, object]:
    return {d["type"]: d.get("argument") for d in tree["parameters"][name]["decorators"]}


# --- Site configuration Flex Consumption takes --------------------------------------------------


def test_site_config_holds_only_what_flex_consumption_takes(bicep: dict) -> None:
    site_config = site(bicep)["properties"]["siteConfig"]
    assert not FLEX_UNSUPPORTED_SITE_CONFIG & set(site_config), sorted(site_config)
    assert set(site_config) <= SITE_CONFIG_ALLOWED, sorted(set(site_config) - SITE_CONFIG_ALLOWED)
    # The TLS floors stay: they are front-end settings every plan takes.
    assert site_config["minTlsVersion"] == "1.2" and site_config["scmMinTlsVersion"] == "1.2"


def test_no_app_setting_flex_consumption_sets_itself_or_lacks(bicep: dict) -> None:
    settings = bicep["app/function.bicep"]["variables"]["appSettings"]["value"]
    assert not FLEX_DEPRECATED_APP_SETTINGS & set(settings)
    extra = app_settings_config(bicep)["function"]["parameters"]["arg_2"]
    assert not FLEX_DEPRECATED_APP_SETTINGS & set(extra)


def test_runtime_and_deployment_storage_are_declared_where_flex_reads_them(bicep: dict) -> None:
    # azure-functions-doctor cannot read them inside a module (docs/deploy.md); this test does.
    config = site(bicep)["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["value"] == "${storageBlobEndpoint}${deploymentContainerName}"
    assert storage["authentication"]["type"] == "UserAssignedIdentity"
    assert storage["authentication"]["userAssignedIdentityResourceId"] == "identityId"


# --- Publishing credential policies -------------------------------------------------------------


def test_basic_publishing_policies_carry_the_site_location(bicep: dict) -> None:
    policies = list(resources(bicep, "Microsoft.Web/sites/basicPublishingCredentialsPolicies"))
    assert {body["name"] for _, _, body in policies} == {"ftp", "scm"}
    for _, symbol, body in policies:
        # As avm/res/web/site/basic-publishing-credentials-policy does.
        assert body.get("location") == "location", symbol
        assert body["properties"]["allow"] is False, symbol


# --- Alerts on a first provision ----------------------------------------------------------------


def alert_rules(bicep: dict) -> dict[str, dict]:
    return {
        symbol: body["properties"]
        for _, symbol, body in resources(bicep, "Microsoft.Insights/scheduledQueryRules")
    }


def test_log_alert_rules_skip_query_validation(bicep: dict) -> None:
    rules = alert_rules(bicep)
    assert rules
    for symbol, props in rules.items():
        assert props.get("skipQueryValidation") is True, symbol


def test_alerts_wait_for_the_storage_diagnostic_setting(bicep: dict) -> None:
    alerts = unwrap(bicep["main.bicep"]["modules"]["alerts"]["config"])
    assert "storage" in (alerts.get("dependsOn") or []), "alerts must depend on the storage module"
    # ... and the storage module is the one that sends queue writes to the workspace.
    diagnostics = [
        body
        for _, _, body in resources(bicep, "Microsoft.Insights/diagnosticSettings")
        if body["scope"] == "queueService"
    ]
    assert diagnostics


def columns_used(query: str, table: str) -> set[str]:
    """Capitalised identifiers in a KQL query (string literals removed), minus the table: our
    queries name columns in PascalCase and everything else (operators, functions, our own
    extended names) in lower case."""
    without_strings = re.sub(r"'[^']*'|\"[^\"]*\"", "''", query)
    return set(re.findall(r"\b[A-Z][A-Za-z]+\b", without_strings)) - {table}


def test_alert_queries_use_only_documented_columns(bicep: dict) -> None:
    checked = set()
    for symbol, props in alert_rules(bicep).items():
        for criterion in props["criteria"]["allOf"]:
            query = criterion["query"]
            table = query.strip().split()[0]
            assert table in TABLE_COLUMNS, f"{symbol} reads {table}, whose schema is not listed"
            used = columns_used(query, table)
            unknown = used - TABLE_COLUMNS[table]
            assert not unknown, f"{symbol}: {sorted(unknown)} are not columns of {table}"
            checked.add(table)
    assert checked == {"StorageQueueLogs", "AppTraces"}


def test_the_column_check_catches_a_wrong_column() -> None:
    assert columns_used('StorageQueueLogs | where ResultType == "Success"', "StorageQueueLogs") == {
        "ResultType"
    }


# --- PUBLIC_BASE_URL from the site's real host name ---------------------------------------------


def app_settings_config(bicep: dict) -> dict:
    configs = [
        body
        for _, _, body in resources(bicep, "Microsoft.Web/sites/config")
        if body["name"] == "appsettings"
    ]
    assert len(configs) == 1, "one appsettings config resource"
    return configs[0]["properties"]


def test_public_base_url_comes_from_the_default_host_name(bicep: dict) -> None:
    union = app_settings_config(bicep)["function"]
    assert union["type"] == "union"
    # Every other setting is carried along: the appsettings resource replaces the whole set.
    assert union["parameters"]["arg_1"] == "appSettings"
    value = union["parameters"]["arg_2"]["PUBLIC_BASE_URL"]["operator"]["operands"]
    assert value["condition"]["function"]["parameters"]["item_to_test"] == "publicBaseUrl"
    assert value["true_value"] == "https://${site.properties.defaultHostName}"
    assert value["false_value"] == "publicBaseUrl"


def test_no_template_builds_a_host_name_from_the_app_name(bicep: dict) -> None:
    # Comments are not in the parsed trees; expressions are.
    assert "azurewebsites.net" not in json.dumps(bicep)


# --- Allowed values -----------------------------------------------------------------------------


@pytest.mark.parametrize("file", ["main.bicep", "app/function.bicep"])
def test_scale_parameters_allow_only_what_flex_consumption_accepts(bicep: dict, file: str) -> None:
    tree = bicep[file]
    instances = param_decorators(tree, "maximumInstanceCount")
    assert (instances["min_value"], instances["max_value"]) == (40, 1000)
    assert 40 <= tree["parameters"]["maximumInstanceCount"]["default"] <= 1000
    memory = param_decorators(tree, "instanceMemoryMB")
    assert sorted(memory["allowed"]) == [2048, 4096]
    assert tree["parameters"]["instanceMemoryMB"]["default"] in (2048, 4096)


def test_location_is_restricted_to_flex_consumption_regions(bicep: dict) -> None:
    location = param_decorators(bicep["main.bicep"], "location")
    allowed = set(location["allowed"])
    assert allowed, "location must have an @allowed list"
    assert allowed <= FLEX_REGIONS, sorted(allowed - FLEX_REGIONS)
    assert "westeurope" in allowed  # the region docs/deploy.md uses
    assert location["metadata"] == {"azd": {"type": "location"}}


# --- Private networking -------------------------------------------------------------------------


def test_every_private_dns_zone_follows_the_cloud(bicep: dict) -> None:
    endpoints = bicep["app/network.bicep"]["variables"]["endpoints"]["value"]
    zones = {e["name"]: e["zone"] for e in endpoints}
    assert zones["vault"] == (
        "privatelink${replace(environment().suffixes.keyvaultDns, 'vault', 'vaultcore')}"
    )
    for name, zone in zones.items():
        assert "environment().suffixes" in zone, f"{name}: {zone} is hard-coded to one cloud"


def test_vault_zone_expression_gives_microsofts_zone_names() -> None:
    # What the expression evaluates to for the keyvaultDns suffix of each cloud, against the
    # zone names in learn.microsoft.com/azure/private-link/private-endpoint-dns.
    expected = {
        ".vault.azure.net": "privatelink.vaultcore.azure.net",
        ".vault.usgovcloudapi.net": "privatelink.vaultcore.usgovcloudapi.net",
        ".vault.azure.cn": "privatelink.vaultcore.azure.cn",
    }
    for suffix, zone in expected.items():
        assert "privatelink" + suffix.replace("vault", "vaultcore") == zone


# --- azd version and package contents -----------------------------------------------------------


def minimum_version(constraint: str) -> tuple[int, ...]:
    match = re.fullmatch(r"\s*>=\s*(\d+)\.(\d+)\.(\d+)\s*", constraint)
    assert match, f"expected '>= x.y.z', got {constraint!r}"
    return tuple(int(part) for part in match.groups())


def test_azure_yaml_requires_an_azd_that_honours_funcignore() -> None:
    project = yaml.safe_load((REPO / "azure.yaml").read_text())
    # .funcignore support: Azure/azure-dev pull request 5383, released in azd 1.18.0.
    assert minimum_version(project["requiredVersions"]["azd"]) >= (1, 18, 0)


def test_preprovision_hook_is_declared() -> None:
    project = yaml.safe_load((REPO / "azure.yaml").read_text())
    hook = project["hooks"]["preprovision"]["posix"]
    assert hook["shell"] == "sh"
    script = REPO / hook["run"].removeprefix("./")
    assert script.is_file()


# --- Key Vault name that survives azd down ------------------------------------------------------


def test_key_vault_name_can_be_chosen_for_a_redeploy(bicep: dict) -> None:
    main = bicep["main.bicep"]
    decorators = param_decorators(main, "keyVaultName")
    assert decorators["max_length"] == 24 and "description" in decorators
    assert main["parameters"]["keyVaultName"]["default"] == ""
    name = unwrap(main["modules"]["keyVault"]["config"])["params"]["name"]["operator"]
    operands = name["operands"]
    assert operands["condition"]["function"]["parameters"]["item_to_test"] == "keyVaultName"
    assert operands["false_value"] == "keyVaultName"
    given = json.loads((REPO / "infra/main.parameters.json").read_text())["parameters"]
    assert given["keyVaultName"]["value"] == "${KEY_VAULT_NAME=}"


def test_key_vault_keeps_purge_protection(bicep: dict) -> None:
    # The name parameter is the way out, not turning the protection off.
    props = one(bicep, "Microsoft.KeyVault/vaults")["properties"]
    assert props["enablePurgeProtection"] is True
