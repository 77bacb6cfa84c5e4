"""Every command and option of the command line has help text, and an option's help states its default."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from envscaler.cli import build_parser


def walk(parser: argparse.ArgumentParser, path: str = "envscaler-runtime") -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                assert helps.get(name), f"{path} {name}: the command has no help"
                yield from walk(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def renderings(value: object) -> set[str]:
    """How a help text may spell a default: as written, a number without its trailing .0, or a size in MiB."""
    shown = {str(value), repr(value)}
    if isinstance(value, float | int) and not isinstance(value, bool):
        shown.add(f"{value:g}")
        if isinstance(value, int) and value >= 1 << 20 and value % (1 << 20) == 0:
            shown.add(f"{value >> 20} MiB")
    if value == "":
        shown.add("''")
    return shown


def test_every_option_has_help_that_states_its_default() -> None:
    missing, silent = [], []
    for path, action in walk(build_parser()):
        name = f"{path} {'/'.join(action.option_strings) or action.dest}"
        if not action.help or action.help == argparse.SUPPRESS:
            missing.append(name)
            continue
        default = action.default
        if default is None or default is False or action.required or isinstance(action, argparse._StoreTrueAction):
            continue  # no default to state (an unset option, a flag that is off, a required value)
        if isinstance(default, list | tuple):
            continue
        if not any(shown in action.help for shown in renderings(default)) and "default" not in action.help:
            silent.append(f"{name} (default {default!r}): {action.help}")
    assert missing == [], "options without help:\n" + "\n".join(missing)
    assert silent == [], "options whose help does not state the default:\n" + "\n".join(silent)
