"""Errors a user can cause (bad profile, bad scenario, bad flag): printed cleanly, exit status 2."""

from __future__ import annotations


class UserError(Exception):
    """An error in something the user gave us. The CLI prints it without a traceback, exits 2."""

    exit_code = 2


class ConfigError(UserError):
    """One or more problems in a YAML file, each as `FILE:LINE: field.path: message`."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))
