"""The README documents what the tool offers (Datasette's habit: docs tested against code)."""

from __future__ import annotations

import re

import pytest

from conftest import REPO
from flexybulk.cli import cli
from flexybulk.reading.layout import RESULT_COLUMNS
from flexybulk.model import RowStatus

README = (REPO / "README.md").read_text(encoding="utf-8")


def _options():
    for name, command in sorted(cli.commands.items()):
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--") and opt not in ("--help",):
                    yield name, opt


@pytest.mark.parametrize("command, option", sorted(set(_options())))
def test_every_command_line_option_is_in_the_readme(command, option):
    assert re.search(rf"`[^`]*{re.escape(option)}\b", README), f"flexybulk {command} {option} is not in the README"


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_is_in_the_readme(command):
    assert f"flexybulk {command}" in README


@pytest.mark.parametrize("column", sorted(set(RESULT_COLUMNS)))
def test_every_result_sheet_column_is_in_the_readme(column):
    assert re.search(rf"\b{column}\b", README), column


@pytest.mark.parametrize("status", [s.value for s in RowStatus])
def test_every_status_is_in_the_readme(status):
    assert f"| {status} |" in README or f"({status}/" in README, status
