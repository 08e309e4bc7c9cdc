"""The GitHub Actions workflow passes actionlint, tests pull requests and deploys main with OIDC."""

from __future__ import annotations

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
