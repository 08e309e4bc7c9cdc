"""The GitHub Actions workflow passes actionlint, tests pull requests and deploys main with OIDC."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.infra.conftest import infra_tool

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


@pytest.fixture(scope="module")
def workflow() -> dict:
    data = yaml.safe_load((REPO / ".github/workflows/ci.yml").read_text())
    # YAML 1.1 reads the bare key `on` as True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def test_workflows_pass_actionlint() -> None:
    actionlint = infra_tool("actionlint")
    assert WORKFLOWS
    result = subprocess.run(
        [str(actionlint), "-no-color", *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_pull_requests_run_make_test(workflow: dict) -> None:
    assert "pull_request" in workflow["on"]
    steps = workflow["jobs"]["test"]["steps"]
    assert any(step.get("run") == "make test" for step in steps)


def test_main_deploys_with_oidc_and_azd_after_the_tests(workflow: dict) -> None:
    assert workflow["on"]["push"]["branches"] == ["main"]
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "test"
    assert "refs/heads/main" in deploy["if"]
    assert deploy["permissions"]["id-token"] == "write"
    uses = [step.get("uses", "") for step in deploy["steps"]]
    assert any(u.startswith("azure/login@") for u in uses)
    runs = "\n".join(step.get("run", "") for step in deploy["steps"])
    assert "azd deploy" in runs
    assert "--federated-credential-provider github" in runs
    # OIDC only: no client secret or publish profile stored in the repository.
    text = (REPO / ".github/workflows/ci.yml").read_text()
    assert "secrets." not in text


def test_deploy_job_reads_no_subscription_scope_deployments(workflow: dict) -> None:
    # `azd env refresh` lists deployments at subscription scope (main.bicep targets the
    # subscription), which Reader on the resource group + Website Contributor cannot do.
    deploy = workflow["jobs"]["deploy"]
    runs = "\n".join(step.get("run", "") for step in deploy["steps"])
    assert "env refresh" not in runs
    assert "azd provision" not in runs and "azd up" not in runs
    # azd finds the app by its azd-service-name tag in this resource group.
    assert 'azd env set AZURE_RESOURCE_GROUP "$AZURE_RESOURCE_GROUP"' in runs
    assert deploy["env"]["AZURE_RESOURCE_GROUP"] == "${{ vars.AZURE_RESOURCE_GROUP }}"
    assert deploy["env"]["AZURE_FUNCTION_NAME"] == "${{ vars.AZURE_FUNCTION_NAME }}"
    # The smoke test asks the app for its host name instead of an azd output.
    assert "azd env get-value" not in runs
    assert "defaultHostName" in runs


def test_deploy_guide_sets_up_exactly_the_variables_and_roles_the_job_uses(workflow: dict) -> None:
    guide = (REPO / "docs" / "deploy.md").read_text()
    variables = {
        value.removeprefix("${{ vars.").removesuffix(" }}")
        for value in workflow["jobs"]["deploy"]["env"].values()
    }
    for name in variables:
        assert f"`{name}`" in guide, f"docs/deploy.md does not tell to set the variable {name}"
    # The narrowest roles: no subscription-wide role for the deploy identity.
    ci_setup = guide.split("**GitHub Actions**", 1)[1].split("**Roll back code.**", 1)[0]
    roles = set(re.findall(r'--role "?([A-Za-z ]+?)"?\s*\\?\s*--scope', ci_setup))
    assert roles == {"Website Contributor", "Reader"}
    assert "/subscriptions/$" not in ci_setup and '--scope "/subscriptions' not in ci_setup
