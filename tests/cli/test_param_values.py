"""Option values are coerced without pydantic, with the same results and a clear message (exit 2)
for a value that is not one."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from runai_lite.cli import runai
from runai_lite.cli.app import Output
from runai_lite.cli.param_values import converter

runner = CliRunner()


class Bounds:
    def __init__(self, low=None, high=None, case_sensitive=True):
        self.min, self.max, self.case_sensitive, self.parser, self.clamp = low, high, case_sensitive, None, False


@pytest.mark.parametrize(("annotation", "info", "value", "expected"), [
    (str, Bounds(), "team-a", "team-a"),
    (int, Bounds(0), " 12", 12),
    (int, Bounds(0, 100), "100", 100),
    (float, Bounds(), "0.5", 0.5),
    (bool, Bounds(), "yes", True),
    (Output, Bounds(), "wide", Output.WIDE),
    (Output, Bounds(), Output.JSON, Output.JSON),
    (Output, Bounds(case_sensitive=False), "YAML", Output.YAML),
])
def test_values_become_their_types(annotation, info, value, expected):
    converted = converter(annotation, info)(value)
    assert converted == expected and type(converted) is type(expected)


@pytest.mark.parametrize(("annotation", "info", "value", "message"), [
    (int, Bounds(), "abc", "'abc' is not a whole number."),
    (int, Bounds(), "1.5", "'1.5' is not a whole number."),
    (int, Bounds(0), "-1", "-1 is below the least allowed, 0."),
    (int, Bounds(0, 100), "101", "101 is above the most allowed, 100."),
    (float, Bounds(), "half", "'half' is not a number."),
    (Output, Bounds(), "xml", "'xml' is not one of 'table', 'wide', 'json', 'yaml'."),
    (Output, Bounds(), "JSON", "'JSON' is not one of"),
])
def test_a_value_that_is_not_one_says_what_was_wrong(annotation, info, value, message):
    with pytest.raises(ValueError, match="^" + message.replace(".", r"\.").replace("(", r"\(")):
        converter(annotation, info)(value)


def test_types_it_does_not_know_stay_with_typer():
    from pathlib import Path

    assert converter(Path, Bounds()) is None and converter(list, Bounds()) is None


@pytest.mark.parametrize(("args", "shown"), [
    (["logs", "j1", "-p", "team-a", "--tail", "abc"], "'abc' is not a whole number."),
    (["logs", "j1", "-p", "team-a", "--tail", "-1"], "-1 is below the least allowed, 0."),
    (["list", "-o", "xml"], "'xml' is not one of 'table', 'wide', 'json', 'yaml'."),
    (["submit", "x", "-i", "img", "--backoff-limit", "101"], "101 is above the most allowed, 100."),
])
def test_bad_option_values_exit_2_naming_the_option(args, shown):
    result = runner.invoke(runai.app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert shown in result.output and "Invalid value for" in result.output


def test_every_plain_parameter_of_the_cli_gets_the_pydantic_free_coercion():
    command = typer.main.get_command(runai.app)
    left = []

    def walk(cmd):
        for param in cmd.params:
            if hasattr(param, "get_runtime_param") and type(param.get_runtime_param()).__name__ != "PlainValue":
                left.append((cmd.name, param.name))
        for sub in (getattr(cmd, "commands", None) or {}).values():
            walk(sub)

    walk(command)
    assert left == []
