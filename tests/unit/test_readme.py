"""The README is accurate: its two opening commands are what CI runs, and every `v6ray ...`
command it shows is accepted by the real command-line parser."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from v6ray.cli.main import make_parser

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", README, flags=re.S)


def test_readme_opens_with_the_two_commands_and_ci_runs_the_second_verbatim():
    first, second = (body.strip() for _, body in BLOCKS[:2])
    assert README.lstrip().startswith("# v6ray")
    assert first == "python -m pip install -e . && v6ray up --simulate"
    assert second == 'python -m pip install -e ".[test]" && python -m pytest'
    assert second in (ROOT / ".ci" / "run").read_text()


def test_every_cli_line_in_the_readme_parses():
    lines = [
        line.strip()
        for lang, body in BLOCKS
        if lang == "bash"
        for line in body.splitlines()
        if line.strip().startswith("v6ray ")
    ]
    assert len(lines) >= 5
    parser = make_parser()
    for line in lines:
        argv = shlex.split(line)[1:]
        parser.parse_args(argv)  # argparse exits on anything it does not accept


def test_python_example_compiles():
    python = [body for lang, body in BLOCKS if lang == "python"]
    assert python
    for body in python:
        compile(body, "README.md", "exec")
