"""Fixtures for the offline infra checks: pycep trees of infra/ and one checkov run per session."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
INFRA_VENV = REPO / ".venv-infra"


def infra_tool(name: str) -> Path:
    """Path of a tool installed in .venv-infra; skips locally (fails in CI) when it is missing."""
    tool = INFRA_VENV / "bin" / name
    if not tool.exists():
        message = f"{tool} is missing: run `make .venv-infra/.installed` (requirements-infra.txt)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return tool


@pytest.fixture(scope="session")
def bicep() -> dict[str, dict]:
    """Every infra Bicep file parsed by pycep-parser: {"main.bicep": tree, "app/x.bicep": tree}."""
    python = infra_tool("python")
    dump = Path(__file__).with_name("bicep_dump.py")
    result = subprocess.run(
        [str(python), str(dump), str(INFRA)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"pycep could not parse infra/:\n{result.stderr[-3000:]}"
    return json.loads(result.stdout)


@pytest.fixture(scope="session")
def checkov_report() -> dict:
    """checkov's JSON report for `checkov --framework bicep --skip-download -d infra`."""
    checkov = infra_tool("checkov")
    result = subprocess.run(
        [str(checkov), "--framework", "bicep", "--skip-download", "-d", str(INFRA), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )
    assert result.stdout.strip(), f"checkov printed no report:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    # checkov prints a list when it runs several frameworks, a single object for one.
    report = report[0] if isinstance(report, list) else report
    report["returncode"] = result.returncode
    report["stderr"] = result.stderr
    return report
