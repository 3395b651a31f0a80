"""Every command's --help: plain text (no reStructuredText from docstrings), and -v/-q offered everywhere."""

from __future__ import annotations

import re

import pytest

from tornado_engine.cli import main

_RST = re.compile(r"``|:(?:meth|mod|class|func|attr|exc):`")


def _help(capsys: pytest.CaptureFixture[str], *command: str) -> str:
    with pytest.raises(SystemExit) as ended:
        main([*command, "--help"])
    assert ended.value.code == 0
    return capsys.readouterr().out


def _subcommands(text: str) -> list[str]:
    """The ``{a,b,c}`` line under "positional arguments:", if the command has subcommands."""
    found = re.search(r"positional arguments:\n  \{([\w,-]+)\}", text)
    return found[1].split(",") if found else []


def test_help_is_plain_text_and_takes_v_and_q_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    pending: list[tuple[str, ...]] = [()]
    seen = []
    while pending:
        command = pending.pop()
        text = _help(capsys, *command)
        seen.append(" ".join(command))
        assert not _RST.search(text), f"markup in `{' '.join(command)} --help`:\n{text}"
        assert "-v, --verbose" in text and "-q, --quiet" in text, " ".join(command)
        pending += [(*command, name) for name in _subcommands(text)]
    assert {"run", "jobs list", "batch rename", "worker", "metadata"} <= set(seen)
