"""Errors a user can cause (bad profile, bad scenario, bad flag): printed cleanly, exit status 2."""

from __future__ import annotations

from typing import Callable, Iterable, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class UserError(Exception):
    """An error in something the user gave us. The CLI prints it without a traceback, exits 2."""

    exit_code = 2


class ConfigError(UserError):
    """One or more problems in a YAML file, each as `FILE:LINE: field.path: message`."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def check_each(items: Iterable[T], load: Callable[[T], R],
               on_ok: Callable[[T, R], None]) -> None:
    """Load every item (a file), calling `on_ok` for each good one, then raise one ConfigError
    with the problems of all the bad ones: a single run reports everything to fix."""
    problems: list[str] = []
    for item in items:
        try:
            result = load(item)
        except ConfigError as exc:
            problems.extend(exc.problems)
        except UserError as exc:
            problems.append(str(exc))
        else:
            on_ok(item, result)
    if problems:
        raise ConfigError(problems)
