"""Turning the words on the command line into each parameter's value, without pydantic.

Typer 0.29 coerces every parameter value through a pydantic `TypeAdapter`, built on first use:
loading pydantic for that costs a command more CPU than all the rest of its start-up. Our
parameters are only of a few plain types (text, whole or real numbers with optional bounds,
flags, the output-format enums, lists of text), so each of those gets a coercion of its own here;
a parameter of any other type keeps Typer's. Older Typers (on Click's own types, no pydantic) have
no such hook and are left as they are.
"""

from __future__ import annotations

import sys
from enum import Enum
from typing import Any, get_args, get_origin

import typer

_BadParameter = typer.BadParameter


class PlainValue:
    """The coercion of one parameter whose annotation is one of the plain types above; the same
    contract as Typer's `RuntimeParam.coerce`."""

    def __init__(self, convert: Any, many: bool):
        self.convert = convert
        self.many = many

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        multi = param.multiple or param.nargs == -1
        if value is None:
            return () if multi else None
        if multi and isinstance(value, str):
            raise _BadParameter("Value must be an iterable.", ctx=ctx, param=param)
        try:
            if self.many:
                items = value if isinstance(value, (list, tuple)) else [value]
                return [self.convert(item) for item in items]
            return self.convert(value)
        except ValueError as error:
            raise _BadParameter(str(error), ctx=ctx, param=param) from None


def install(command: Any) -> None:
    """Give every parameter of `command` and its subcommands a plain coercion where one fits."""
    for param in command.params:
        _install(param)
    made = command.get_help_option

    def help_option(ctx: Any) -> Any:  # `--help` is made on demand, for each invocation
        option = made(ctx)
        if option is not None:
            _install(option)
        return option

    command.get_help_option = help_option
    for sub in (getattr(command, "commands", None) or {}).values():
        install(sub)


def _install(param: Any) -> None:
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None or not hasattr(param, "get_runtime_param"):
        return
    annotation, info = descriptor.annotation, descriptor.parameter_info
    many = get_origin(annotation) is list
    leaf = get_args(annotation)[0] if many else annotation
    convert = converter(leaf, info)
    if convert is None:
        return
    plain = PlainValue(convert, many)
    param.get_runtime_param = lambda: plain


def converter(annotation: Any, info: Any) -> Any:
    """A function from one command-line value to `annotation`, raising ValueError with what was
    wrong; None for a type (or a Typer feature: parser, clamp) handled only by Typer."""
    if getattr(info, "parser", None) is not None or getattr(info, "clamp", False):
        return None
    if annotation is str:
        return _text
    if annotation is bool:
        return _flag
    if annotation in (int, float):
        return _number(annotation, info.min, info.max)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return _choice(annotation, info.case_sensitive)
    return None


def _text(value: Any) -> str:
    if isinstance(value, bytes):  # an argv word that is not valid in the locale's encoding
        return value.decode(sys.getfilesystemencoding(), "replace")
    return str(value)


_TRUE = ("1", "true", "t", "yes", "y", "on")
_FALSE = ("0", "false", "f", "no", "n", "off", "")


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"{value!r} is not true or false.")


def _number(kind: type, low: float | None, high: float | None) -> Any:
    noun = "a whole number" if kind is int else "a number"

    def convert(value: Any) -> int | float:
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not {noun}.")
        if isinstance(value, kind):
            number = value
        else:
            try:
                number = kind(value.strip() if isinstance(value, str) else value)
            except (TypeError, ValueError):
                raise ValueError(f"{value!r} is not {noun}.") from None
        if low is not None and number < low:
            raise ValueError(f"{number} is below the least allowed, {low}.")
        if high is not None and number > high:
            raise ValueError(f"{number} is above the most allowed, {high}.")
        return number

    return convert


def _choice(enum: type[Enum], case_sensitive: bool) -> Any:
    def key(text: str) -> str:
        return text if case_sensitive else text.casefold()

    by_value = {key(str(member.value)): member for member in enum}

    def convert(value: Any) -> Enum:
        if isinstance(value, enum):
            return value
        member = by_value.get(key(str(value)))
        if member is None:
            choices = ", ".join(repr(str(m.value)) for m in enum)
            raise ValueError(f"{str(value)!r} is not one of {choices}.")
        return member

    return convert
