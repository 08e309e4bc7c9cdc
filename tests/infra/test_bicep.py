"""infra/ Bicep (parsed by pycep) provisions what the code expects, least-privilege and locked."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from shared import settings

REPO = Path(__file__).resolve().parents[2]

# Built-in roles the app identity must hold, by where and why (see infra/app/rbac.bicep).
BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
KEY_VAULT_SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
# The app's own Key Vault role (infra/app/keyvault-app-role.bicep), passed to rbac.bicep.
APP_SECRETS_ROLE = "appSecretsRoleGuid"
# Roles far broader than anything the service does; none may appear anywhere.
TOO_BROAD = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    "17d1049b-9a84-46fb-8f53-869881c3d3ab": "Storage Account Contributor",
    "00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
}
# Settings the Functions host and Application Insights read (not our code) that Azure needs.
HOST_SETTINGS = {
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "PYTHON_THREADPOOL_THREAD_COUNT",
    "PYTHON_ENABLE_INIT_INDEXING",
}


def unwrap(config: object) -> dict:
    """The body of a resource or module, looking through `if (...)` and `for ... in` wrappers."""
    while (
        isinstance(config, dict)
        and "config" in config
        and ("condition" in config or "loop_type" in config)
    ):
        config = config["config"]
    assert isinstance(config, dict)
    return config


def resources(bicep: dict, kind: str) -> Iterator[tuple[str, str, dict]]:
    """(file, symbol, body) of every declared (not `existing`) resource of one type."""
    for file, tree in bicep.items():
        for symbol, resource in tree.get("resources", {}).items():
            if resource["type"] == kind and not resource["existing"]:
                yield file, symbol, unwrap(resource["config"])


def one(bicep: dict, kind: str) -> dict:
    found = [body for _, _, body in resources(bicep, kind)]
    assert len(found) == 1, f"expected exactly one {kind}, found {len(found)}"
    return found[0]


def accessor(node: object) -> tuple[str, str] | None:
    """`a.b` as ("a", "b"); anything else as None."""
    if isinstance(node, dict) and node.get("operator", {}).get("type") == "property_accessor":
        operands = node["operator"]["operands"]
        if isinstance(operands["operand_2"], str):
            return operands["operand_1"], operands["operand_2"]
    return None


@pytest.fixture(scope="module")
def app_settings(bicep: dict) -> dict:
    """Every app setting the function app gets: the `appSettings` variable (set on the site so
    the host never starts without them) plus what the appsettings resource adds to it."""
    tree = bicep["app/function.bicep"]
    site = one(bicep, "Microsoft.Web/sites")
    loop = site["properties"]["siteConfig"]["appSettings"]
    # The site's appSettings are built from the `appSettings` variable, one name/value per key.
    assert loop["loop_type"]["detail"]["object_name"] == "appSettings"
    config = [
        body
        for _, _, body in resources(bicep, "Microsoft.Web/sites/config")
        if body["name"] == "appsettings"
    ]
    union = config[0]["properties"]["function"]["parameters"]
    assert union["arg_1"] == "appSettings"
    return {**tree["variables"]["appSettings"]["value"], **union["arg_2"]}


def test_function_app_sets_every_setting_the_code_reads(app_settings: dict) -> None:
    missing = set(settings.SETTING_NAMES) - set(app_settings)
    assert not missing, f"infra/app/function.bicep does not set {sorted(missing)}"


def test_function_app_sets_no_local_only_setting(app_settings: dict) -> None:
    assert not set(settings.LOCAL_ONLY_SETTING_NAMES) & set(app_settings)


def test_function_app_sets_only_known_settings(app_settings: dict) -> None:
    unknown = set(app_settings) - set(settings.SETTING_NAMES) - HOST_SETTINGS
    assert not unknown, f"settings nobody reads: {sorted(unknown)}"


def test_app_settings_hold_no_secrets(bicep: dict, app_settings: dict) -> None:
    text = json.dumps(app_settings)
    for marker in ("AccountKey", "SharedAccessSignature", "list_keys", "listKeys", "secure"):
        assert marker not in text
    assert not any(re.search(r"SECRET|PASSWORD|_KEY$", name) for name in app_settings)
    # No template anywhere takes a secret as a parameter or reads storage keys.
    for file, tree in bicep.items():
        for name, param in tree.get("parameters", {}).items():
            kinds = {d["type"] for d in param.get("decorators", [])}
            assert "secure" not in kinds, f"{file}: @secure() parameter {name}"
        assert "list_keys" not in json.dumps(tree), f"{file} reads account keys"


def test_http_streams_get_the_worker_setting_they_need(app_settings: dict) -> None:
    # function_app imports the HTTP streams extension; without this the Python 3.11 worker never
    # starts the web server the host forwards HTTP to, and every HTTP call would hang.
    assert app_settings["PYTHON_ENABLE_INIT_INDEXING"] == "1"


def test_app_authenticates_with_its_user_assigned_identity(bicep: dict, app_settings: dict) -> None:
    assert app_settings[settings.KEY_VAULT_CREDENTIAL] == "managed_identity"
    assert app_settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert app_settings[settings.AZURE_CLIENT_ID] == "identityClientId"
    assert app_settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert app_settings[settings.KEY_VAULT_URL] == "keyVaultUrl"
    assert app_settings[settings.STORAGE_QUEUE_SERVICE_URI] == "storageQueueEndpoint"
    assert app_settings[settings.STORAGE_TABLE_SERVICE_URI] == "storageTableEndpoint"
    assert "Authorization=AAD" in app_settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
    site = one(bicep, "Microsoft.Web/sites")
    assert site["identity"]["type"] == "UserAssigned"
    auth = site["properties"]["functionAppConfig"]["deployment"]["storage"]["authentication"]
    assert auth["type"] == "UserAssignedIdentity"


def test_queue_and_table_names_match_the_code(bicep: dict) -> None:
    main = bicep["main.bicep"]["variables"]
    assert tuple(main["queueNames"]["value"]) == settings.QUEUES
    # Every table the code uses, from one list (the nonces and mailbox limits ones included).
    assert tuple(main["tableNames"]["value"]) == settings.TABLES
    assert {
        settings.OPERATIONS_TABLE,
        settings.NONCES_TABLE,
        settings.MAILBOX_LIMITS_TABLE,
        settings.SIGNIN_HEALTH_TABLE,
    } <= set(settings.TABLES)
    storage_module = unwrap(bicep["main.bicep"]["modules"]["storage"]["config"])["params"]
    assert storage_module["queueNames"] == "queueNames"
    assert storage_module["tableNames"] == "tableNames"
    storage = bicep["app/storage.bicep"]["resources"]
    work, poison = storage["workQueues"]["config"], storage["poisonQueues"]["config"]
    assert work["loop_type"]["detail"]["array_name"] == "queueNames"
    assert work["config"]["name"] == "queueName"
    assert poison["loop_type"]["detail"]["array_name"] == "queueNames"
    assert poison["config"]["name"] == "${queueName}-poison"
    tables = storage["appTables"]["config"]
    assert tables["loop_type"]["detail"]["array_name"] == "tableNames"
    assert tables["config"]["name"] == "tableName"


def test_function_app_is_flex_consumption_python_311(bicep: dict) -> None:
    plan = one(bicep, "Microsoft.Web/serverfarms")
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    runtime = one(bicep, "Microsoft.Web/sites")["properties"]["functionAppConfig"]["runtime"]
    assert runtime == {"name": "python", "version": "3.11"}


def test_function_app_is_https_only_tls12_and_ftp_off(bicep: dict) -> None:
    site = one(bicep, "Microsoft.Web/sites")["properties"]
    assert site["httpsOnly"] is True
    assert site["siteConfig"]["minTlsVersion"] in {"1.2", "1.3"}
    assert site["siteConfig"]["scmMinTlsVersion"] in {"1.2", "1.3"}
    # Flex Consumption has no FTP at all and refuses siteConfig.ftpsState (test_flex_deploy.py);
    # basic-auth publishing (FTP and SCM user/password) is switched off by these policies.
    assert "ftpsState" not in site["siteConfig"]
    policies = {
        body["name"]: body["properties"]["allow"]
        for _, _, body in resources(bicep, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    }
    assert policies == {"ftp": False, "scm": False}


def test_storage_refuses_shared_keys_and_old_tls(bicep: dict) -> None:
    props = one(bicep, "Microsoft.Storage/storageAccounts")["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["supportsHttpsTrafficOnly"] is True
    assert props["allowBlobPublicAccess"] is False


def test_key_vault_uses_rbac_soft_delete_and_purge_protection(bicep: dict) -> None:
    props = one(bicep, "Microsoft.KeyVault/vaults")["properties"]
    assert props["enableRbacAuthorization"] is True
    assert props["enableSoftDelete"] is True
    assert props["enablePurgeProtection"] is True


def test_monitoring_has_local_auth_off(bicep: dict) -> None:
    workspace = one(bicep, "Microsoft.OperationalInsights/workspaces")["properties"]
    assert workspace["features"]["disableLocalAuth"] is True
    insights = one(bicep, "Microsoft.Insights/components")["properties"]
    assert insights["DisableLocalAuth"] is True


def role_assignments(bicep: dict) -> list[dict]:
    """Every role assignment as {file, scope, principal, role (GUID), name (guid() arguments)}."""
    found = []
    for file, symbol, body in resources(bicep, "Microsoft.Authorization/roleAssignments"):
        role_vars = bicep[file]["variables"]["roles"]["value"]
        role_id = body["properties"]["roleDefinitionId"]["function"]
        role_ref = role_id["parameters"]["resource_name_1"]
        role_var, role_key = accessor(role_ref)
        assert role_var == "roles", f"{file}:{symbol} should take its role from the roles variable"
        name = body["name"]["function"]
        assert name["type"] == "guid", f"{file}:{symbol} name is not guid(...)"
        found.append(
            {
                "file": file,
                "symbol": symbol,
                "scope": body["scope"],
                "principal": body["properties"]["principalId"],
                "role": role_vars[role_key],
                "role_ref": role_ref,
                "guid_args": name["parameters"],
            }
        )
    return found


def test_role_assignment_names_are_guid_of_scope_principal_and_role(bicep: dict) -> None:
    assignments = role_assignments(bicep)
    assert assignments
    for a in assignments:
        args = a["guid_args"]
        assert accessor(args["base_string"]) == (a["scope"], "id"), a["symbol"]
        assert args["extra_string_1"] == a["principal"], a["symbol"]
        assert args["extra_string_2"] == a["role_ref"], a["symbol"]
        assert "extra_string_3" not in args or args["extra_string_3"] is None


def test_app_identity_holds_exactly_the_narrow_roles_it_needs(bicep: dict) -> None:
    rbac = bicep["app/rbac.bicep"]["resources"]
    scope_types = {symbol: r["type"] for symbol, r in rbac.items() if r["existing"]}
    granted = {
        (scope_types[a["scope"]], a["role"])
        for a in role_assignments(bicep)
        if a["principal"] == "appPrincipalId"
    }
    assert granted == {
        ("Microsoft.Storage/storageAccounts", BLOB_DATA_OWNER),  # host + deployment package
        ("Microsoft.Storage/storageAccounts", QUEUE_DATA_CONTRIBUTOR),  # triggers + send + poison
        ("Microsoft.Storage/storageAccounts", TABLE_DATA_CONTRIBUTOR),  # operations table
        ("Microsoft.KeyVault/vaults", APP_SECRETS_ROLE),  # custom: read + write, no delete
        ("Microsoft.Insights/components", MONITORING_METRICS_PUBLISHER),  # AAD telemetry
    }


def test_admins_get_only_key_vault_secrets_officer(bicep: dict) -> None:
    admin = [a for a in role_assignments(bicep) if a["principal"] != "appPrincipalId"]
    assert {a["principal"] for a in admin} == {"adminPrincipalId", "adminGroupObjectId"}
    assert {(a["scope"], a["role"]) for a in admin} == {("vault", KEY_VAULT_SECRETS_OFFICER)}


def test_no_role_broader_than_needed_appears_anywhere(bicep: dict) -> None:
    text = json.dumps(bicep).lower()
    for guid, name in TOO_BROAD.items():
        assert guid not in text, f"{name} is assigned somewhere"


def test_alerts_watch_poison_queues_and_failed_operations(bicep: dict) -> None:
    rules = {
        symbol: body["properties"]
        for _, symbol, body in resources(bicep, "Microsoft.Insights/scheduledQueryRules")
    }
    poison = rules["poisonQueueAlert"]["criteria"]["allOf"][0]
    assert "StorageQueueLogs" in poison["query"] and '"-poison"' in poison["query"]
    assert (poison["operator"], poison["threshold"]) == ("GreaterThan", 0)
    failed = rules["failedOperationsAlert"]["criteria"]["allOf"][0]
    # What the failed-operations query matches is checked against real log lines in
    # test_observability.py.
    assert "AppTraces" in failed["query"]
    assert failed["operator"] == "GreaterThan"
    # The queue writes the poison alert reads are sent to the same workspace.
    diagnostics = [
        body
        for _, _, body in resources(bicep, "Microsoft.Insights/diagnosticSettings")
        if body["scope"] == "queueService"
    ]
    assert any(log["category"] == "StorageWrite" for log in diagnostics[0]["properties"]["logs"])


def test_every_parameter_has_a_description(bicep: dict) -> None:
    for file, tree in bicep.items():
        for name, param in tree.get("parameters", {}).items():
            kinds = {d["type"] for d in param.get("decorators", [])}
            assert "description" in kinds, f"{file}: parameter {name} has no @description"


def test_names_come_from_the_abbreviations_file() -> None:
    abbreviations = json.loads((REPO / "infra/abbreviations.json").read_text())
    used = set(re.findall(r"abbrs\.(\w+)", (REPO / "infra/main.bicep").read_text()))
    assert used and used <= set(abbreviations)


def test_main_outputs_what_azd_and_the_admin_command_line_need(bicep: dict) -> None:
    outputs = set(bicep["main.bicep"]["outputs"])
    needed = {"AZURE_FUNCTION_NAME", "AZURE_FUNCTION_URL", "KEY_VAULT_URL", "AZURE_KEY_VAULT_NAME"}
    assert needed <= outputs
    assert settings.KEY_VAULT_URL in outputs  # `azd env get-values` feeds the admin command line


def test_parameter_file_matches_main_parameters(bicep: dict) -> None:
    declared = bicep["main.bicep"]["parameters"]
    given = json.loads((REPO / "infra/main.parameters.json").read_text())["parameters"]
    assert set(given) <= set(declared)
    required = {name for name, p in declared.items() if p.get("default") is None}
    assert required <= set(given), f"no value for {sorted(required - set(given))}"


def test_azd_deploys_the_api_service_to_the_tagged_function_app(bicep: dict) -> None:
    project = yaml.safe_load((REPO / "azure.yaml").read_text())
    assert project["infra"]["path"] == "infra"
    assert project["services"]["api"] == {"project": ".", "language": "python", "host": "function"}
    site_tags = one(bicep, "Microsoft.Web/sites")["tags"]["function"]["parameters"]
    assert site_tags["arg_2"]["'azd-service-name'"] == "api"


def test_the_apps_key_vault_role_reads_writes_and_recovers_but_never_deletes_or_purges(
    bicep: dict,
) -> None:
    role = one(bicep, "Microsoft.Authorization/roleDefinitions")["properties"]
    (permissions,) = role["permissions"]
    assert set(permissions["dataActions"]) == {
        "Microsoft.KeyVault/vaults/secrets/getSecret/action",
        "Microsoft.KeyVault/vaults/secrets/setSecret/action",
        "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        "Microsoft.KeyVault/vaults/deletedSecrets/recover/action",
    }
    assert permissions["actions"] == [] and role["type"] == "CustomRole"
    granted = json.dumps(permissions).lower()
    assert "delete/action" not in granted and "purge" not in granted and "*" not in granted
    assert len(role["assignableScopes"]) == 1
    assert role["assignableScopes"][0]["function"]["type"] == "resource_group"
    main = bicep["main.bicep"]["modules"]
    assert main["rbac"]["config"]["params"]["appSecretsRoleGuid"]
