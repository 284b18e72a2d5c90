"""Security posture: certificates, encryption, credentials, debug endpoints, zero trust, audits.

Every environment's `security` profile section becomes controls that act on the simulation
(docs/security.md has the model and its public sources):

- **Certificates.** Each TLS endpoint (the public edge; the database's in-transit TLS where the
  profile encrypts in transit; the service mesh's mTLS workload certificates under zero trust)
  has an issuer, a lifetime (`certificate_days_valid`) and a renewal policy. Automated renewal
  acts like cert-manager, which renews at 2/3 of a certificate's lifetime (its default
  `renewBefore` is 1/3 of the duration); manual renewal waits for `renew-certificate`. The time
  left is a metric (like the blackbox exporter's `probe_ssl_earliest_cert_expiry`); an expired
  certificate fails every TLS handshake through it, so every request errors.
- **Encryption** at rest (`database_encryption`, `encryption_algorithm`) and in transit
  (`tls`): a data-exfiltration exposes records only where the copy it takes is plaintext.
- **Credentials** (`credentials`): plaintext credentials never expire, so a leaked one gives an
  attacker a session until `rotate-credentials`; a vault / secrets-manager credential is a
  lease that ends by itself after `LEASE_TTL_S`. Rotation costs a rolling restart.
- **Debug endpoints** (`debug_endpoints`): the Node inspector on 9229 is reachable; a scan finds
  it and attaches (remote code execution) until `close-debug-endpoint`.
- **Zero trust** (`zero_trust`): service-to-service policy on mTLS identities: attackers without
  an identity are denied and logged; a policy misconfiguration denies legitimate traffic.
- **Audits** (`audits`, `ai_auditing`, `anomaly_detection`): scheduled audits turn failing
  controls into findings (like kube-bench's CIS checks); AI auditing runs the project's anomaly
  detector over the auth and denial streams.

The security faults are part of the chaos catalogue (sim/chaos.py) and delegate here. Nothing here
reads the wall clock or draws from the engine's random generator. Never imports the UI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devsim_tui.sim import commands as C
from devsim_tui.sim import extensions
from devsim_tui.sim.extensions import register

if TYPE_CHECKING:
    from devsim_tui.sim.engine import Engine
    from devsim_tui.sim.snapshot import Aggregates

DAY = 86400.0
RENEW_AT = 2.0 / 3.0  # cert-manager renews when 1/3 of the lifetime is left
INITIAL_AGE = 0.5  # share of its lifetime a certificate has lived at the start
RENEW_RETRY_S = 3600.0  # a failed automated renewal is retried this often
EXPIRING_SOON_S = 7 * DAY  # CertificateExpiringSoon threshold
MESH_CERT_S = DAY  # workload (SPIFFE) certificates under zero trust live a day (Istio default)
MESH_SOON_S = 4 * 3600.0  # the same rule's threshold for the day-long workload certificates
LEASE_TTL_S = 3600.0  # a leaked dynamic (vault / secrets-manager) credential ends with its lease
CREDENTIAL_MAX_AGE_S = 90 * DAY  # CIS-style rotation period for static secrets
PLAINTEXT_AGE_S = 400 * DAY  # plaintext credentials in the seed were never rotated
MANAGED_AGE_S = 10 * DAY
ROTATE_COST_S = 60.0  # rolling restart to pick up the new secret
ROTATE_ERROR = 0.02  # share of requests failing during it (connections re-established)
BRUTE_SUCCESS_ATTEMPTS = 3000.0  # guesses until a weak plaintext password falls
RECORD_BYTES = 1024.0
DEBUG_PORT = 9229
#: The security telemetry's signal names (`SecurityController.signals`) begin with these.
SECURITY_SIGNAL_PREFIXES = ("auth.", "mesh.", "net.", "db.anomalous_queries")
AUDIT_FIRST_S = 300.0
EVENTS_KEPT = 30
SECURITY_FAULTS = ("credential-leak", "debug-port-scan", "cert-renewal-failure",
                   "policy-misconfig", "data-exfiltration", "brute-force-login")
_CADENCE = (("continuous", 60.0), ("hour", 3600.0), ("dail", DAY), ("week", 7 * DAY),
            ("month", 30 * DAY), ("quarter", 91 * DAY), ("year", 365 * DAY),
            ("annual", 365 * DAY), ("regular", 91 * DAY))


def audit_interval(text: str | None) -> float | None:
    """Seconds between scheduled audits from the profile's words ('regular (quarterly)')."""
    if not text:
        return None
    low = text.lower()
    for word, seconds in _CADENCE:
        if word in low:
            return seconds
    return 91 * DAY


# --------------------------------------------------------------------------- commands


class RenewCertificate(C.Command):
    name = "renew-certificate"
    positional = ("endpoint",)
    summary = ("Renew a TLS certificate now through the fallback issuer (edge, database, mesh "
               "or all); fixes a failing automated renewal")
    endpoint: str = "all"


class RotateCredentials(C.Command):
    name = "rotate-credentials"
    summary = ("Rotate the database and service credentials: leaked ones stop working; costs a "
               f"{ROTATE_COST_S:.0f} s rolling restart ({ROTATE_ERROR:.0%} of requests fail)")
    hurts = True


class CloseDebugEndpoint(C.Command):
    name = "close-debug-endpoint"
    summary = f"Close the Node inspector port {DEBUG_PORT} (drops attached debug sessions)"


class RollbackPolicy(C.Command):
    name = "rollback-policy"
    summary = "Zero trust: roll the service-to-service policy back to the last good version"


class BlockEgress(C.Command):
    name = "block-egress"
    summary = "Cut the outbound connection a data exfiltration uses (egress network policy)"


class BlockSource(C.Command):
    name = "block-source"
    summary = "Block the source address of a brute-force login attack (WAF / fail2ban)"


class Audit(C.Command):
    name = "audit"
    summary = "Run a security audit now: every failing control becomes a finding"


for _cls in (RenewCertificate, RotateCredentials, CloseDebugEndpoint, RollbackPolicy,
             BlockEgress, BlockSource, Audit):
    C.register(_cls)


# --------------------------------------------------------------------------- model


@dataclass
class Certificate:
    endpoint: str
    issuer: str
    lifetime_s: float
    issued_t: float
    not_after: float
    automated: bool
    renew_failing: bool = False
    next_retry: float = 0.0
    expired: bool = False
    renewals: int = 0

    def soon_s(self) -> float:
        """Time left under which CertificateExpiringSoon fires for this certificate."""
        return MESH_SOON_S if self.endpoint == "mesh" else EXPIRING_SOON_S

    def renew_at(self) -> float:
        """cert-manager's renewal time: notAfter - renewBefore (1/3 of the duration), i.e. 2/3
        into the lifetime of a certificate served since it was issued."""
        return self.not_after - (1.0 - RENEW_AT) * self.lifetime_s

    def view(self, t: float) -> dict:
        return {"endpoint": self.endpoint, "issuer": self.issuer,
                "lifetime_days": round(self.lifetime_s / DAY, 3),
                "expires_in_s": round(self.not_after - t, 1),
                "renew_in_s": round(self.renew_at() - t, 1) if self.automated else None,
                "renewal": "automated" if self.automated else "manual",
                "renewal_failing": self.renew_failing, "expired": self.expired,
                "renewals": self.renewals}


@dataclass
class Attack:
    fault_id: str
    kind: str
    rate: float  # queries/s, attempts/s or records/s (the fault's intensity)
    scope: str
    until: float = math.inf  # a leased credential ends by itself
    intrusion: bool = False  # the attacker has a session inside
    denied: bool = False  # zero trust stops it at the mesh
    attempts: float = 0.0


class SecurityController:
    """Controller: the estate's security posture, its attacks and its audits."""
    state_key = extensions.SECURITY

    commands = (RenewCertificate, RotateCredentials, CloseDebugEndpoint, RollbackPolicy,
                BlockEgress, BlockSource, Audit)

    def __init__(self, engine: Engine):
        self.engine = engine
        self._chaos: tuple[int, Any] | None = None  # (controllers seen, the chaos controller)
        p = engine.profile
        s = p.security
        self.spec = s
        self.environment = p.environment
        self.warnings = list(p.warnings)
        self.notes = list(s.notes)
        self.tls = bool(s.tls)
        self.tls_version = s.tls_version
        self.at_rest = s.encryption_algorithm or s.database_encryption
        self.in_transit_db = bool(s.tls and (s.zero_trust or "transit" in
                                             (s.database_encryption or "").lower()))
        self.plaintext = s.credentials == "plaintext"
        self.debug_open = bool(s.debug_endpoints)
        self.zero_trust = bool(s.zero_trust)
        self.audit_every = audit_interval(s.audits)
        self.ai = bool(s.ai_auditing)
        self.anomaly_detection = bool(s.anomaly_detection or s.ai_auditing)
        self.certs: list[Certificate] = []
        if s.tls:
            days = s.certificate_days_valid if s.certificate_days_valid is not None else 90.0
            auto = s.certificate_renewal == "automated"
            life = days * DAY
            self._cert("edge", "ACME (Let's Encrypt)", life, auto)
            if self.in_transit_db:
                self._cert("database", "internal CA", life, auto)
            if self.zero_trust:
                self._cert("mesh", "mesh CA (SPIFFE workload identities)", MESH_CERT_S, True)
        self.credential_age0 = PLAINTEXT_AGE_S if self.plaintext else MANAGED_AGE_S
        self.rotated_t = -self.credential_age0
        self.rotations = 0
        self.rotate_until = -math.inf
        self.attacks: list[Attack] = []
        self.policy_denied_share = 0.0
        # counters since the start
        self.login_failures = 0.0
        self.unknown_logins = 0
        self.denials = 0.0
        self.records_exfiltrated = 0.0
        self.records_exposed = 0.0
        # rates of the last tick
        self.denials_rps = 0.0
        self.anomalous_qps = 0.0
        self.login_failures_rps = 0.0
        self.egress_bytes_s = 0.0
        self.scan_probes_s = 0.0  # connection attempts a port scan makes on closed ports
        self.findings: list[dict] = []
        self.audits_run = 0
        self.last_audit_t: float | None = None
        self.next_audit = AUDIT_FIRST_S if self.audit_every is not None else math.inf
        self.recent: list[dict] = []
        self.detector = None
        self.detected_at: float | None = None
        if self.ai:
            from devsim_tui.detect.detector import Detector

            self.detector = Detector(["auth.login_failures", "auth.unknown_logins",
                                      "mesh.denials", "db.anomalous_queries"], warmup=60)
        self._unknown_last = 0

    def _cert(self, endpoint: str, issuer: str, life: float, auto: bool) -> None:
        issued = -INITIAL_AGE * life
        self.certs.append(Certificate(endpoint, issuer, life, issued, issued + life, auto))

    # ------------------------------------------------------------------ helpers

    def _event(self, t: float, type_: str, message: str, severity: str, **data: Any) -> None:
        ev = self.engine.emit(t, type_, message, severity, None, **data)
        self.recent.append({"t": t, "type": type_, "severity": severity, "message": message,
                            "seq": ev.seq})
        del self.recent[:-EVENTS_KEPT]

    def cert(self, endpoint: str) -> Certificate | None:
        return next((c for c in self.certs if c.endpoint == endpoint), None)

    def _renew(self, t: float, c: Certificate, how: str) -> None:
        c.issued_t, c.not_after = t, t + c.lifetime_s
        c.renewals += 1
        was_expired, c.expired = c.expired, False
        c.renew_failing = False
        self._event(t, "security.cert_renewed",
                    f"certificate for {c.endpoint} renewed ({how}) by {c.issuer}; valid "
                    f"{c.lifetime_s / DAY:g} days" + ("; TLS handshakes succeed again"
                                                      if was_expired else ""), "info",
                    endpoint=c.endpoint, how=how)

    def _stop_faults(self, t: float, kinds: tuple[str, ...]) -> int:
        from devsim_tui.sim.chaos import ChaosController

        chaos = next((c for c in self.engine.controllers if isinstance(c, ChaosController)),
                     None)
        if chaos is None:
            return 0
        victims = [f for f in chaos.active if f.type.name in kinds]
        for f in victims:
            chaos._revert(t, f, "stopped")
        return len(victims)

    # ------------------------------------------------------------------ faults (from chaos)

    def inject(self, t: float, fault: Any) -> str | None:
        """Start a security fault; returns a rejection or None. Sets the fault's note."""
        name = fault.type.name
        x = fault.intensity
        env = self.environment
        if name == "tls-expiry":
            c = self.cert("edge")
            fault.targets = ["edge"]
            if c is None:
                fault.note = f"no effect: TLS is off in {self.engine.profile.name} (plain HTTP)"
                return None
            c.not_after = min(c.not_after, t)
            c.renew_failing = True
            fault.note = "every TLS handshake fails, so every request errors"
            return None
        if name == "cert-renewal-failure":
            if not self.certs:
                return f"cert-renewal-failure: TLS is off in {env}: no certificate to renew"
            scope = "edge" if fault.scope in ("estate", "") else fault.scope
            c = self.cert(scope)
            if c is None:
                return (f"cert-renewal-failure: no certificate {scope!r} "
                        f"(endpoints: {', '.join(k.endpoint for k in self.certs)})")
            fault.scope = scope
            fault.targets = [scope]
            c.renew_failing = True
            c.not_after = min(c.not_after, t + x * 3600.0)
            fault.note = (f"the issuer rejects renewals of {scope}'s certificate; it expires in "
                          f"{x:g} h unless renewed by hand")
            return None
        if name == "policy-misconfig":
            if not self.zero_trust:
                return f"policy-misconfig: {env} has no zero-trust service policy"
            fault.targets = ["mesh policy"]
            fault.note = (f"the new service-to-service policy denies {x:.0%} of legitimate "
                          "calls (errors with cause 'denied by policy')")
            return None
        a = Attack(fault.id, name, float(x), fault.scope)
        fault.targets = [fault.scope if fault.scope not in ("estate",) else "estate"]
        if name == "credential-leak":
            if self.zero_trust:
                a.denied = True
                fault.note = ("a compromised pod uses the leaked secret: it has no workload "
                              "identity, so the mesh denies and logs every call")
            else:
                a.intrusion = True
                self.unknown_logins += 1
                if not self.plaintext:
                    a.until = t + LEASE_TTL_S
                    fault.note = (f"an attacker logs in with a leaked {self.spec.credentials} "
                                  f"lease: {x:g} anomalous queries/s until the lease ends in "
                                  f"{LEASE_TTL_S / 60:.0f} min")
                else:
                    fault.note = (f"an attacker logs in with the plaintext credentials: {x:g} "
                                  "anomalous queries/s from an unknown source until they are "
                                  "rotated")
        elif name == "debug-port-scan":
            if self.debug_open:
                a.intrusion = True
                self.unknown_logins += 1
                fault.note = (f"the scan finds the Node inspector on {DEBUG_PORT} and attaches: "
                              f"remote code execution; {x:g} queries/s with the app's "
                              "credentials")
            else:
                fault.note = f"no effect: port {DEBUG_PORT} is closed in {env} (scan logged)"
        elif name == "brute-force-login":
            if self.zero_trust:
                a.denied = True
                fault.note = "login attempts without a workload identity are denied by the mesh"
            elif self.plaintext:
                fault.note = (f"{x:g} password guesses/s against a plaintext, never-rotated "
                              "password: it falls after a few thousand guesses")
            else:
                fault.note = (f"{x:g} password guesses/s; the {self.spec.credentials} account "
                              "locks out, nothing gets in")
        elif name == "data-exfiltration":
            scope = "db" if fault.scope in ("estate", "db", "") else fault.scope
            if scope not in ("db", "wire"):
                return "data-exfiltration: scope is db (a copied volume or backup) or wire " \
                       "(sniffed traffic)"
            a.scope = fault.scope = scope
            fault.targets = [scope]
            plain = not (self.at_rest if scope == "db" else self.tls)
            what = "at rest" if scope == "db" else "in transit"
            fault.note = (f"{x:g} records/s copied out; " + (
                f"plaintext: no encryption {what}, every record is exposed" if plain else
                f"encrypted {what} ({self.at_rest if scope == 'db' else self.tls_version or 'TLS'}"
                "): the copy is unreadable"))
        self.attacks.append(a)
        self._event(t, f"security.{name}", f"{name}: {fault.note}",
                    "critical" if a.intrusion else "warning", fault=fault.id)
        return None

    def revert(self, t: float, fault: Any) -> None:
        name = fault.type.name
        if name == "tls-expiry":
            c = self.cert("edge")
            if c is not None:
                c.renew_failing = False
                if c.expired or c.not_after <= t:
                    self._renew(t, c, "re-issued")
            return
        if name == "cert-renewal-failure":
            c = self.cert(fault.targets[0]) if fault.targets else None
            if c is not None:
                c.renew_failing = False
                c.next_retry = t  # the next tick's automated renewal goes through
            return
        self.attacks = [a for a in self.attacks if a.fault_id != fault.id]

    # ------------------------------------------------------------------ commands

    def apply(self, cmd: C.Command) -> str | None:
        t = self.engine.t
        if isinstance(cmd, RenewCertificate):
            if not self.certs:
                return f"TLS is off in {self.environment}: no certificate to renew"
            which = cmd.endpoint.lower()
            certs = self.certs if which == "all" else [c for c in self.certs
                                                      if c.endpoint == which]
            if not certs:
                return (f"no certificate {cmd.endpoint!r} "
                        f"(endpoints: {', '.join(c.endpoint for c in self.certs)}, all)")
            self._stop_faults(t, ("cert-renewal-failure", "tls-expiry"))
            for c in certs:
                self._renew(t, c, "by hand")
            return None
        if isinstance(cmd, RotateCredentials):
            self.rotated_t = t
            self.rotations += 1
            self.rotate_until = t + ROTATE_COST_S
            ended = [a for a in self.attacks if a.kind in ("credential-leak",
                                                           "brute-force-login")]
            self._stop_faults(t, ("credential-leak", "brute-force-login"))
            self._event(t, "security.credentials_rotated",
                        f"credentials rotated: {len(ended)} attacker session(s) cut off; rolling "
                        f"restart for {ROTATE_COST_S:.0f} s"
                        + (" (still stored in plaintext)" if self.plaintext else ""), "info")
            return None
        if isinstance(cmd, CloseDebugEndpoint):
            if not self.debug_open:
                return f"port {DEBUG_PORT} is already closed in {self.environment}"
            self.debug_open = False
            n = self._stop_faults(t, ("debug-port-scan",))
            self._event(t, "security.debug_closed", f"Node inspector port {DEBUG_PORT} closed; "
                        f"{n} debug session(s) dropped", "info")
            return None
        if isinstance(cmd, RollbackPolicy):
            if not self.zero_trust:
                return f"{self.environment} has no zero-trust service policy"
            n = self._stop_faults(t, ("policy-misconfig",))
            if not n:
                return "the service policy is already the last good version"
            self._event(t, "security.policy_rolled_back",
                        "service-to-service policy rolled back: legitimate calls allowed again",
                        "info")
            return None
        if isinstance(cmd, BlockEgress):
            n = self._stop_faults(t, ("data-exfiltration",))
            if not n:
                return "no exfiltration in progress"
            self._event(t, "security.egress_blocked", "egress blocked: the exfiltration stops",
                        "info")
            return None
        if isinstance(cmd, BlockSource):
            n = self._stop_faults(t, ("brute-force-login",))
            if not n:
                return "no brute-force attack in progress"
            self._event(t, "security.source_blocked", "attacking source address blocked",
                        "info")
            return None
        if isinstance(cmd, Audit):
            self.run_audit(t, "on demand")
            return None
        return f"not a security command: {cmd.name}"

    # ------------------------------------------------------------------ tick

    def before_tick(self, t: float) -> None:
        for c in self.certs:
            if c.automated and t >= c.renew_at() and t >= c.next_retry:
                if c.renew_failing:
                    if c.next_retry == 0.0 or t >= c.next_retry:
                        self._event(t, "security.cert_renewal_failed",
                                    f"automated renewal of {c.endpoint}'s certificate failed "
                                    f"({c.issuer}); expires in "
                                    f"{max(c.not_after - t, 0) / 3600:.1f} h", "warning",
                                    endpoint=c.endpoint)
                    c.next_retry = t + RENEW_RETRY_S
                else:
                    self._renew(t, c, "automated at 2/3 of its lifetime")
            if not c.expired and t >= c.not_after:
                c.expired = True
                self._event(t, "security.cert_expired",
                            f"certificate for {c.endpoint} expired: every TLS handshake through "
                            "it fails", "critical", endpoint=c.endpoint)
        self.policy_denied_share = min(1.0, sum(
            f.intensity for f in self._faults("policy-misconfig")))

    def _faults(self, kind: str) -> list:
        ctls = self.engine.controllers
        found = self._chaos
        if found is None or found[0] != len(ctls):  # looked up again only if one was attached
            from devsim_tui.sim.chaos import ChaosController

            found = self._chaos = (len(ctls), next(
                (c for c in ctls if isinstance(c, ChaosController)), None))
        chaos = found[1]
        return [f for f in chaos.active if f.type.name == kind] if chaos else []

    def error_share(self, t: float) -> float:
        """Share of requests the security posture fails this tick (read by chaos)."""
        err = 0.0
        if any(c.expired for c in self.certs):
            err = 1.0
        err += self.policy_denied_share
        if t < self.rotate_until:
            err += ROTATE_ERROR
        return min(err, 1.0)

    def after_tick(self, t: float, agg: Aggregates) -> None:
        dt = self.engine.dt
        anomalous = failures = denials = egress = probes = 0.0
        for a in list(self.attacks):
            if t >= a.until:
                a.intrusion = False
                self._event(t, "security.lease_expired", f"the leaked credential's lease "
                            "expired: the attacker's session ends", "info", fault=a.fault_id)
                a.until = math.inf
            if a.denied:
                denials += a.rate
                continue
            if a.kind == "brute-force-login" and not a.intrusion:
                failures += a.rate
                a.attempts += a.rate * dt
                if self.plaintext and a.attempts >= BRUTE_SUCCESS_ATTEMPTS:
                    a.intrusion = True
                    self.unknown_logins += 1
                    self._event(t, "security.brute_force_success",
                                f"brute force succeeded after {a.attempts:.0f} guesses: the "
                                "attacker is logged in", "critical", fault=a.fault_id)
                continue
            if a.kind == "data-exfiltration":
                self.records_exfiltrated += a.rate * dt
                egress += a.rate * RECORD_BYTES
                plain = not (self.at_rest if a.scope == "db" else self.tls)
                if plain:
                    self.records_exposed += a.rate * dt
                continue
            if a.intrusion:
                anomalous += a.rate if a.kind != "brute-force-login" else 20.0
            elif a.kind == "debug-port-scan":
                probes += a.rate  # refused and logged by the host firewall
        legit_denied = self.policy_denied_share * agg.offered_rps
        denials += legit_denied
        self.denials += denials * dt
        self.login_failures += failures * dt
        self.denials_rps, self.anomalous_qps = denials, anomalous
        self.login_failures_rps, self.egress_bytes_s = failures, egress
        self.scan_probes_s = probes
        if t >= self.next_audit:
            self.run_audit(t, "scheduled")
            self.next_audit = t + (self.audit_every or math.inf)
        if self.detector is not None:
            finding = self.detector.update(t, {
                "auth.login_failures": failures,
                "auth.unknown_logins": float(self.unknown_logins - self._unknown_last),
                "mesh.denials": denials, "db.anomalous_queries": anomalous})
            self._unknown_last = self.unknown_logins
            if finding is not None and self.detected_at is None:
                self.detected_at = t
                self._event(t, "security.ai_audit_anomaly",
                            "AI auditing: anomalous auth/audit streams ("
                            + ", ".join(finding.signals) + ")", "warning",
                            signals=list(finding.signals), score=round(finding.score, 3))
            elif finding is None and self.detected_at is not None and not self.attacks \
                    and not self.policy_denied_share:
                self.detected_at = None  # the episode is over: the next attack is news again

    def signals(self) -> dict[str, float]:
        """Security telemetry for the anomaly detector, as an estate's auth log, service
        mesh, database audit log, egress gateway and host firewall count it (names begin with
        SECURITY_SIGNAL_PREFIXES). Every one is zero in normal running, so any attack is a
        departure (the detector watches them in every profile; experimental's AI auditing
        runs its own, fed every tick, on the auth and denial streams besides)."""
        return {"auth.login_failures": self.login_failures_rps,
                "auth.intrusions": float(sum(1 for a in self.attacks if a.intrusion)),
                "mesh.denials": self.denials_rps,
                "db.anomalous_queries": self.anomalous_qps,
                "net.egress": self.egress_bytes_s,
                "net.scan_probes": self.scan_probes_s}

    # ------------------------------------------------------------------ posture

    def controls(self) -> list[dict]:
        t = self.engine.t
        out = []

        def ctl(name: str, ok: bool | None, detail: str, fix: str | None = None) -> None:
            out.append({"control": name, "status": "n/a" if ok is None else
                        ("pass" if ok else "fail"), "detail": detail, "mitigation": fix})

        ctl("tls-in-transit", self.tls, (self.tls_version or "TLS") if self.tls
            else "TLS disabled: traffic is plain HTTP", None if self.tls else
            "enable security.tls")
        if self.certs:
            soon = [c for c in self.certs if c.not_after - t < c.soon_s()]
            ctl("certificates-valid", not soon,
                "no certificate near expiry" if not soon else
                ", ".join(f"{c.endpoint} {'expired' if c.expired else 'expires in '}"
                          f"{'' if c.expired else _dur(c.not_after - t)}" for c in soon),
                None if not soon else "renew-certificate")
            manual = [c.endpoint for c in self.certs if not c.automated]
            ctl("certificate-renewal-automated", not manual,
                "renewed automatically at 2/3 of their lifetime" if not manual else
                "manual renewal: " + ", ".join(manual), None if not manual else
                "security.certificate_renewal: automated")
        else:
            ctl("certificates-valid", None, "no TLS endpoint")
            ctl("certificate-renewal-automated", None, "no TLS endpoint")
        ctl("encryption-at-rest", bool(self.at_rest), self.at_rest or
            "database volumes and backups are plaintext",
            None if self.at_rest else "security.database_encryption")
        ctl("secrets-managed", not self.plaintext, f"credentials: {self.spec.credentials}",
            None if not self.plaintext else "move credentials to a vault")
        age = t - self.rotated_t
        leaks = [a for a in self.attacks if a.intrusion]
        ctl("credentials-rotated", age < CREDENTIAL_MAX_AGE_S and not leaks,
            f"last rotated {_dur(age)} ago" + (f"; {len(leaks)} attacker session(s)"
                                               if leaks else ""),
            None if age < CREDENTIAL_MAX_AGE_S and not leaks else "rotate-credentials")
        ctl("debug-endpoints-closed", not self.debug_open,
            f"port {DEBUG_PORT} " + ("reachable (Node inspector)" if self.debug_open
                                     else "closed"),
            "close-debug-endpoint" if self.debug_open else None)
        ctl("zero-trust", self.zero_trust, "service-to-service policy on mTLS identities"
            if self.zero_trust else "flat network: any pod can call any service",
            None if self.zero_trust else "security.zero_trust")
        ctl("audits-scheduled", self.audit_every is not None,
            self.spec.audits or "no scheduled audit", None if self.audit_every else "audit")
        ctl("anomaly-detection", self.anomaly_detection, "AI auditing of auth/denial streams"
            if self.ai else ("anomaly detection on" if self.anomaly_detection else "none"))
        exfil = [a for a in self.attacks if a.kind == "data-exfiltration"]
        ctl("no-active-attack", not (leaks or exfil),
            "no attacker inside" if not (leaks or exfil) else
            ", ".join(sorted({a.kind for a in leaks + exfil})),
            None if not (leaks or exfil) else _fix(leaks + exfil))
        return out

    def score(self, controls: list[dict]) -> float:
        applicable = [c for c in controls if c["status"] != "n/a"]
        return 100.0 * sum(c["status"] == "pass" for c in applicable) / max(len(applicable), 1)

    def run_audit(self, t: float, how: str) -> None:
        """An audit: each failing control becomes a finding (kube-bench style checks)."""
        self.audits_run += 1
        self.last_audit_t = t
        failing = [c for c in self.controls() if c["status"] == "fail"]
        self.findings = [{"id": f"SEC-{i + 1}", "control": c["control"],
                          "severity": _SEVERITY.get(c["control"], "warning"),
                          "detail": c["detail"], "mitigation": c["mitigation"], "found_t": t}
                         for i, c in enumerate(failing)]
        self._event(t, "security.audit", f"security audit ({how}): {len(failing)} finding(s)"
                    + (": " + ", ".join(c["control"] for c in failing) if failing else ""),
                    "warning" if failing else "info", findings=len(failing))

    def intrusions(self) -> int:
        return sum(1 for a in self.attacks if a.intrusion)

    def cert_expiry(self) -> list[tuple[str, str, float]]:
        t = self.engine.t
        return [(c.endpoint, c.issuer, c.not_after - t) for c in self.certs]

    def state(self) -> dict:
        t = self.engine.t
        controls = self.controls()
        return {
            "environment": self.environment,
            "score": round(self.score(controls), 1),
            "controls": controls,
            "failing": [c["control"] for c in controls if c["status"] == "fail"],
            "certificates": [c.view(t) for c in self.certs],
            "findings": list(self.findings), "audits_run": self.audits_run,
            "last_audit_t": self.last_audit_t,
            "next_audit_in_s": None if math.isinf(self.next_audit) else
            round(self.next_audit - t, 1),
            "encryption": {"at_rest": self.at_rest, "in_transit": self.tls_version if self.tls
                           else None, "database_tls": self.in_transit_db},
            "credentials": self.spec.credentials, "debug_endpoint_open": self.debug_open,
            "zero_trust": self.zero_trust, "ai_auditing": self.ai,
            "attacks": [{"fault": a.fault_id, "kind": a.kind, "intrusion": a.intrusion,
                         "denied": a.denied} for a in self.attacks],
            "intrusions": self.intrusions(),
            "rates": {"denials_per_s": round(self.denials_rps, 3),
                      "anomalous_queries_per_s": round(self.anomalous_qps, 3),
                      "login_failures_per_s": round(self.login_failures_rps, 3),
                      "egress_bytes_per_s": round(self.egress_bytes_s, 1)},
            "totals": {"denials": round(self.denials), "login_failures":
                       round(self.login_failures), "unknown_source_logins": self.unknown_logins,
                       "records_exfiltrated": round(self.records_exfiltrated),
                       "records_exposed": round(self.records_exposed),
                       "credential_rotations": self.rotations},
            "ai_detected_at": self.detected_at,
            "recent_events": list(self.recent[-10:]),
            "warnings": self.warnings, "notes": self.notes,
        }


_SEVERITY = {"certificates-valid": "critical", "no-active-attack": "critical",
             "debug-endpoints-closed": "critical", "secrets-managed": "warning",
             "tls-in-transit": "warning", "encryption-at-rest": "warning"}


#: What each control checks and why it matters (a finding's detail screen explains it with
#: this; docs/security.md has the sources).
CONTROL_ABOUT = {
    "tls-in-transit": "Client traffic is encrypted with TLS. Without it, credentials and records "
                      "cross the network in plain HTTP and an exfiltrated copy is readable.",
    "certificates-valid": "No TLS certificate is within its CertificateExpiringSoon window (7 "
                          "days; 4 h for day-long mesh certificates). An expired certificate "
                          "fails every TLS handshake through it, so every request errors.",
    "certificate-renewal-automated": "Certificates are renewed automatically (cert-manager renews "
                                     "at 2/3 of their lifetime); manual renewal waits for a "
                                     "person to remember.",
    "encryption-at-rest": "Database volumes and backups are encrypted, so a copy taken from them "
                          "exposes no readable records.",
    "secrets-managed": "Credentials live in a vault or secrets manager as short leases, not as "
                       "plaintext that never expires.",
    "credentials-rotated": "Static credentials were rotated within 90 days and no attacker "
                           "holds a session opened with them.",
    "debug-endpoints-closed": f"The Node inspector (port {DEBUG_PORT}) is not reachable: an "
                              "attached debugger runs any code with the app's credentials.",
    "zero-trust": "Service-to-service calls need an mTLS workload identity and pass a policy; "
                  "on a flat network any compromised pod can call any service.",
    "audits-scheduled": "Audits run on a schedule, so a failing control becomes a finding "
                        "without anyone asking.",
    "anomaly-detection": "An anomaly detector watches the auth and denial streams and flags an "
                         "attack before a threshold rule does.",
    "no-active-attack": "No attacker has a session inside the estate and no data is leaving it.",
}


def _fix(attacks: list[Attack]) -> str:
    fixes = {"credential-leak": "rotate-credentials", "brute-force-login": "block-source",
             "debug-port-scan": "close-debug-endpoint", "data-exfiltration": "block-egress"}
    return ", ".join(sorted({fixes[a.kind] for a in attacks}))


def _dur(s: float) -> str:
    s = max(s, 0.0)
    if s >= DAY:
        return f"{s / DAY:.1f}d"
    if s >= 3600:
        return f"{s / 3600:.1f}h"
    if s >= 60:
        return f"{s / 60:.0f}m"
    return f"{s:.0f}s"


def summary(state: dict | None) -> dict | None:
    """The compact per-tick view of a published state (headless `tick` lines, MQTT `tick`)."""
    if not state:
        return None
    certs = state["certificates"]
    return {"score": state["score"], "failing": list(state["failing"]),
            "open_findings": len(state["findings"]), "intrusions": state["intrusions"],
            "cert_expiry_s": min((c["expires_in_s"] for c in certs), default=None),
            "denials_per_s": state["rates"]["denials_per_s"],
            "anomalous_queries_per_s": state["rates"]["anomalous_queries_per_s"],
            "login_failures_per_s": state["rates"]["login_failures_per_s"],
            "records_exfiltrated": state["totals"]["records_exfiltrated"],
            "records_exposed": state["totals"]["records_exposed"]}


def security_of(engine: Any) -> SecurityController | None:
    return next((c for c in engine.controllers if isinstance(c, SecurityController)), None)


register(SecurityController)
