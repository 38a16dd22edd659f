"""Every command has help with an example and a section in the README."""

from __future__ import annotations

import re

import pytest

from conftest import ROOT, run_cli
from llmtrace.cli.main import app

COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)
README = (ROOT / "README.md").read_text()


def test_all_commands_listed():
    assert set(COMMANDS) >= {"run", "mock", "ls", "show", "cost", "tag", "feedback", "rm", "prune"}


@pytest.mark.parametrize("name", COMMANDS)
def test_command_has_help_and_readme_section(name):
    r = run_cli(name, "--help")
    assert r.code == 0 and "Example: llmtrace" in r.stdout, r.stdout
    assert re.search(rf"^### `llmtrace {name}\b", README, re.M), f"README has no section for {name}"
