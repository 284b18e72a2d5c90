"""Kafka consumer lag's consequences downstream (docs/streaming.md, "What lag does"): the data
age of each group, stale derived data served, notifications sent late, their events, alerts,
metrics, headless fields and the database pane's row."""

from __future__ import annotations

import pytest
from helpers import engine, events_named

from devsim_tui.sim.chaos import ChaosController


def quiet(**kw):
    kw.setdefault("traffic__bursts__per_hour", 0)
    kw.setdefault("traffic__noise", 0)
    kw.setdefault("traffic__diurnal_amplitude", 0)
    kw.setdefault("scaling__scaler", "manual")
    return engine("experimental", **kw)


def stream(e):
    return next(c for c in e.controllers if isinstance(c, ChaosController)).stream


def firing(e, name):
    return [a for a in e.alerts.views if a.name == name and a.state == "firing"]


def test_data_age_follows_the_slow_consumers_position_not_the_lag_in_throughput_seconds():
    """A group consuming c events/s of p produced has, after T seconds, read what was produced
    in the first T*c/p seconds: its oldest unread event is T*(1 - c/p) old. Lag in seconds of
    throughput (lag / capacity) is a different, smaller number."""
    e = quiet()
    e.step(60)
    s = stream(e)
    p = s.produce_rate
    assert s.data_age == 0 and s.notification_delay == 0 and s.stale_responses == 0
    e.submit_line("chaos consumer-lag estate 10m 0.3")
    e.step(1)
    t0 = e.t - 1
    e.step(239)
    T = e.t - t0
    feature = s.groups.index("feature-store")
    notif = s.groups.index("notifications")
    for g, cap in ((feature, 8 * 400), (notif, 6 * 500)):
        expect = T * (1 - 0.3 * cap / p)
        assert s.group_age[g] == pytest.approx(expect, abs=2.0), (s.groups[g], expect)
        assert s.group_lag_seconds()[g] < s.group_age[g] / 2  # not the same measure
    assert s.data_age == s.group_age[feature]
    assert s.notification_delay == s.group_age[notif]


def test_stale_data_is_served_while_the_feature_store_is_behind_and_counted():
    e = quiet()
    e.step(60)
    s = stream(e)
    p = s.produce_rate
    e.submit_line("chaos consumer-lag estate 5m 0.3")
    e.step(1)
    t0 = e.t - 1
    e.step(600)
    # feature-store: 8 x 400/s x 0.3 = 960/s read; its data passes stale_after_seconds (30 s)
    # when T x (1 - 960/p) = 30.
    onset = 30.0 / (1 - 960.0 / p)
    stale, fresh = events_named(e, "kafka.stale_data"), events_named(e, "kafka.stale_data_recovered")
    assert len(stale) == 1 and len(fresh) == 1
    assert stale[0].t - t0 == pytest.approx(onset, abs=2.0)
    # every served request reads features (derived_read_share 1.0): the count is the served
    # rate over the stale window the two events bound
    served = e.agg.served_rps
    assert s.stale_responses == pytest.approx(served * (fresh[0].t - stale[0].t), rel=0.02)
    assert fresh[0].data["stale_responses"] == round(s.stale_responses)
    assert s.data_age == 0 and s.stale_rps == 0  # drained: fresh again


def test_notifications_go_out_late_past_their_slo_also_while_the_backlog_drains():
    e = quiet()
    e.step(60)
    s = stream(e)
    e.submit_line("chaos consumer-lag estate 5m 0.3")
    e.step(301)
    late_at_end = s.late_notifications
    assert events_named(e, "kafka.notifications_delayed")
    assert late_at_end > 0
    e.step(300)
    # the backlog the fault left is sent after it, at full speed, still late
    assert s.late_notifications > late_at_end
    on_time = events_named(e, "kafka.notifications_on_time")
    assert len(on_time) == 1 and on_time[0].data["late_notifications"] > 0
    assert s.late_notifications < s.notifications_sent


def test_no_consequence_without_lag_or_without_a_group_feeding_anything():
    e = quiet()
    e.step(900)
    s = stream(e)
    assert s.stale_responses == 0 and s.late_notifications == 0 and s.notifications_sent > 0
    assert not firing(e, "StaleDataServed") and not firing(e, "NotificationsDelayed")
    groups = [{"name": "audit", "consumers": 2, "rate_per_consumer": 100}]
    e = quiet(streaming__consumer_groups=groups)
    e.step(300)  # hopelessly behind (200/s of ~1,400/s), but feeding nothing downstream
    s = stream(e)
    assert s.lag_seconds > 100 and s.group_age[0] > 100
    assert s.data_age == 0 and s.stale_responses == 0 and s.notifications_sent == 0


def test_alerts_metrics_headless_and_the_pane_row_show_the_consequences():
    from devsim_tui.export.prometheus import SnapshotView
    from devsim_tui.headless import tick_record
    from devsim_tui.sim.metrics import collect
    from devsim_tui.ui.database import stream_summary

    e = quiet()
    e.step(60)
    e.submit_line("chaos consumer-lag estate 10m 0.3")
    e.step(420)
    assert firing(e, "StaleDataServed") and firing(e, "NotificationsDelayed")
    view = e.snapshot.extensions["ChaosController"]["event_stream"]
    row = stream_summary(view)
    assert f"· serving data {view['data_age_seconds']:.0f}s old" in row
    assert f"· notifications {view['notification_delay_seconds']:.0f}s late" in row
    samples = collect(SnapshotView(e.snapshot, e.profile.app.service))
    labels, values = samples["devsim_kafka_consumergroup_data_age_seconds"]
    ages = {dict(lb)["consumergroup"]: (dict(lb)["feeds"], v) for lb, v in zip(labels, values)}
    assert ages["feature-store"][0] == "derived-data" and ages["feature-store"][1] > 30
    assert samples["devsim_kafka_stale_responses_total"][1][0] == view["stale_responses"] > 0
    rec = tick_record(e)["kafka"]
    assert rec["data_age_s"] == view["data_age_seconds"]
    assert rec["late_notifications"] == view["late_notifications"] > 0
    assert rec["groups"]["notifications"]["age_s"] > 60
    e.submit_line("chaos-stop all")
    e.step(900)
    assert not events_named(e, "command.rejected")
    assert not firing(e, "StaleDataServed") and not firing(e, "NotificationsDelayed")
    assert "serving data" not in stream_summary(
        e.snapshot.extensions["ChaosController"]["event_stream"])
