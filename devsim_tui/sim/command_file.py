"""Timed command files (`--commands cmds.yaml`): a YAML list of `{at, command, args}`.

    - at: 10m
      command: scale
      args: {replicas: 8}
    - at: 1h
      command: crash-node
      args: {node: primary}

Each entry's command is validated against the engine's command schema, so a typo is reported as
`FILE:LINE: field.path: message` before the run starts. Never imports the UI.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from devsim_tui.config.durations import parse_duration
from devsim_tui.config.yamlsrc import load_list
from devsim_tui.sim import commands as C


class TimedCommand(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    at: float = Field(description="Simulated time since the start: 90s, 10m, 1h30m or seconds")
    command: str
    args: dict[str, Any] = Field(default_factory=dict)

    @field_validator("at", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)

    @model_validator(mode="after")
    def _known(self) -> TimedCommand:
        try:
            C.build(self.command, self.args)
        except C.CommandError as exc:
            raise ValueError(str(exc)) from None
        return self

    def build(self) -> C.Command:
        return C.build(self.command, self.args)


class CommandsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    commands: list[TimedCommand]


def load_commands(path: str | os.PathLike[str]) -> list[TimedCommand]:
    """Read a commands file (a list, or a mapping with `commands:`), sorted by time."""
    return sorted(load_list(path, CommandsFile, "commands"), key=lambda c: c.at)
