"""Files for the Prometheus a user already runs: scrape config, rule file, Alertmanager route.

`devsim-tui rules export --prometheus-config DIR` writes, for one profile:

- `prometheus.yml`: scrapes the exporter (`devsim-tui --metrics-port`, `simulate --metrics-port`)
  with `honor_labels: true` (the per-server series carry their own `instance` label) and loads
- `devsim-<profile>.rules.yml`: the profile's alerting rules (`sim.rules.export_rules`), and
- `alertmanager.yml`: an Alertmanager route for the e-mail channel, from the profile's
  `notifications` settings (group_by, group_wait, group_interval, repeat_interval, SMTP).

Prometheus evaluates rules and scrapes in wall time while the engine runs in simulated time.
At `--speed S` every duration that means simulated time is divided by S in the exported files:
range selectors (`[5m]` -> `[15s]` at 20x), `offset`, `for`, `keep_firing_for`, the group
`interval`, the scrape and evaluation intervals. Per-second functions (`rate`, `irate`, `deriv`)
see S times the simulated rate per wall second, so they are divided by S too; ratios of rates
are unchanged by that. `time()` cannot be mapped and is refused. See docs/exporter.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from devsim_tui.errors import UserError
from devsim_tui.sim import promql
from devsim_tui.sim.rules import Rule, RuleSet, export_rules

PER_SECOND = ("rate", "irate", "deriv")
DEFAULT_TARGET = "127.0.0.1:9464"
JOB = "devsim"


def format_duration_ms(seconds: float) -> str:
    """Seconds to a Prometheus duration with millisecond precision (`1.5` -> `1s500ms`)."""
    ms = int(round(seconds * 1000))
    if ms <= 0:
        return "0s"
    out = ""
    for unit, size in (("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000),
                       ("ms", 1)):
        if ms >= size:
            out += f"{ms // size}{unit}"
            ms %= size
    return out


def scale_expr(expr: str, speed: float) -> str:
    """A PromQL expression for a Prometheus scraping a run at `speed` simulated s per wall s.

    Durations (ranges, offsets) shrink by `speed`; `rate(...)`, `irate(...)` and `deriv(...)`
    become `(rate(...) / speed)`, so thresholds in simulated per-second units still hold.
    """
    if speed == 1:
        return expr
    toks = promql._lex(expr)  # the engine's own lexer: the same tokens the rules compile from
    out: list[str] = []
    pos = 0
    closes: dict[int, int] = {}  # token index of a ')' -> count of wrappers it closes
    for i, tok in enumerate(toks):
        if tok.kind == "ident" and tok.text == "time" and i + 1 < len(toks) \
                and toks[i + 1].text == "(":
            raise UserError(f"cannot scale {expr!r} to --speed {speed:g}: time() is wall "
                            "time in Prometheus; export at --speed 1")
        if tok.kind == "ident" and tok.text in PER_SECOND and i + 1 < len(toks) \
                and toks[i + 1].text == "(":
            depth, j = 0, i + 1
            while j < len(toks):
                if toks[j].text == "(":
                    depth += 1
                elif toks[j].text == ")":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            closes[j] = closes.get(j, 0) + 1
            out.append(expr[pos:tok.pos] + "(")
            pos = tok.pos
        if tok.kind == "dur":
            out.append(expr[pos:tok.pos])
            out.append(format_duration_ms(promql.parse_duration(tok.text) / speed))
            pos = tok.pos + len(tok.text)
        if tok.text == ")" and i in closes:
            out.append(expr[pos:tok.pos + 1])
            pos = tok.pos + 1
            out.append(f" / {speed:g})" * closes[i])
    out.append(expr[pos:])
    scaled = "".join(out)
    promql.parse(scaled)  # still valid PromQL of the subset
    return scaled


def scale_ruleset(ruleset: RuleSet, speed: float) -> RuleSet:
    """The same rules with every simulated duration mapped onto wall time at `speed`."""
    if speed == 1:
        return ruleset
    groups = []
    for name, interval, rules in ruleset.groups:
        scaled: list[Rule] = []
        for r in rules:
            text = scale_expr(r.expr, speed)
            scaled.append(Rule(
                alert=r.alert, expr=text, tree=promql.parse(text), for_s=r.for_s / speed,
                keep_firing_for_s=r.keep_firing_for_s / speed, labels=r.labels,
                annotations=r.annotations, group=r.group, interval_s=interval / speed))
        groups.append((name, interval / speed, tuple(scaled)))
    return RuleSet(ruleset.source, tuple(groups))


def rule_file_text(ruleset: RuleSet, speed: float = 1.0, annotations: bool = True) -> str:
    text = export_rules(scale_ruleset(ruleset, speed), annotations=annotations,
                        duration=format_duration_ms)
    if speed != 1:
        text = (f"# Scaled for a run at --speed {speed:g}: every duration is simulated time / "
                f"{speed:g}, rate() / {speed:g}\n") + text
    return text


def rules_filename(profile_name: str) -> str:
    return f"devsim-{profile_name}.rules.yml"


def prometheus_config(profile: Any, rule_files: list[str], targets: list[str] | None = None,
                      speed: float = 1.0, job: str = JOB,
                      alertmanager: str | None = None) -> dict[str, Any]:
    """prometheus.yml as a dict: the exporter scraped at the engine's (scaled) intervals."""
    mon = profile.monitoring
    cfg: dict[str, Any] = {
        "global": {
            "scrape_interval": format_duration_ms(mon.scrape_interval_seconds / speed),
            "evaluation_interval": format_duration_ms(mon.evaluation_interval_seconds / speed),
        },
        "rule_files": list(rule_files),
        "scrape_configs": [{
            "job_name": job,
            # The exporter's per-server series carry their own `instance` (the server name):
            # keep it instead of renaming it `exported_instance`.
            "honor_labels": True,
            "static_configs": [{"targets": list(targets or [DEFAULT_TARGET])}],
        }],
    }
    if alertmanager:
        cfg["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return cfg


def alertmanager_config(profile: Any) -> dict[str, Any]:
    """alertmanager.yml: the profile's e-mail route (Alertmanager's own field names)."""
    n = profile.monitoring.notifications
    smtp = n.email.smtp
    host = smtp.host or "smtp.example.org"
    port = smtp.port
    glob: dict[str, Any] = {
        "smtp_smarthost": f"{host}:{port}",
        "smtp_from": smtp.from_,
        # Alertmanager speaks STARTTLS when the server offers it; `none` turns that off.
        "smtp_require_tls": smtp.security != "none",
    }
    if smtp.username:
        glob["smtp_auth_username"] = smtp.username
        glob["smtp_auth_password_file"] = "/etc/alertmanager/smtp-password"
    route = n.route
    return {
        "global": glob,
        "route": {
            "receiver": "email",
            "group_by": list(route.group_by),
            "group_wait": route.group_wait,
            "group_interval": route.group_interval,
            "repeat_interval": route.repeat_interval,
            "routes": [{"receiver": "email",
                        "matchers": [f'severity=~"{_severities(profile)}"']}],
        },
        "inhibit_rules": ([{"source_matchers": ['severity="critical"'],
                            "target_matchers": ['severity="warning"'],
                            "equal": list(n.inhibit_equal)}] if n.inhibit else []),
        "receivers": [{"name": "email", "email_configs": [{
            "to": ", ".join(smtp.to or ["oncall@example.org"]),
            "send_resolved": bool(n.email.send_resolved),
        }]}],
    }


def _severities(profile: Any) -> str:
    order = ("info", "warning", "critical")
    least = order.index(profile.monitoring.alert_severity)
    return "|".join(order[least:])


def _dump(data: dict[str, Any], header: str) -> str:
    return header + yaml.safe_dump(data, sort_keys=False, width=100)


def write_prometheus_config(directory: str | Path, profile: Any, ruleset: RuleSet,
                            targets: list[str] | None = None, speed: float = 1.0,
                            alertmanager: str | None = None) -> list[Path]:
    """Write prometheus.yml, the rule file and alertmanager.yml into `directory`."""
    d = Path(directory)
    try:
        d.mkdir(parents=True, exist_ok=True)
        rules_name = rules_filename(profile.name)
        paths = [d / "prometheus.yml", d / rules_name, d / "alertmanager.yml"]
        scale_note = (f"# Intervals scaled for a run at --speed {speed:g} (simulated s per wall s)"
                      "\n" if speed != 1 else "")
        paths[0].write_text(_dump(
            prometheus_config(profile, [rules_name], targets, speed, alertmanager=alertmanager),
            f"# Prometheus scraping devsim-tui's exporter (profile {profile.name}); written by\n"
            f"#   devsim-tui rules export --profile {profile.name} --prometheus-config DIR\n"
            "# Run: prometheus --config.file prometheus.yml  (docs/exporter.md)\n" + scale_note),
            encoding="utf-8")
        paths[1].write_text(rule_file_text(ruleset, speed), encoding="utf-8")
        paths[2].write_text(_dump(
            alertmanager_config(profile),
            f"# Alertmanager route for the e-mail channel of profile {profile.name} (an example:\n"
            "# set smtp_smarthost, smtp_from and the receiver's `to`). Point Prometheus at it\n"
            "# with `rules export --alertmanager HOST:9093`. Check: amtool check-config FILE\n"),
            encoding="utf-8")
    except OSError as exc:
        raise UserError(f"--prometheus-config {directory}: {exc.strerror}") from None
    return paths
