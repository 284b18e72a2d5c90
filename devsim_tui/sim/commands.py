"""Commands: typed values the engine applies at tick boundaries.

One declared schema per command (pydantic), shared by every way a command arrives: a key binding,
the `:` line, the command palette, a `--commands` file, MQTT. A command that fails validation or
cannot apply becomes a `command.rejected` event, never an exception out of the engine.
Never imports the UI.
"""

from __future__ import annotations

import difflib
import shlex
import unicodedata
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from devsim_tui.config.durations import MAX_SPEED, MIN_SPEED, parse_speed  # noqa: F401

#: Bounds every source of commands shares (keys, `:` lines, MQTT, commands files, drills):
#: anything outside them is refused when the command is built, never when it applies.
MAX_LINE_CHARS = 2000  # a `:` command line
MAX_TEXT_CHARS = 500  # any one text argument


def text_problem(value: str) -> str | None:
    """Why `value` cannot be a command's text argument (too long, a control character, a lone
    surrogate that no UTF-8 payload or log can carry), or None."""
    if len(value) > MAX_TEXT_CHARS:
        return f"at most {MAX_TEXT_CHARS} characters, got {len(value)}"
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cs":
            return f"not valid Unicode text (lone surrogate U+{ord(ch):04X})"
        if category == "Cc":
            return f"must not contain control characters (U+{ord(ch):04X})"
    return None


class Command(BaseModel):
    """Base of all commands. `name` is what users type; positional args fill fields in order.

    Numbers are finite (`allow_inf_nan=False`) and text arguments are bounded, printable
    Unicode (`text_problem`), for every command type, including those registered later.
    """

    # defer_build: a command type's validator is built when one is first made (most of the
    # seventy-odd types never are in a session; building them all cost every start).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                              defer_build=True)
    name: ClassVar[str]
    positional: ClassVar[tuple[str, ...]] = ()
    summary: ClassVar[str] = ""
    #: The UI asks for confirmation before sending it (ui/routing.py adds when an otherwise
    #: harmless command asks: `scale 0`, a bad release, the emergency stop).
    hurts: ClassVar[bool] = False
    #: The rest of the line, as typed, is its one positional field (quotes optional).
    free_text: ClassVar[bool] = False

    @model_validator(mode="before")
    @classmethod
    def _plain_text(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, value in data.items():
                problem = text_problem(value) if isinstance(value, str) else None
                if problem:
                    raise ValueError(f"{key}: {problem}")
        return data

    def args(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)

    def describe(self) -> str:
        parts = [self.name] + [f"{k}={v}" for k, v in self.args().items()]
        return " ".join(parts)


class Scale(Command):
    name = "scale"
    positional = ("replicas",)
    summary = "Set the app server replica count (the HPA will still adjust it if active)"
    replicas: int = Field(ge=0, le=100_000)


class SetSpeed(Command):
    name = "set-speed"
    positional = ("speed",)
    summary = "Simulated seconds per wall second: a number (1, 10, 60, ...) or 'max'"
    speed: float | Literal["max"]

    @field_validator("speed", mode="before")
    @classmethod
    def _speed(cls, v: Any) -> float | str:
        return parse_speed(v)


class Pause(Command):
    name = "pause"
    positional = ("paused",)
    summary = "Pause or resume the simulated clock (toggle when no argument)"
    paused: bool | None = None


class Backup(Command):
    name = "backup"
    positional = ("node",)
    summary = "Take a base backup now (of the primary, or of the named node)"
    node: str | None = None


class Restore(Command):
    name = "restore"
    positional = ("to", "time")
    summary = ("Point-in-time recovery: 'restore latest', 'restore --to 09:42' (simulated clock) "
               "or 'restore --to -15m' (that long ago); the database is down while it runs")
    hurts = True
    to: str = "latest"
    time: str | None = None

    @model_validator(mode="after")
    def _target(self) -> Restore:
        if self.to in ("--to", "to"):
            if self.time is None:
                raise ValueError("--to needs a time: latest, HH:MM[:SS] or -DURATION")
            object.__setattr__(self, "to", self.time)
            object.__setattr__(self, "time", None)
        elif self.time is not None:
            raise ValueError(f"too many arguments ({self.time!r})")
        restore_target(self.to, 0.0, 0.0)  # raises on a malformed time
        return self


def restore_target(text: str, t: float, t0_abs: float) -> float | None:
    """Simulated time a `restore --to` names (None: latest): `HH:MM[:SS]` is the latest such
    clock time not after now, `-DURATION` is that long before now."""
    from devsim_tui.config.durations import parse_duration

    text = text.strip()
    if text == "latest":
        return None
    if text.startswith("-"):
        try:
            return t - parse_duration(text[1:])
        except ValueError as exc:
            raise ValueError(f"bad duration {text!r}: {exc}") from None
    parts = text.split(":")
    if 2 <= len(parts) <= 3 and all(p.isdigit() and len(p) <= 2 for p in parts):
        h, m, sec = (int(x) for x in parts + ["0"] * (3 - len(parts)))
        if h < 24 and m < 60 and sec < 60:
            now_abs = t0_abs + t
            day_start = now_abs - now_abs % 86400.0
            at = day_start + h * 3600 + m * 60 + sec
            if at > now_abs:
                at -= 86400.0
            return at - t0_abs
    raise ValueError(f"restore target {text!r}: use latest, HH:MM[:SS] or -DURATION (e.g. -15m)")


class RestartNode(Command):
    name = "restart-node"
    positional = ("node",)
    summary = "Restart a database node (brings a crashed node back)"
    node: str


class CrashNode(Command):
    name = "crash-node"
    positional = ("node",)
    summary = "Crash a database node ('primary' names the current primary)"
    hurts = True
    node: str = "primary"


class Failover(Command):
    name = "failover"
    positional = ("target",)
    summary = "Planned switchover of the primary to a replica (the best one if none named)"
    hurts = True
    target: str | None = None


class AckAlert(Command):
    name = "ack-alert"
    positional = ("alert",)
    summary = "Acknowledge an alert by id or name ('all' for every firing alert)"
    alert: str = "all"


class Silence(Command):
    name = "silence"
    positional = ("alert", "duration")
    summary = "Mute an alert's notifications (name, id or 'all') for a simulated duration"
    alert: str
    duration: str = "1h"
    comment: str | None = None

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        from devsim_tui.config.durations import parse_duration

        if parse_duration(v) <= 0:
            raise ValueError("must be positive")
        return v


class Unsilence(Command):
    name = "unsilence"
    positional = ("alert",)
    summary = "End silences: by silence id (S1), alert name, alert id or 'all'"
    alert: str = "all"


# Drill commands (devsim_tui/drill): declared here with the others so that any input path (the
# `:` line, a --commands file, MQTT) parses and validates them; only an engine running a drill
# applies them, any other engine rejects them ("not supported by this engine"). They live in
# DRILL_COMMANDS, not COMMANDS, because COMMANDS is what the control room lists (help, palette,
# completion), and there they could only be rejected until it hosts a drill.


class DeclareRootCause(Command):
    name = "declare-root-cause"
    positional = ("text",)
    free_text = True
    summary = "Drill: declare the root cause found, in words: 'declare-root-cause the TLS cert expired'"
    text: str = Field(min_length=1, max_length=500)


class Remedy(Command):
    name = "remedy"
    positional = ("name",)
    summary = "Drill: take one of the scenario's operator actions (`drill show` lists them)"
    name_: str = Field(alias="name", min_length=1)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              defer_build=True)

    def args(self) -> dict[str, Any]:
        return {"name": self.name_}


class DrillHint(Command):
    name = "hint"
    positional = ("id",)
    summary = "Drill facilitator: reveal the next hint (or the named one)"
    id: str | None = None


class InjectNext(Command):
    name = "inject-next"
    positional = ("id",)
    summary = "Drill facilitator: fire the next pending inject now (or the named one)"
    id: str | None = None


class SkipInject(Command):
    name = "skip-inject"
    positional = ("id",)
    summary = "Drill facilitator: skip the next pending inject (or the named one)"
    id: str | None = None


class EndDrill(Command):
    name = "end-drill"
    summary = "Drill facilitator: end the drill now and score it"


COMMANDS: dict[str, type[Command]] = {
    cls.name: cls
    for cls in (Scale, SetSpeed, Pause, Backup, Restore, RestartNode, CrashNode, Failover, AckAlert,
                Silence, Unsilence)
}
DRILL_COMMANDS: dict[str, type[Command]] = {
    cls.name: cls
    for cls in (DeclareRootCause, Remedy, DrillHint, InjectNext, SkipInject, EndDrill)
}


def lookup(name: str) -> type[Command] | None:
    """The command type for a name: the general registry, then the drill commands."""
    return COMMANDS.get(name) or DRILL_COMMANDS.get(name)


def register(cls: type[Command]) -> type[Command]:
    """Add a command type (deploy and chaos commands register themselves the same way)."""
    COMMANDS[cls.name] = cls
    return cls


class CommandError(ValueError):
    """A command that cannot be built; the message is meant for the user."""


def _format_validation(name: str, exc: ValidationError) -> str:
    """`name: field: message; ...` in the project's own words (config.yamlsrc's messages)."""
    from devsim_tui.config.yamlsrc import _message, _resolve

    cls = lookup(name)
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            fields = list(cls.model_fields)
            close = difflib.get_close_matches(str(err["loc"][-1]), fields, n=1)
            msg = "unknown argument" + (f" (did you mean '{close[0]}'?)" if close else "")
        elif err["type"] == "missing":
            msg = "missing argument"
        else:
            msg, _ = _message(err, _resolve(cls, tuple(err["loc"])))
        # A whole-command problem (a model validator's) has no field: no "name: name: ...".
        parts.append(f"{loc}: {msg}" if loc else msg)
    return f"{name}: " + "; ".join(parts)


def load_feature_commands() -> None:
    """Import the feature modules (releases, chaos, ...) so their commands are registered.

    They register at import; importing them here, lazily, keeps this module free of import
    cycles while a commands file can still be validated before any engine exists.
    """
    from devsim_tui.sim.extensions import load_builtin

    load_builtin()


def build(name: str, args: dict[str, Any] | None = None) -> Command:
    """Build a command from its name and keyword arguments, or raise CommandError."""
    load_feature_commands()
    cls = lookup(name)
    if cls is None:
        problem = text_problem(name) if isinstance(name, str) else "a command name is text"
        if problem:
            raise CommandError(f"command name: {problem}")
        close = difflib.get_close_matches(name, [*COMMANDS, *DRILL_COMMANDS], n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise CommandError(f"unknown command '{name}'{hint}")
    if args is not None and not isinstance(args, dict):
        raise CommandError(f"{name}: args must be a mapping")
    for key in args or {}:
        # Checked before pydantic, which cannot even report an error about such text.
        problem = text_problem(key) if isinstance(key, str) else "argument names are text"
        if problem:
            raise CommandError(f"{name}: argument name: {problem}")
    try:
        return cls.model_validate(args or {})
    except ValidationError as exc:
        raise CommandError(_format_validation(name, exc)) from None
    except ValueError as exc:
        raise CommandError(f"{name}: {str(exc).removeprefix(name + ': ')}") from None
    except Exception as exc:  # noqa: BLE001 - a validator bug must reject, never crash a caller
        raise CommandError(f"{name}: invalid arguments ({type(exc).__name__})") from None


def parse_line(line: str) -> Command:
    """Parse a `:` command line: `scale 6`, `speed 60`, `failover db-2`, `ack-alert all`.

    Positional words fill the command's fields in order; `key=value` words name a field.
    """
    if not isinstance(line, str):
        raise CommandError("a command line must be text")
    if len(line) > MAX_LINE_CHARS:
        raise CommandError(f"command line too long ({len(line)} characters, at most "
                           f"{MAX_LINE_CHARS})")
    head, _, tail = line.strip().lstrip(":").strip().partition(" ")
    load_feature_commands()
    free = lookup(ALIASES.get(head, head))
    if free is not None and free.free_text:
        # Free text (a root cause in words): apostrophes and all, no shell quoting needed.
        text = _unquote(tail.strip())
        return build(free.name, {free.positional[0]: text} if text else {})
    try:
        words = shlex.split(line.strip().lstrip(":"))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if not words:
        raise CommandError("empty command")
    name, rest = words[0], words[1:]
    name = ALIASES.get(name, name)
    cls = lookup(name)
    if cls is None:
        return build(name)  # raises with a suggestion
    args: dict[str, Any] = {}
    pos = list(cls.positional)
    for word in rest:
        if "=" in word:
            key, value = word.split("=", 1)
            args[key.replace("-", "_")] = value
        elif pos:
            args[pos.pop(0)] = word
        else:
            raise CommandError(f"{name}: too many arguments ({word!r})")
    return build(name, args)


def _unquote(text: str) -> str:
    """`'text'` or `"text"` -> text (quotes around the whole free text are optional)."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1].strip()
    return text


ALIASES = {"speed": "set-speed", "ack": "ack-alert", "restart": "restart-node",
           "crash": "crash-node", "switchover": "failover"}
