"""Shared seats: one host runs the world and publishes it; control rooms attach to it over MQTT.

The host (`devsim-tui drill host`, `serve ssh --shared`) runs a World headless, paced by the
wall clock, and publishes it through an `MqttBridge` with `snapshots=True` (full snapshots,
history, profile; docs/mqtt.md "Shared seats"). Seats (`devsim-tui attach`, bridge/remote.py)
rebuild the world from those messages and send their commands to the host's `cmd` topic.

Roles are enforced here, on the host, never by a seat:

* observer: nothing;
* operator: the ordinary commands and the participants' drill commands (declare-root-cause,
  remedy), but not the clock (pause, set-speed) nor the facilitator's drill commands; in a
  hosted drill not the faults or bad releases either (`drill.views.participant_refusal`, which
  the bridge asks the world for);
* facilitator: everything (hint, inject-next, skip-inject, end-drill, pause, set-speed...).

Trust model: the role a command acts with comes from a token the host was given
(`--seat-token ROLE=TOKEN`: a command carrying TOKEN acts as ROLE, whatever it claims) or, for a
command without a token, from the role it claims if the host allows that role without one
(`--allow-roles`; by default operator and observer, or only observer once tokens are
configured). A command with neither token nor claim claims operator (a plain
`mosquitto_pub -m "scale 6"` keeps working). Tokens travel in the command payload: anyone who
can read the host's `cmd` topic can read them, so the real protection is the broker's
credentials and ACLs per role (docs/mqtt.md shows a mosquitto ACL), over mqtts://.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from devsim_tui.access import FACILITATOR_ONLY, role_refusal  # noqa: F401 - re-exported
from devsim_tui.bridge import payloads as P
from devsim_tui.errors import UserError
from devsim_tui.sim import commands as C

ROLES = P.SEAT_ROLES
DEFAULT_ALLOW = frozenset({"observer", "operator"})
SLICE_S = 0.02  # engine time per host-loop slice before yielding to the bridge and commands
IDLE_S = 0.05  # how often a paused host looks again (and republishes the clock state)


def parse_seat_token(text: str) -> tuple[str, str]:
    """`ROLE=TOKEN` or `ROLE=@FILE` (the token is the file's first line, kept out of `ps`)."""
    role, sep, token = (text or "").partition("=")
    role = role.strip()
    if not sep or role not in ROLES:
        raise UserError(f"--seat-token {text!r}: expected ROLE=TOKEN with ROLE one of "
                        f"{', '.join(ROLES)}")
    if token.startswith("@"):
        path = Path(token[1:])
        try:
            lines = path.read_text().splitlines()
            token = lines[0].strip() if lines else ""
        except OSError as exc:
            raise UserError(f"--seat-token {role}=@{path}: {exc.strerror or exc}") from None
    if len(token) < 8:
        raise UserError(f"--seat-token {role}=...: a token needs at least 8 characters")
    if len(token) > P.MAX_ID_CHARS:
        raise UserError(f"--seat-token {role}=...: at most {P.MAX_ID_CHARS} characters")
    return role, token


def parse_roles(text: str) -> frozenset[str]:
    roles = frozenset(r.strip() for r in (text or "").split(",") if r.strip())
    unknown = sorted(roles - set(ROLES))
    if unknown:
        raise UserError(f"--allow-roles: unknown role(s) {', '.join(unknown)} "
                        f"(have: {', '.join(ROLES)})")
    return roles


@dataclass(frozen=True)
class SeatPolicy:
    """The host's side of the trust model (module docstring)."""

    tokens: tuple[tuple[str, str], ...] = ()  # (token, role)
    allow_roles: frozenset[str] = field(default_factory=lambda: DEFAULT_ALLOW)

    @classmethod
    def from_flags(cls, seat_tokens: list[str] | None, allow_roles: str | None) -> SeatPolicy:
        tokens = [parse_seat_token(t) for t in seat_tokens or ()]
        seen: set[str] = set()
        for _, token in tokens:
            if token in seen:
                raise UserError("--seat-token: two roles share one token")
            seen.add(token)
        if allow_roles is not None:
            allow = parse_roles(allow_roles)
        else:
            allow = frozenset({"observer"}) if tokens else DEFAULT_ALLOW
        return cls(tuple((t, r) for r, t in tokens), allow)

    def role_of_token(self, token: str) -> str | None:
        found = None
        for known, role in self.tokens:
            # Compare against every token, in constant time each: no timing hint of a prefix.
            if hmac.compare_digest(known.encode(), token.encode()):
                found = role
        return found

    def authorize(self, claim: P.SeatClaim, cmd: C.Command) -> tuple[str | None, str | None]:
        """(the role the command acts with, why it is refused or None)."""
        if claim.token is not None:
            role = self.role_of_token(claim.token)
            if role is None:
                return None, "unknown seat token"
            if claim.role is not None and claim.role != role:
                return role, f"this seat's token is for role {role}, not {claim.role}"
        else:
            role = claim.role or "operator"
            if role not in self.allow_roles:
                allowed = ", ".join(sorted(self.allow_roles)) or "none"
                return role, (f"role {role} needs a seat token on this host (roles allowed "
                              f"without one: {allowed})")
        return role, role_refusal(role, cmd.name)

    def describe(self) -> str:
        by_token = sorted({r for _, r in self.tokens})
        parts = [f"without a token: {', '.join(sorted(self.allow_roles)) or 'nobody'}"]
        if by_token:
            parts.append(f"by token: {', '.join(by_token)}")
        return "; ".join(parts)


async def run_host(world: Any, bridge: Any, *, finished: Callable[[], bool] = lambda: False,
                   stop: asyncio.Event | None = None) -> str:
    """Advance `world` at its own speed (steered by facilitator commands through the bridge)
    and hand every tick to `bridge`, until `finished()` or `stop`; returns why it ended.

    Runs on the bridge's event loop and yields to it every SLICE_S, so commands arriving from
    seats are applied at the next tick boundary like any other. Pacing is anchored at the last
    speed change or resume, so a pause or a new speed does not make the clock catch up.
    """
    tick_s = float(world.profile.simulation.tick_seconds)
    bridge.publish_tick(world.snapshot)
    anchor: tuple[Any, float, float] | None = None  # (speed, sim t, wall) the pace counts from
    while not finished():
        if stop is not None and stop.is_set():
            return "stopped"
        speed = world.speed
        if world.paused:
            anchor = None
            # Republished so seats see the pause (and the events of commands taken meanwhile);
            # the bridge's rate limit keeps this cheap.
            bridge.publish_tick(world.snapshot)
            await asyncio.sleep(IDLE_S)
            continue
        now = time.monotonic()
        if anchor is None or anchor[0] != speed:
            anchor = (speed, world.snapshot().t, now)
        while time.monotonic() - now < SLICE_S and not finished() and not world.paused \
                and world.speed == speed:
            if speed != "max":
                due = anchor[1] + (time.monotonic() - anchor[2]) * float(speed)
                if world.snapshot().t + tick_s / 2 > due:
                    break
            world.advance(1)
            bridge.publish_tick(world.snapshot)
        if speed == "max":
            await bridge.wait_writable()
            await asyncio.sleep(0)
            continue
        ahead = (world.snapshot().t + tick_s - anchor[1]) / float(speed) \
            - (time.monotonic() - anchor[2])
        if ahead < -1.0:
            anchor = None  # more than a second behind (a slow machine): drop the debt
        await asyncio.sleep(min(max(ahead, 0.0), IDLE_S))
    bridge.publish_tick(world.snapshot)  # the final state, with the last events
    return "finished"


async def host(world: Any, bridge: Any, *, speed: float | str | None = None,
               paused: bool = False, finished: Callable[[], bool] = lambda: False,
               stop: asyncio.Event | None = None, drain_timeout: float = 3.0) -> str:
    """Start the bridge, run the world (`run_host`), then deliver what is buffered and stop."""
    if speed is not None:
        world.submit(C.SetSpeed(speed=speed))
    if paused:
        world.submit(C.Pause(paused=True))
    bridge.start()
    try:
        return await run_host(world, bridge, finished=finished, stop=stop)
    finally:
        await bridge.stop(drain_timeout=drain_timeout)
