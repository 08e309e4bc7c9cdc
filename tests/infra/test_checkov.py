"""checkov's Bicep checks pass over infra/, and every skipped check says why."""

from __future__ import annotations

import re
from pathlib import Path

INFRA = Path(__file__).resolve().parents[2] / "infra"
SKIP = re.compile(r"//\s*checkov:skip=([A-Z0-9_]+)(?::\s*(.*))?")


def test_checkov_passes_with_no_failed_check_or_parse_error(checkov_report: dict) -> None:
    failed = [
        f"{r['check_id']} {r['resource']} ({r['file_path']})"
        for r in checkov_report["results"]["failed_checks"]
    ]
    assert not failed, "checkov failed:\n" + "\n".join(failed)
    assert not checkov_report["results"]["parsing_errors"]
    assert checkov_report["summary"]["passed"] > 0
    assert checkov_report["returncode"] == 0


def test_checkov_ran_every_check_without_crashing(checkov_report: dict) -> None:
    # A check that crashes on an expression it cannot evaluate is silently not applied.
    assert "Failed to run check" not in checkov_report["stderr"]


def test_every_skip_carries_a_reason_and_is_used(checkov_report: dict) -> None:
    declared = {}
    for path in INFRA.rglob("*.bicep"):
        for check_id, reason in SKIP.findall(path.read_text()):
            assert len(reason.strip()) >= 20, f"{path.name}: skip of {check_id} has no real reason"
            declared[check_id] = path.name
    skipped = {r["check_id"] for r in checkov_report["results"]["skipped_checks"]}
    assert set(declared) == skipped, "a skip comment no longer matches a check (remove it)"
