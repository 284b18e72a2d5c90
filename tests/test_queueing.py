"""Finite queues: M/M/c/K figures, the engine against them and against an independent
discrete-event simulation, transients, timeouts, resets and conservation."""

from __future__ import annotations

import heapq
import json
import random

import numpy as np
import pytest
from helpers import REPO, engine

from devsim_tui.sim import commands as C
from devsim_tui.sim.queueing import mmck, queue_table
from devsim_tui.sim.snapshot import CRASHED, READY

REF = json.loads((REPO / "tests" / "data" / "mmc_reference.json").read_text())
# One server as issue 12 measures it: 4 workers, 100 rps capacity, max_queue 200, timeout 5 s.
STEADY = dict(scaling__minReplicas=1, scaling__maxReplicas=1, scaling__initialReplicas=1,
              scaling__scaler="manual", app__server__workers=4, app__server__capacity_rps=100,
              app__server__max_queue=200, app__server__timeout_ms=5000,
              app__server__base_error_rate=0, traffic__noise=0, traffic__diurnal_amplitude=0,
              traffic__bursts__per_hour=0, traffic__queries_per_request=0,
              app__variation__capacity_spread=0, app__variation__capacity_wander=0,
              app__variation__balance_noise=0, app__variation__hot_per_hour=0)


def one_server(rps: float, **over):
    return engine("production", **{**STEADY, "traffic__baseline_rps": rps, **over})


def des_mmck(lam: float, mu: float, c: int, K: int, arrivals: int, seed: int):
    """An independent FCFS M/M/c/K discrete-event simulation: (p99 s, rejected share,
    throughput /s). Arrivals finding K requests in the system are rejected."""
    rnd = random.Random(seed)
    t = 0.0
    free = [0.0] * c  # when each worker is next free
    in_system: list[float] = []  # departure times of accepted requests still in the system
    resp = []
    rejected = 0
    for _ in range(arrivals):
        t += rnd.expovariate(lam)
        while in_system and in_system[0] <= t:
            heapq.heappop(in_system)
        if len(in_system) >= K:
            rejected += 1
            continue
        start = max(t, heapq.heappop(free))
        dep = start + rnd.expovariate(mu)
        heapq.heappush(free, dep)
        heapq.heappush(in_system, dep)
        resp.append(dep - t)
    warm = len(resp) // 20
    r = np.array(resp[warm:])
    return float(np.quantile(r, 0.99)), rejected / arrivals, len(resp) / t


@pytest.fixture(scope="module")
def des():
    """The discrete-event reference at rho 0.99 and 1.2 (800k arrivals each, fixed seeds)."""
    return {rho: des_mmck(100.0 * rho, 25.0, 4, 204, 800_000, seed=12)
            for rho in (0.99, 1.2)}


# ----------------------------------------------------------------------------- formulas


@pytest.mark.parametrize("row", REF["rows"], ids=lambda r: f"lam{r['lam']}")
def test_mmck_with_a_deep_queue_is_the_mmc_reference(row):
    """With K far beyond any queue that forms, M/M/c/K is M/M/c (Erlang C reference rows)."""
    m = mmck(row["lam"], 100.0, 4, 4000)
    assert m.W * 1000 == pytest.approx(row["W_ms"], rel=1e-4)
    assert m.L == pytest.approx(row["L"], rel=1e-4)
    assert m.p50 * 1000 == pytest.approx(row["p50_resp_ms"], rel=1e-3)
    assert m.p99 * 1000 == pytest.approx(row["p99_resp_ms"], rel=1e-3)
    assert m.p_reject < 1e-12


def test_mmck_issue_figures_and_its_own_invariants():
    """Issue 12's server: p99 2.05 s / 0.15% rejected at rho 0.99, p99 2.35 s / 16.5% rejected
    and throughput at capacity at rho 1.2 (its discrete-event figures)."""
    a = mmck(99.0, 25.0, 4, 204)
    assert a.p99 == pytest.approx(2.05, rel=0.02)
    assert a.p_reject == pytest.approx(0.0015, abs=0.0002)
    b = mmck(120.0, 25.0, 4, 204)
    assert b.p99 == pytest.approx(2.35, rel=0.02)
    assert b.p_reject == pytest.approx(0.165, abs=0.003)
    assert b.throughput == pytest.approx(100.0, rel=1e-3) and b.throughput <= 100.0 + 1e-9
    for m in (a, b, mmck(300.0, 25.0, 4, 204)):
        assert m.L == pytest.approx(m.throughput * m.W)  # Little
        assert m.throughput <= m.c * m.mu * (1 + 1e-12)
        # the wait is bounded: no response beyond ~K/(c mu) plus a service-time tail
        assert m.survival(np.array([m.w_max + 1.0]))[0] < 1e-6
    # M/M/1/K has a closed form: p_K = (1-rho) rho^K / (1 - rho^(K+1))
    rho, K = 0.8, 10
    assert mmck(0.8, 1.0, 1, K).p_reject == pytest.approx((1 - rho) * rho**K / (1 - rho**(K + 1)))


def test_queue_table_agrees_with_the_exact_figures():
    t = queue_table(4, 204)
    for rho in (0.3, 0.75, 0.9, 0.99, 1.2, 3.0):
        m = mmck(100.0 * rho, 25.0, 4, 204)
        w = t.w_star(np.array([rho]))
        assert t.x_top * w[0] ** 2 == pytest.approx(m.L, rel=0.01, abs=0.01)
        P, U, mean, p50, p99, _ = (v[0] for v in t.at(w))
        assert P == pytest.approx(m.p_reject, rel=0.02, abs=1e-6)
        assert U == pytest.approx(m.throughput / 100.0, rel=0.01)
        assert p99 / 25.0 == pytest.approx(m.p99, rel=0.02)
        assert mean / 25.0 == pytest.approx(m.W, rel=0.02)


def test_des_reference_agrees_with_the_formulas(des):
    """The simulation and the closed forms are independent; they must agree."""
    for rho, (p99, rej, thr) in des.items():
        m = mmck(100.0 * rho, 25.0, 4, 204)
        assert p99 == pytest.approx(m.p99, rel=0.05)
        assert rej == pytest.approx(m.p_reject, abs=0.0005 if rho < 1 else 0.005)
        assert thr == pytest.approx(m.throughput, rel=0.01)


# ----------------------------------------------------------------------------- the engine


def test_engine_at_rho_099_matches_the_discrete_event_reference(des):
    p99, rej, thr = des[0.99]
    e = one_server(99.0)
    e.step(1200)  # near saturation the queue takes minutes to settle
    a = e.agg
    assert a.p99_ms / 1000 == pytest.approx(p99, rel=0.10)
    assert a.rejected_rps / a.offered_rps == pytest.approx(rej, abs=0.0005)  # 0.05 points
    assert a.timed_out_rps == 0 and a.errored_rps == 0


def test_engine_at_rho_12_serves_at_capacity_and_rejects_the_rest(des):
    p99, rej, thr = des[1.2]
    e = one_server(120.0)
    peak_p99 = 0.0
    for _ in range(300):
        a, _ = e.advance()
        assert a.served_rps <= a.capacity_rps + 1e-9
        peak_p99 = max(peak_p99, a.p99_ms)
    assert a.p99_ms / 1000 == pytest.approx(p99, rel=0.15)
    assert a.served_rps == pytest.approx(100.0, rel=1e-3)  # throughput = capacity
    assert a.rejected_rps / a.offered_rps == pytest.approx(rej, abs=0.01)
    # a 200-deep queue at 100 rps never makes anyone wait 5 s: no timeouts, ever
    assert a.timed_out_rps == 0 and peak_p99 < 2500
    assert [ev for ev in e.events if ev.type == "requests.rejected"]


def test_overload_transient_fills_at_the_excess_rate_and_drains_back():
    e = one_server(60.0)
    e.step(60)
    assert e.agg.queued == pytest.approx(mmck(60.0, 25.0, 4, 204).L, rel=0.02)
    e.traffic_factor = 2.0  # 120 rps into a 100 rps server
    e.step(5)
    # ~20 requests/s pile up (the excess); next to nothing is rejected yet
    assert 80 <= e.agg.queued <= 125 and e.agg.rejected_rps < 2.0
    for _ in range(120):
        a, _ = e.advance()
        assert a.served_rps + a.errored_rps + a.timed_out_rps <= a.capacity_rps + 1e-9
    assert e.agg.queued == pytest.approx(mmck(120.0, 25.0, 4, 204).L, rel=0.03)
    e.traffic_factor = 1.0
    e.step(30)
    assert e.agg.queued < 5 and e.agg.p99_ms < 300


def test_timeouts_only_when_the_bounded_wait_exceeds_the_timeout():
    """A server slowed to a fifth (a CPU hog): its full queue means ~10 s of waiting, so the
    requests beyond the 5 s timeout fail as timeouts and the shown latency stops at 5 s."""
    e = one_server(60.0)
    e.step(30)
    assert e.agg.timed_out_rps == 0
    e.fleet.cap_factor = np.array([0.2])
    e.fleet.refresh_flags()
    worst = 0.0
    for _ in range(240):
        a, _ = e.advance()
        worst = max(worst, a.p99_ms, float(np.nanmax(e.fleet.p99_ms)))
    assert a.timed_out_rps > 5 and a.rejected_rps > 20
    assert a.served_rps + a.timed_out_rps + a.errored_rps <= 20.0 + 1e-9
    assert worst <= 5000.0
    assert a.p99_ms == pytest.approx(5000.0)


def test_kill_under_backlog_resets_exactly_the_lost_queue():
    e = engine("production", scaling__scaler="manual", traffic__bursts__per_hour=0)
    e.step(10)
    e.traffic_factor = 1.6  # past the fleet's capacity: queues build
    e.step(20)
    f = e.fleet
    queue = dict(zip(f.names, f.queue.tolist()))
    assert sum(queue.values()) > 300
    before = e.agg.failed_total
    e.submit(C.parse_line("chaos server-kill 3"))
    a = e.step(1).agg
    f = e.fleet
    victims = [f.names[i] for i in np.flatnonzero(f.state == CRASHED)]
    assert len(victims) == 3
    lost = sum(queue[n] for n in victims)
    assert lost > 100
    assert a.reset_rps * e.dt == pytest.approx(lost, rel=1e-9)
    ev = [x for x in e.snapshot.events if x.type == "server.connections_reset"]
    assert len(ev) == 1 and ev[0].data["requests"] == pytest.approx(lost)
    assert set(ev[0].data["servers"]) == set(victims)
    assert e.agg.failed_total - before >= lost
    assert a.error_rate > 0


def test_conservation_and_capacity_through_kills_drains_and_overload():
    e = engine("production", traffic__bursts__per_hour=0)
    prev = e.agg.queued
    for k in range(700):
        if k == 50:
            e.traffic_factor = 2.5
        if k == 120:
            e.submit(C.parse_line("chaos server-kill 3"))
        if k == 300:
            e.traffic_factor = 0.5  # the HPA scales down: pods drain
        a, _ = e.advance()
        out = (a.served_rps + a.errored_rps + a.timed_out_rps + a.rejected_rps
               + a.reset_rps) * e.dt + (a.queued - prev)
        assert out == pytest.approx(a.offered_rps * e.dt, rel=1e-9, abs=1e-6)
        assert a.served_rps + a.errored_rps + a.timed_out_rps <= a.capacity_rps + 1e-6
        assert a.offered_total == pytest.approx(a.served_total + a.failed_total + a.queued,
                                                rel=1e-9)
        prev = a.queued


def test_not_ready_servers_show_no_latency():
    e = engine("production", scaling__scaler="manual")
    e.step(5)
    e.submit(C.Scale(replicas=20))
    s = e.step(1)
    f = s.fleet
    ready = f.state == READY
    assert (~ready).any()
    assert np.isnan(f.p99_ms[~ready]).all() and np.isfinite(f.p99_ms[ready]).all()
    assert (f.p99_ms[ready] <= e.profile.app.server.timeout_ms).all()


def test_server_counters_restart_at_zero_and_rate_sees_a_reset():
    """A restarted container's request counters start again at 0 (a new process); the
    exported type is counter, so PromQL's rate() treats the drop as a reset, not a collapse."""
    from devsim_tui.sim.metrics import BY_NAME, SnapshotView, collect
    from devsim_tui.sim.promql import _range_func

    e = engine("production", scaling__scaler="manual", traffic__bursts__per_hour=0)
    for metric in ("devsim_server_requests_served_total", "devsim_server_request_errors_total"):
        assert BY_NAME[metric].type == "counter"
    name = e.snapshot.fleet.names[0]
    pts = []

    def scrape():
        s = e.snapshot
        labels, values = collect(SnapshotView(s, "web"),
                                 ["devsim_server_requests_served_total"])[
            "devsim_server_requests_served_total"]
        pts.append((s.t, values[[dict(lb)["instance"] for lb in labels].index(name)]))

    for _ in range(8):  # a scrape every 15 s
        e.step(15)
        scrape()
    before = pts[-1][1]
    assert before > 1000
    e.submit(C.parse_line(f"chaos server-kill {name}"))
    e.step(1)
    i = e.snapshot.fleet.index_of(name)
    assert e.snapshot.fleet.served_total[i] == 0.0  # a dead container's counters are gone
    for _ in range(4):
        e.step(15)
        scrape()
    assert e.snapshot.fleet.restarts[e.snapshot.fleet.index_of(name)] == 1
    assert 0 < pts[-1][1] < before  # counting again from 0
    rate = _range_func("rate", pts, pts[-1][0], pts[-1][0] - pts[0][0])
    served = e.snapshot.fleet.served_rps[e.snapshot.fleet.index_of(name)]
    assert 0.5 * served < rate < 1.1 * served  # the reset is not read as a fall


def test_a_production_fleet_differs_server_to_server_every_tick_deterministically():
    """30 simulated minutes of production: on every tick the ready servers' CPU and p99 spread
    (capacity factors, wandering noise, balancer imbalance), and the same seed gives the same
    fleet."""

    def run(seed):
        e = engine("production", seed=seed)
        spread = []
        for _ in range(1800):
            e.advance()
            f = e.fleet
            ready = f.state == READY
            assert ready.sum() >= 2
            cpu, p99, rps = f.cpu[ready], f.p99_ms[ready], f.rps[ready]
            spread.append((cpu.std(), p99.std(), rps.std()))
        return np.array(spread), e.fleet.het.copy()

    a, het = run(7)
    assert (a[:, 0] > 0).all() and (a[:, 1] > 0).all() and (a[:, 2] > 0).all()
    # a few percent, not a different machine each: CPU spread ~ 1-5 points around ~60%
    assert 0.003 < np.median(a[:, 0]) < 0.06
    b, het_b = run(7)
    assert np.array_equal(a, b) and np.array_equal(het, het_b)
    c, _ = run(8)
    assert not np.array_equal(a, c)


def test_least_connections_evens_out_what_round_robin_leaves_uneven():
    """Round-robin gives a slow server the same share as the others, so its queue and p99
    grow; least-connections sends it less in proportion to its speed."""
    out = {}
    for lb in ("round-robin", "least-connections"):
        e = engine("production", scaling__scaler="manual", traffic__bursts__per_hour=0,
                   app__load_balancing=lb, app__variation__capacity_spread=0,
                   app__variation__capacity_wander=0, app__variation__balance_noise=0,
                   app__variation__hot_per_hour=0)
        e.step(5)
        e.fleet.cap_factor = np.where(np.arange(len(e.fleet)) == 0, 0.6, 1.0)
        e.fleet.refresh_flags()
        e.step(60)
        f = e.snapshot.fleet
        out[lb] = (f.rps[0], np.median(f.rps[1:]), f.p99_ms[0], np.median(f.p99_ms[1:]))
    rr, lc = out["round-robin"], out["least-connections"]
    assert rr[0] == pytest.approx(rr[1], rel=0.01) and rr[2] > 3 * rr[3]
    assert lc[0] == pytest.approx(0.6 * lc[1], rel=0.02) and lc[2] < 2 * lc[3]
