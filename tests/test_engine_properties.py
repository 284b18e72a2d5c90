"""Hypothesis properties of the engine: conservation, bounds, no negative values, whatever the
profile parameters and command sequence."""

from __future__ import annotations

import numpy as np
from helpers import engine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devsim_tui.sim import commands as C

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
    seed=st.integers(0, 2**16),
)
def test_invariants_hold_every_tick(min_r, extra, rps, capacity, workers, noise, spike, script,
                                    seed):
    e = engine("production", seed=seed, scaling__minReplicas=min_r,
               scaling__maxReplicas=min_r + extra, scaling__initialReplicas=min_r,
               traffic__baseline_rps=rps, traffic__noise=noise,
               app__server__capacity_rps=capacity, app__server__workers=workers)
    script = sorted(script, key=lambda x: x[0])
    spec = e.profile.scaling
    for tick in range(260):
        while script and script[0][0] <= tick:
            e.submit(script.pop(0)[1])
        if tick == 100:
            e.traffic_factor = spike
        a, _ = e.advance()
        # conservation: offered = served + errored + dropped, every tick
        assert abs(a.offered_rps - (a.served_rps + a.errored_rps + a.dropped_rps)) \
            <= 1e-9 * max(a.offered_rps, 1.0)
        assert 0 <= a.ready <= a.total
        # the HPA profile rejects a `scale` outside [min, max], and the HPA itself clamps
        assert spec.minReplicas <= a.desired <= spec.maxReplicas
        for v in (a.offered_rps, a.served_rps, a.errored_rps, a.dropped_rps, a.p50_ms,
                  a.p99_ms, a.cpu, a.memory_pct, a.db_max_lag_bytes, a.db_qps,
                  a.error_budget_burned, a.lost_writes):
            assert v >= 0 and np.isfinite(v)
        assert 0 <= a.error_rate <= 1
        assert a.p50_ms <= a.p99_ms + 1e-9
    f = e.snapshot.fleet
    for col in (f.cpu, f.memory_mb, f.rps, f.served_rps, f.p99_ms, f.error_rate, f.disk_pct):
        assert (col >= 0).all() and np.isfinite(col).all()
    assert (f.cpu <= 1.0 + 1e-9).all()
    assert sum(1 for n in e.snapshot.db if n.role == "primary") <= 1
