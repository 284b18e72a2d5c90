"""Hypothesis properties of the engine: conservation (every outcome kind, the queue as state),
capacity, bounds, no negative values, whatever the profile parameters and command sequence."""

from __future__ import annotations

import numpy as np
from helpers import engine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devsim_tui.sim import commands as C
from devsim_tui.sim.snapshot import READY

NODE = st.sampled_from(["primary", "pg-1", "pg-2", "pg-3", "pg-9"])
COMMAND = st.one_of(
    st.builds(C.Scale, replicas=st.integers(0, 60)),
    st.builds(C.CrashNode, node=NODE),
    st.builds(C.RestartNode, node=NODE),
    st.builds(C.Backup),
    st.builds(C.Failover, target=st.one_of(st.none(), NODE)),
    st.builds(C.AckAlert),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    min_r=st.integers(1, 6), extra=st.integers(0, 20), rps=st.floats(10, 4000),
    capacity=st.floats(20, 400), workers=st.integers(1, 16), noise=st.floats(0, 0.5),
    spike=st.floats(0.1, 6), script=st.lists(st.tuples(st.integers(0, 300), COMMAND),
                                             max_size=8),
    seed=st.integers(0, 2**16), max_queue=st.integers(0, 400),
    timeout=st.floats(100, 8000), balancing=st.sampled_from(["round-robin", "least-connections"]),
)
def test_invariants_hold_every_tick(min_r, extra, rps, capacity, workers, noise, spike, script,
                                    seed, max_queue, timeout, balancing):
    e = engine("production", seed=seed, scaling__minReplicas=min_r,
               scaling__maxReplicas=min_r + extra, scaling__initialReplicas=min_r,
               traffic__baseline_rps=rps, traffic__noise=noise,
               app__server__capacity_rps=capacity, app__server__workers=workers,
               app__server__max_queue=max_queue, app__server__timeout_ms=timeout,
               app__load_balancing=balancing)
    script = sorted(script, key=lambda x: x[0])
    spec = e.profile.scaling
    prev_queued = e.agg.queued
    for tick in range(260):
        while script and script[0][0] <= tick:
            e.submit(script.pop(0)[1])
        if tick == 100:
            e.traffic_factor = spike
        if tick == 150:
            e.submit(C.parse_line(f"chaos server-kill {1 + seed % 3}"))
        a, _ = e.advance()
        # conservation, every tick: offered = served + errored + timed out + rejected + reset
        # + what the servers hold more than a tick ago
        outcomes = (a.served_rps + a.errored_rps + a.timed_out_rps + a.rejected_rps
                    + a.reset_rps) * e.dt + (a.queued - prev_queued)
        assert abs(a.offered_rps * e.dt - outcomes) <= 1e-9 * max(a.offered_rps, 1.0) + 1e-9
        assert abs(a.offered_total - (a.served_total + a.failed_total + a.queued)) \
            <= 1e-9 * max(a.offered_total, 1.0)
        prev_queued = a.queued
        # completions never exceed what the serving servers can complete
        assert a.served_rps + a.errored_rps + a.timed_out_rps <= a.capacity_rps * (1 + 1e-9)
        # nobody waits past the client timeout: shown latency stops there
        assert a.p99_ms <= e.profile.app.server.timeout_ms + 1e-9
        assert 0 <= a.ready <= a.total
        # the HPA profile rejects a `scale` outside [min, max], and the HPA itself clamps
        assert spec.minReplicas <= a.desired <= spec.maxReplicas
        for v in (a.offered_rps, a.served_rps, a.errored_rps, a.timed_out_rps,
                  a.rejected_rps, a.reset_rps, a.queued, a.p50_ms,
                  a.p99_ms, a.cpu, a.memory_pct, a.db_max_lag_bytes, a.db_qps,
                  a.error_budget_burned, a.lost_writes):
            assert v >= 0 and np.isfinite(v)
        assert 0 <= a.error_rate <= 1
        assert a.p50_ms <= a.p99_ms + 1e-9
    f = e.snapshot.fleet
    for col in (f.cpu, f.memory_mb, f.rps, f.served_rps, f.error_rate, f.disk_pct):
        assert (col >= 0).all() and np.isfinite(col).all()
    ready = f.state == READY  # latency exists only where a server serves
    assert (f.p99_ms[ready] >= 0).all() and np.isfinite(f.p99_ms[ready]).all()
    assert np.isnan(f.p99_ms[~ready]).all()
    assert (f.cpu <= 1.0 + 1e-9).all()
    assert sum(1 for n in e.snapshot.db if n.role == "primary") <= 1
