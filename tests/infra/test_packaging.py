"""The deployment package, built as azd builds it, runs on its own: a fresh virtual environment with
requirements.txt only imports function_app and indexes every function, and none of the local
tools (sandbox, devhost, admin, bench, tests) is in the package or gets imported.

azd (>= 1.18.0) zips the service directory minus what .funcignore names (gitignore syntax), and
always leaves out `.azure` and, for function apps, `local.settings.json` (Azure/azure-dev issue
4381 and pull request 5383). Flex Consumption then installs requirements.txt (remote build).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pathspec
import pytest

from shared import settings
from tests.conftest import fresh_function_app

REPO = Path(__file__).resolve().parents[2]
TOOLS = ("sandbox", "devhost", "admin", "bench", "tests")
# Left out by azd whatever the ignore file says.
AZD_ALWAYS_EXCLUDED = (".azure/", "local.settings.json")
# The top level of a correct package: the app, its packages and what the host reads.
EXPECTED_TOP_LEVEL = {
    ".funcignore",
    "function_app.py",
    "host.json",
    "requirements.txt",
    "api_meta",
    "auth_routes",
    "create_draft",
    "forward_mail",
    "export_mail",
    "move_mail",
    "operations_api",
    "reply_mail",
    "send_mail",
    "shared",
    "signin_health",
}


def ignore_spec(root: Path) -> pathspec.PathSpec:
    lines = (root / ".funcignore").read_text().splitlines()
    return pathspec.GitIgnoreSpec.from_lines([*lines, *AZD_ALWAYS_EXCLUDED])


def build_package(root: Path, destination: Path) -> list[str]:
    """Copy what azd would zip from `root` into `destination`; returns the relative file paths."""
    spec = ignore_spec(root)
    copied: list[str] = []
    for directory, subdirs, files in os.walk(root):
        rel_dir = Path(directory).relative_to(root)
        # An ignored directory is never entered (as in git and azd).
        subdirs[:] = sorted(
            d for d in subdirs if not spec.match_file((rel_dir / d).as_posix() + "/")
        )
        for name in sorted(files):
            rel = (rel_dir / name).as_posix()
            if spec.match_file(rel):
                continue
            target = destination / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(directory) / name, target)
            copied.append(rel)
    return copied


@pytest.fixture(scope="session")
def package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    destination = tmp_path_factory.mktemp("package")
    return destination, build_package(REPO, destination)


@pytest.fixture(scope="session")
def package_venv(package: tuple[Path, list[str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with the package's requirements.txt and nothing else (built once
    per test session; pip's cache makes it quick)."""
    package_dir, _ = package
    venv = tmp_path_factory.mktemp("package-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    # pip talks to the package index, not to the sandbox: the CA overrides other tests set for
    # the sandbox (tests/conftest.py) would make it distrust the index.
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
    done = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(package_dir / "requirements.txt"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return python


@pytest.fixture(scope="session")
def package_index(package: tuple[Path, list[str]], package_venv: Path) -> dict:
    package_dir, _ = package
    script = Path(__file__).with_name("package_index.py")
    # -I: no PYTHONPATH, no user site, no current directory on sys.path; only the package.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    done = subprocess.run(
        [str(package_venv), "-I", str(script), str(package_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_package_holds_the_app_and_nothing_else(package: tuple[Path, list[str]]) -> None:
    _, files = package
    top_level = {f.split("/")[0] for f in files}
    assert top_level == EXPECTED_TOP_LEVEL
    for tool in TOOLS:
        assert not any(f == tool or f.startswith(f"{tool}/") for f in files), tool
    assert not any(f.endswith((".pyc", ".md")) or "__pycache__" in f for f in files)
    assert not any(f.startswith("requirements-") for f in files)
    assert "local.settings.json" not in files and "local.settings.example.json" not in files


def test_package_build_honours_the_ignore_file_like_azd(tmp_path: Path) -> None:
    # The builder itself: gitignore semantics, azd's fixed exclusions, nested matches.
    (tmp_path / ".funcignore").write_text("tests\n*.md\n# a comment\n/only_root.txt\n")
    for rel in (
        "function_app.py",
        "README.md",
        "tests/test_x.py",
        "shared/tests/helper.py",
        "only_root.txt",
        "shared/only_root.txt",
        "local.settings.json",
        ".azure/prod/.env",
        "shared/notes.md",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    files = build_package(tmp_path, tmp_path.parent / f"{tmp_path.name}-out")
    assert files == [".funcignore", "function_app.py", "shared/only_root.txt"]


def test_fresh_venv_indexes_every_function_of_the_package(package_index: dict) -> None:
    expected = {
        f.get_function_name(): json.loads(f.get_function_json())
        for f in fresh_function_app().get_functions()
    }
    assert package_index["functions"] == expected
    bindings = [b for f in package_index["functions"].values() for b in f["bindings"]]
    routes = {b["route"] for b in bindings if b["type"] == "httpTrigger"}
    assert {"mail/send", "mail/move", "mail/draft", "health", "operations/{operationId}"} <= routes
    queues = {b["queueName"] for b in bindings if b["type"] == "queueTrigger"}
    assert queues == set(settings.QUEUES)
    assert any(b["type"] == "timerTrigger" for b in bindings)


def test_importing_the_package_loads_none_of_the_local_tools(package_index: dict) -> None:
    loaded = set(package_index["modules"])
    assert "function_app" in loaded and "shared" in loaded
    assert not loaded & set(TOOLS), sorted(loaded & set(TOOLS))
    # Development-only libraries are not installed, so nothing can have needed them.
    dev_only = {"pytest", "trustme", "playwright", "schemathesis", "hypothesis", "pathspec"}
    assert not loaded & dev_only
