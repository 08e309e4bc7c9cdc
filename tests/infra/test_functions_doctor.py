"""A third-party check of the app as Azure sees it: `azure-functions-doctor doctor --profile full`
on the repository reports no failure, and every warning or skip it still reports is explained in
docs/deploy.md ("What azure-functions-doctor reports")."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCTOR = Path(sys.executable).parent / "azure-functions-doctor"
# Checks that can only skip here because the doctor does not parse Bicep modules; our own pycep
# tests assert what they would (tests/infra/test_flex_deploy.py).
FLEX_CHECKS_COVERED_BY_PYCEP = {"check_flex_runtime_config", "check_flex_deployment_storage"}


def repository_snapshot(destination: Path) -> Path:
    """The repository as a fresh clone has it (tracked and new, not ignored, files): what the
    doctor should judge, without virtual environments and node_modules to walk through."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        source = REPO / rel
        if source.is_file():
            target = destination / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    assert DOCTOR.exists(), f"{DOCTOR} is missing: it is in requirements-dev.txt"
    snapshot = repository_snapshot(tmp_path_factory.mktemp("repo"))
    output = snapshot.parent / "doctor.json"
    env = {**os.environ, "NO_COLOR": "1"}
    # The doctor runs from the project's virtual environment, as `make test` does.
    if sys.prefix != sys.base_prefix:
        env["VIRTUAL_ENV"] = sys.prefix
    done = subprocess.run(
        [
            str(DOCTOR),
            "doctor",
            "--profile",
            "full",
            "--hosting-plan",
            "flex-consumption",
            "--path",
            str(snapshot),
            "--format",
            "json",
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    data = json.loads(output.read_text())
    data["returncode"] = done.returncode
    data["stderr"] = done.stderr
    return data


def items(report: dict, status: str) -> dict[str, str]:
    return {
        item["rule_id"]: item["value"]
        for section in report["results"]
        for item in section["items"]
        if item["status"] == status
    }


def explained_in_deploy_guide() -> set[str]:
    text = (REPO / "docs" / "deploy.md").read_text()
    section = text.split("### What azure-functions-doctor reports", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`(check_\w+)`", section))


def test_doctor_reports_no_failure(report: dict) -> None:
    assert report["metadata"]["hosting_plan"] == "flex-consumption"
    assert report["metadata"]["programming_model"] == "v2"
    failed = items(report, "fail")
    assert not failed, failed
    assert report["returncode"] == 0, report["stderr"][-2000:]
    assert len(items(report, "pass")) >= 20


def test_every_remaining_warning_is_explained_in_the_deploy_guide(report: dict) -> None:
    warned = items(report, "warn")
    explained = explained_in_deploy_guide()
    assert set(warned) <= explained, {k: v for k, v in warned.items() if k not in explained}


def test_the_deploy_guide_explains_no_warning_that_is_gone(report: dict) -> None:
    reported = set(items(report, "warn")) | set(items(report, "skip"))
    stale = explained_in_deploy_guide() - reported
    assert not stale, f"docs/deploy.md explains doctor findings it no longer reports: {stale}"


def test_flex_checks_the_doctor_cannot_read_are_ours(report: dict) -> None:
    skipped = items(report, "skip")
    for rule in FLEX_CHECKS_COVERED_BY_PYCEP:
        # If a new doctor version reads Bicep modules, these pass instead: fine too.
        assert rule in skipped or rule in items(report, "pass"), rule
    assert explained_in_deploy_guide() >= FLEX_CHECKS_COVERED_BY_PYCEP


def test_fixed_findings_stay_fixed(report: dict) -> None:
    passed = items(report, "pass")
    for rule in (
        "check_host_json_log_level_conflict",  # host.json default vs. category levels
        "check_blueprint_registration",  # every blueprint registered under its own name
        "check_venv",  # run from the project's virtual environment
        "check_binding_connection_resolution",  # the test apps are not scanned
        "check_dev_storage_connection",  # the local example settings are not deployable
        "check_funcignore",
    ):
        assert rule in passed, f"{rule}: {items(report, 'warn').get(rule)}"


def test_doctor_ignores_what_the_package_leaves_out() -> None:
    # pyproject's doctor excludes follow .funcignore, so the doctor judges the deployed app.
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["azure-functions-doctor"]
    funcignore = {
        line.strip()
        for line in (REPO / ".funcignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for excluded in config["exclude"]:
        assert excluded in funcignore, f"{excluded} is excluded from the doctor but deployed"
    for tool in ("admin", "bench", "devhost", "sandbox", "tests"):
        assert tool in config["exclude"]
    assert "ignore" not in config, "fix or explain findings; do not silence rules"
