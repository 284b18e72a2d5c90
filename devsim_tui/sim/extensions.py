"""Engine extensions: controllers that own a slice of the world (releases, chaos, detectors...).

A controller is built once per engine, handles its own commands, and acts at two points of each
tick: before the world moves (apply scheduled changes, revert expired faults) and after the
aggregates are known (judge a rollout, score an anomaly). This keeps `engine.py` small and lets
each feature live in its own module. Never imports the UI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Protocol

if TYPE_CHECKING:
    from devsim_tui.sim.commands import Command
    from devsim_tui.sim.engine import Engine
    from devsim_tui.sim.snapshot import Aggregates


#: The names controllers publish their state under in `Snapshot.extensions` (each declares its
#: own as `state_key`; readers go through `Snapshot`'s accessors, never a literal). They are
#: the names first published (MQTT state payloads and the docs carry them), and stay so
#: whatever the classes come to be called.
RELEASES = "ReleaseController"
SECURITY = "SecurityController"
CHAOS = "ChaosController"
NOTIFICATIONS = "Notifier"
ANOMALY = "AnomalyController"
THANOS = "ThanosController"
BACKUP = "BackupController"
DRILL = "DrillController"
QUERY_PLANS = "QueryPlanController"
MESH = "MeshController"
DEVLOOP = "DevLoop"
CLOUD = "CloudController"


class Controller(Protocol):
    #: Command types this controller applies (looked up by the engine's dispatcher).
    commands: tuple[type[Command], ...]
    #: Where its `state()` goes in `Snapshot.extensions` (one of the names above).
    state_key: str

    def apply(self, cmd: Command) -> str | None:
        """Apply a command at a tick boundary; return an error message to reject it."""

    def before_tick(self, t: float) -> None:
        """Called at the start of each tick, after queued commands, before traffic moves."""

    def after_tick(self, t: float, agg: Aggregates) -> None:
        """Called once the tick's aggregates exist, before alerts are evaluated."""

    def state(self) -> dict:
        """A JSON-able view for snapshots (shown by the UI, written by exporters)."""

    # Optional: `signals() -> dict[str, float]`, numeric signals of what this controller
    # models (e.g. the event stream's consumer lag) for the anomaly detector, keyed
    # "component.metric"; the same keys on every call.


#: Factories as feature modules registered them (import order: whoever imported a module
#: first). Engines run them in `ordered()`'s order, never in this one.
FACTORIES: list[Callable[[Engine], Controller]] = []


def register(factory: Callable[[Engine], Controller]) -> Callable[[Engine], Controller]:
    FACTORIES.append(factory)
    return factory


def load_builtin() -> None:
    """Import the feature modules that register controllers (idempotent)."""
    import importlib

    for name in BUILTIN:
        importlib.import_module(name)


def ordered() -> list[Callable[[Engine], Controller]]:
    """The factories in the order controllers run each tick: the built-in ones in `BUILTIN`'s
    order, then any others in the order they registered.

    Not the registration order: that is the order modules happened to be imported in (a test
    module importing `sim.chaos` at collection put chaos before security, and the same profile,
    seed and commands then gave another trajectory in a full test run than in a single file).
    """
    rank = {name: i for i, name in enumerate(BUILTIN)}
    return sorted(FACTORIES, key=lambda f: rank.get(f.__module__, len(BUILTIN)))


#: Feature modules shipped with devsim-tui, in the order their controllers run; each calls
#: `register` at import. Backups first (sim/database.py imports sim.backup, so it always
#: registered first). Security posture runs before chaos so that chaos' estate effects see
#: this tick's certificates.
BUILTIN: list[str] = ["devsim_tui.sim.backup"]
BUILTIN += ["devsim_tui.sim.releases", "devsim_tui.sim.security", "devsim_tui.sim.chaos"]
#: Placement in regions and clouds: after chaos, so a region outage injected or reverted this
#: tick is seen by the node lifecycle timeline in the same tick.
BUILTIN += ["devsim_tui.sim.cloud"]
#: Alert notifications (Alertmanager-like routing) and the anomaly detector.
BUILTIN += ["devsim_tui.sim.notifications", "devsim_tui.sim.anomaly"]
#: Thanos long-term storage of the metrics history (profiles whose monitoring has Thanos).
BUILTIN += ["devsim_tui.sim.thanos"]
