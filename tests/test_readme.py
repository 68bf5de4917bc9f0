"""The README's commands exist with the options it shows, so the README cannot rot silently.

Every ``cdp ...`` line in a bash block is parsed; its command must answer ``--help`` and every
``--option`` it uses must be one that command declares. (The commands themselves run against
data in the demo and in the tests of each area.)
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cdp_spark.cli import app

README = Path(__file__).resolve().parent.parent / "README.md"


def _cdp_lines() -> list[str]:
    text = README.read_text(encoding="utf-8")
    lines: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            command = line.split("#", 1)[0].strip()
            if command.startswith("cdp "):
                lines.append(command)
    return lines


def test_readme_shows_the_main_commands() -> None:
    commands = {shlex.split(line)[1] for line in _cdp_lines()}
    main = {"tables", "show", "profile", "explain", "why", "resolve", "publish", "train"}
    assert main <= commands


@pytest.mark.parametrize("line", _cdp_lines())
def test_readme_command_and_its_options_exist(line: str) -> None:
    words = shlex.split(line)[1:]
    path = [words[0]]
    if words[0] in {"segments"} and len(words) > 1:
        path.append(words[1])
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    help_text = re.sub(r"\s+", " ", result.output)
    for option in (w.split("=", 1)[0] for w in words if w.startswith("--")):
        assert option in help_text, f"{line}: {option} is not an option of cdp {' '.join(path)}"
