"""The clock driver without a screen: pacing at a finite speed, slices at `max`, long steps in
slices; the wall clock is a counter the test moves."""

from __future__ import annotations

from devsim_tui.ui.clock import ClockDriver


class FakeWorld:
    def __init__(self, speed=1.0, paused=False, last_tick=None):
        self.speed = speed
        self.paused = paused
        self.tick = 0
        self.last_tick = last_tick
        self.calls: list[int] = []

    def advance(self, n: int) -> None:
        self.calls.append(n)
        if self.last_tick is not None:
            n = max(0, min(n, self.last_tick - self.tick))
        self.tick += n

    def snapshot(self):
        return self


class Clock:
    def __init__(self, step: float = 0.0):
        self.t = 0.0
        self.step = step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


def test_a_finite_speed_runs_what_the_elapsed_time_owes():
    clock = Clock()
    driver = ClockDriver(now=clock)
    world = FakeWorld(speed=60.0)
    driver.reset()
    clock.t += 2.0  # two seconds at 60x with 1 s ticks: 120 ticks owed
    delay = driver.drive_slice(world, tick_seconds=1.0)
    assert world.tick == 120
    assert 0.01 <= delay <= 1 / 60 + 1e-9


def test_a_slow_machine_drops_the_debt_instead_of_spiralling():
    clock = Clock(step=0.02)  # every reading: 20 ms later (a slow machine)
    driver = ClockDriver(now=clock, slice_s=0.03)
    world = FakeWorld(speed=1000.0)
    driver.reset()
    clock.t += 10.0  # 10,000 ticks owed
    driver.drive_slice(world, tick_seconds=1.0)
    assert world.tick < 10_000  # cut at the slice's budget
    assert driver.debt <= 1.0  # the rest is forgiven


def test_a_long_step_runs_in_slices_until_done():
    clock = Clock(step=1.0)  # each reading a second later: one chunk per slice
    driver = ClockDriver(now=clock)
    driver.chunk = 100
    world = FakeWorld(paused=True)
    driver.start_step(450)
    slices = 0
    while driver.step_slice(world):
        slices += 1
    assert world.tick == 450 and world.calls == [100, 100, 100, 100, 50]
    assert slices == 4 and driver.step_left == 0


def test_a_step_stops_when_the_world_resumes_or_runs_out():
    driver = ClockDriver(now=Clock(step=1.0))
    world = FakeWorld(paused=True, last_tick=3)
    driver.start_step(10)
    while driver.step_slice(world):
        pass
    assert world.tick == 3 and driver.step_left == 0
    world = FakeWorld(paused=True)
    driver.start_step(10)
    world.paused = False
    assert driver.step_slice(world) is False and world.tick == 0
