"""Every `python -m admin …` and `make …` command the docs show is real: admin commands parse
with the command line's own parser, make targets exist in the Makefile. So the docs cannot drift
from the code again."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from admin.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md"]
# Shell syntax that ends a command or redirects its input/output.
SEPARATORS = {";", "&&", "||", "|", "&", "(", ")"}
REDIRECTIONS = {"<", "<<", "<<<", ">", ">>", ">&", "&>", "2>", "2>>"}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
# <name>, <their address>: placeholders for a value, not redirections.
PLACEHOLDER = re.compile(r"<[A-Za-z][^<>\n]*>")


@dataclass(frozen=True)
class Command:
    where: str
    text: str
    kind: str  # "admin" or "make"
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return f"{self.where}: {self.text}"


# Fenced blocks that show a session: only their `$ ` lines are commands, the rest is output.
TRANSCRIPTS = {"text", "console", "output", "log"}


def code_snippets(text: str) -> list[tuple[int, str]]:
    """(line number, code) for each logical line of a fenced block (continuations joined, shell
    prompts stripped; in a transcript only the prompted lines) and each inline code span outside
    fenced blocks."""
    snippets: list[tuple[int, str]] = []
    in_fence = False
    transcript = False
    pending = ""
    start = 0
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            transcript = line.strip().removeprefix("```").strip().lower() in TRANSCRIPTS
            pending = ""
            continue
        if in_fence and transcript and not pending and not line.startswith("$ "):
            continue
        if in_fence:
            if not pending:
                start = number
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            logical = (pending + line).strip()
            pending = ""
            snippets.append((start, logical.removeprefix("$ ")))
        else:
            snippets += [(number, span) for span in re.findall(r"`([^`\n]+)`", line)]
    return snippets


def shell_commands(code: str) -> list[list[str]]:
    """The simple commands of a line of shell, each as its words (quotes removed)."""
    lexer = shlex.shlex(PLACEHOLDER.sub("PLACEHOLDER", code), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        tokens = list(lexer)
    except ValueError:  # an unbalanced quote: prose, not a command
        return []
    commands, current = [], []
    for token in tokens:
        if token in SEPARATORS:
            commands.append(current)
            current = []
        else:
            current.append(token)
    commands.append(current)
    return [c for c in commands if c]


def without_redirections(words: list[str]) -> list[str]:
    kept, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word in REDIRECTIONS:
            skip = True
        else:
            kept.append(word)
    return kept


def commands_in(path: Path) -> list[Command]:
    found = []
    for number, code in code_snippets(path.read_text()):
        if "python -m admin" not in code and not re.search(r"(^|\s)make\b", code):
            continue
        for words in shell_commands(code):
            env = []
            while words and ASSIGNMENT.match(words[0]):
                name, _, value = words.pop(0).partition("=")
                env.append((name, value))
            words = without_redirections(words)
            where = f"{path.relative_to(REPO)}:{number}"
            if words[:3] in (["python", "-m", "admin"], ["python3", "-m", "admin"]):
                found.append(Command(where, code, "admin", tuple(words[3:]), tuple(env)))
            elif words[:1] == ["make"]:
                found.append(Command(where, code, "make", tuple(words[1:]), tuple(env)))
    return found


ALL_COMMANDS = [c for path in DOCUMENTS for c in commands_in(path)]


def test_the_docs_show_admin_and_make_commands() -> None:
    kinds = {c.kind for c in ALL_COMMANDS}
    assert kinds == {"admin", "make"}
    admin_commands = {c.args[1] for c in ALL_COMMANDS if c.kind == "admin" and len(c.args) > 1}
    assert {"add", "authenticate", "test", "list", "show", "remove"} <= admin_commands


@pytest.mark.parametrize(
    "command", [c for c in ALL_COMMANDS if c.kind == "admin"], ids=lambda c: c.where
)
def test_every_admin_command_in_the_docs_parses(command: Command) -> None:
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
        try:
            build_parser().parse_args(list(command.args))
        except SystemExit as exit_:
            help_asked = "--help" in command.args or "-h" in command.args
            assert exit_.code == 0 and help_asked, f"{command}\n{errors.getvalue()}"


@pytest.mark.parametrize(
    "command", [c for c in ALL_COMMANDS if c.kind == "make"], ids=lambda c: c.where
)
def test_every_make_command_in_the_docs_is_a_target(command: Command) -> None:
    # `make` alone runs the default goal (help); --dry-run runs no recipe.
    done = subprocess.run(
        ["make", "--dry-run", "--no-print-directory", *command.args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **dict(command.env), "MAKEFLAGS": ""},
        check=False,
    )
    assert done.returncode == 0, f"{command}\n{done.stderr}"


def test_the_extractor_sees_through_shell_syntax() -> None:
    doc = REPO / "docs" / "_example.md"
    text = (
        "Run `python -m admin connections authenticate <name>` once.\n"
        "```bash\n"
        "export KEY_VAULT_URL  # the vault\n"
        "python -m admin connections add documizers.com --mode app \\\n"
        '  --tenant "$TENANT_ID" --client-id x --secret-stdin <<< "$SECRET"\n'
        "$ SANDBOX_PORT=9443 make run && python -m admin connections list --json | jq .\n"
        "```\n"
    )
    found = []
    for number, code in code_snippets(text):
        for words in shell_commands(code):
            found.append((number, without_redirections(words)))
    assert (1, ["python", "-m", "admin", "connections", "authenticate", "PLACEHOLDER"]) in found
    add = next(w for n, w in found if n == 4)
    assert add[-2:] == ["x", "--secret-stdin"] and "$TENANT_ID" in add
    assert (6, ["SANDBOX_PORT=9443", "make", "run"]) in found
    assert (6, ["python", "-m", "admin", "connections", "list", "--json"]) in found
    assert not doc.exists()


def test_a_wrong_flag_would_be_caught() -> None:
    wrong = ("connections", "add", "x", "--mode", "app", "--tenant-id", "t", "--client-id", "c")
    with contextlib.redirect_stderr(io.StringIO()), pytest.raises(SystemExit):
        build_parser().parse_args(list(wrong))
