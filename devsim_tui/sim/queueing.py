"""Queueing formulas (Erlang C / M/M/c) and the per-server latency table the engine interpolates.

All servers of a profile share the number of workers c, so the response-time distribution of a
server, measured in units of its mean service time, depends on its utilisation alone. The table is
built once per engine (bisection over a grid of utilisations); a tick then costs a few `np.interp`
calls whatever the fleet size. Never imports the UI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RHO_MAX = 0.995  # above this the steady-state model is replaced by the backlog model


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits, for c servers and offered load a = lambda/mu Erlangs."""
    if a <= 0:
        return 0.0
    if a >= c:
        return 1.0
    # Iterative Erlang B then convert: stable for large c, no factorials.
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1.0 - rho + rho * b)


def _erlang_c_vec(c: int, a: np.ndarray) -> np.ndarray:
    b = np.ones_like(a)
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = a / c
    return np.where(a >= c, 1.0, b / (1.0 - rho + rho * b))


def _survival(x: np.ndarray, pwait: np.ndarray, k: np.ndarray) -> np.ndarray:
    """P(R > x) for R = S + Wq in units of the mean service time.

    S ~ Exp(1); Wq is 0 with probability 1-C and Exp(k) otherwise, k = c(1-rho). The sum of two
    exponentials is hypoexponential; k == 1 is its Erlang-2 limit.
    """
    same = np.abs(k - 1.0) < 1e-9
    kk = np.where(same, 2.0, k)
    hypo = (kk * np.exp(-x) - np.exp(-kk * x)) / (kk - 1.0)
    hypo = np.where(same, np.exp(-x) * (1.0 + x), hypo)
    return (1.0 - pwait) * np.exp(-x) + pwait * hypo


def _quantile(q: float, pwait: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Response-time quantile q in service-time units, by bisection on the survival function."""
    target = 1.0 - q
    lo = np.zeros_like(pwait)
    hi = np.full_like(pwait, 1.0)
    # Grow the bracket until it contains the quantile everywhere.
    while True:
        short = _survival(hi, pwait, k) > target
        if not short.any():
            break
        hi = np.where(short, hi * 2.0, hi)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        above = _survival(mid, pwait, k) > target
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class MMC:
    """Steady-state M/M/c figures (times in seconds)."""

    lam: float
    mu: float
    c: int
    rho: float
    C: float
    Wq: float
    W: float
    Lq: float
    L: float
    p50: float
    p99: float
    p99_wait: float


def mmc(lam: float, mu: float, c: int) -> MMC:
    """M/M/c with arrival rate lam, per-server service rate mu and c servers (requires rho < 1)."""
    if lam < 0 or mu <= 0 or c < 1:
        raise ValueError("need lam >= 0, mu > 0, c >= 1")
    a = lam / mu
    rho = a / c
    if rho >= 1:
        raise ValueError(f"unstable queue: rho = {rho:.3f} >= 1")
    C = erlang_c(c, a)
    theta = c * mu - lam
    Wq = C / theta
    W = Wq + 1.0 / mu
    pw = np.array([C])
    k = np.array([theta / mu])
    p50 = float(_quantile(0.50, pw, k)[0]) / mu
    p99 = float(_quantile(0.99, pw, k)[0]) / mu
    # P(Wq > t) = C e^{-theta t}
    p99_wait = math.log(C / 0.01) / theta if C > 0.01 else 0.0
    return MMC(lam, mu, c, rho, C, Wq, W, lam * Wq, lam * W, p50, p99, p99_wait)


class LatencyTable:
    """Mean, p50 and p99 response time (in service-time units) of an M/M/c server by utilisation."""

    def __init__(self, c: int, points: int = 2001):
        self.c = c
        # Denser near saturation, where latency bends upward.
        u = np.linspace(0.0, 1.0, points)
        self.rho = RHO_MAX * (1.0 - (1.0 - u) ** 2)
        a = self.rho * c
        pwait = _erlang_c_vec(c, a)
        k = c * (1.0 - self.rho)
        self.pwait = pwait
        self.mean = 1.0 + pwait / k
        self.p50 = _quantile(0.50, pwait, k)
        self.p99 = _quantile(0.99, pwait, k)

    def lookup(self, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, p50, p99) in service-time units for utilisations rho (clipped to the table)."""
        r = self.rho
        return (
            np.interp(rho, r, self.mean),
            np.interp(rho, r, self.p50),
            np.interp(rho, r, self.p99),
        )

    def wait_probability(self, rho: np.ndarray) -> np.ndarray:
        return np.interp(rho, self.rho, self.pwait)


# --------------------------------------------------------------------------- M/M/c/K
#
# A server with c workers and room for K = c + max_queue requests in the system: arrivals that
# find K requests already there are rejected (HTTP 503). The stationary distribution is the
# truncated birth-death chain p_n ~ a^n/n! (n <= c), p_c rho^(n-c) (c < n <= K), a = lambda/mu,
# rho = a/c (Gross & Harris, "Fundamentals of Queueing Theory", section 2.5; Kleinrock,
# "Queueing Systems" vol. 1, 3.7). It exists for every load, rho > 1 included. By PASTA an
# arrival is rejected with probability p_K; an accepted one that finds n >= c requests waits for
# n - c + 1 completions at rate c mu (an Erlang wait), then its own Exp(mu) service.
#
# Times below are in units of the mean service time 1/mu.

RHO_TOP = 1000.0  # tables stop here; beyond it the queue is full (p_K -> 1 - 1/rho)


def _log_factorials(n: int) -> np.ndarray:
    """log(k!) for k = 0..n."""
    return np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1, dtype=np.float64)))])


def _stationary(rho: np.ndarray, c: int, K: int) -> np.ndarray:
    """p_n for n = 0..K, one row per utilisation (rows sum to 1)."""
    rho = np.maximum(np.asarray(rho, np.float64), 1e-300)[:, None]
    n = np.arange(K + 1)[None, :]
    lf = _log_factorials(c)
    la = np.log(c * rho)
    head = n[:, : c + 1] * la - lf[None, : c + 1]
    tail = c * la - lf[c] + (n[:, c + 1:] - c) * np.log(rho)
    logp = np.concatenate([head, tail], axis=1)
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(axis=1, keepdims=True)


def _wait_phases(p: np.ndarray, c: int, K: int) -> np.ndarray:
    """P(J = j), j = 0..K-c+1: completions an accepted arrival waits for (0 = a free worker)."""
    acc = p[:, :K]  # arrivals finding K in the system are rejected
    acc = acc / np.maximum(acc.sum(axis=1, keepdims=True), 1e-300)
    j0 = acc[:, :c].sum(axis=1, keepdims=True)
    return np.concatenate([j0, acc[:, c:]], axis=1)  # column j = n - c + 1 for n >= c


def _phase_survival(jmax: int, y: np.ndarray, c: int) -> np.ndarray:
    """F[j, y] = P(W_j + S > y): W_j ~ Erlang(j, rate c) (W_0 = 0), S ~ Exp(1) independent.

    For c > 1, P(W + S > y) = P(W > y) + e^{-y} E[e^W; W <= y] and, for W ~ Erlang(j, c),
    E[e^W; W <= y] = (c/(c-1))^j P(Erlang(j, c-1) <= y); Erlang tails are Poisson sums. For c = 1
    the response is Erlang(j+1, 1).
    """
    y = np.asarray(y, np.float64)
    j = np.arange(jmax + 1)

    def upper(z: np.ndarray, kmax: int) -> np.ndarray:
        """P(Poisson(z) >= k) for k = 0..kmax, columns over z (accurate in the far tail)."""
        zmax = float(z.max(initial=0.0))
        imax = int(max(kmax, zmax + 12.0 * math.sqrt(zmax + 1.0)) + 40)
        i = np.arange(imax + 1)[:, None]
        zz = np.maximum(z, 1e-300)[None, :]
        logpmf = -zz + i * np.log(zz) - _log_factorials(imax)[:, None]
        pmf = np.exp(logpmf)
        pmf[:, z <= 0] = 0.0
        pmf[0, z <= 0] = 1.0
        tail = np.cumsum(pmf[::-1], axis=0)[::-1]
        return np.minimum(tail[: kmax + 1], 1.0)

    if c == 1:
        return 1.0 - upper(y, jmax + 1)[1:]  # P(Poisson(y) < j+1)
    below = 1.0 - upper(c * y, jmax)  # P(Erlang(j, c) > y) = P(Poisson(cy) < j)
    up = upper((c - 1) * y, jmax)
    with np.errstate(divide="ignore"):
        log_up = np.log(up)
    extra = np.exp(-y[None, :] + j[:, None] * math.log(c / (c - 1)) + log_up)
    return np.clip(below + extra, 0.0, 1.0)


@dataclass(frozen=True)
class MMCK:
    """Steady-state M/M/c/K figures (times in seconds, rates per second)."""

    lam: float
    mu: float
    c: int
    K: int
    rho: float  # offered utilisation lambda / (c mu), may exceed 1
    p_reject: float  # share of arrivals rejected (queue full)
    throughput: float  # completions per second = lambda (1 - p_reject) <= c mu
    L: float  # mean number in the system
    W: float  # mean response time of an accepted request (Little: L / throughput)
    p50: float
    p99: float
    w_max: float  # the longest possible queueing wait's mean: (K - c + 1) / (c mu)

    def survival(self, t: np.ndarray) -> np.ndarray:
        """P(response time > t) for accepted requests, t in seconds."""
        return _mmck_survival(np.atleast_1d(np.asarray(t, np.float64)) * self.mu,
                              self.rho, self.c, self.K)


def _mmck_survival(y: np.ndarray, rho: float, c: int, K: int) -> np.ndarray:
    p = _stationary(np.array([rho]), c, K)
    pj = _wait_phases(p, c, K)
    return (pj @ _phase_survival(pj.shape[1] - 1, y, c))[0]


def mmck(lam: float, mu: float, c: int, K: int) -> MMCK:
    """M/M/c/K with arrival rate lam, per-worker service rate mu, c workers, K >= c places."""
    if lam < 0 or mu <= 0 or c < 1 or K < c:
        raise ValueError("need lam >= 0, mu > 0, c >= 1, K >= c")
    rho = lam / (c * mu)
    p = _stationary(np.array([rho]), c, K)[0]
    pk = float(p[K])
    L = float((np.arange(K + 1) * p).sum())
    thr = lam * (1.0 - pk)
    W = L / thr if thr > 0 else 1.0 / mu

    def quantile(q: float) -> float:
        lo, hi = 0.0, 1.0
        while _mmck_survival(np.array([hi]), rho, c, K)[0] > 1.0 - q:
            hi *= 2.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if _mmck_survival(np.array([mid]), rho, c, K)[0] > 1.0 - q:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi) / mu

    return MMCK(lam, mu, c, K, rho, pk, thr, L, W, quantile(0.50), quantile(0.99),
                (K - c + 1) / (c * mu))


class QueueTable:
    """M/M/c/K figures of one server as tables the engine reads with a few array operations.

    The state of a server is x, the mean number of requests in it. `w = sqrt(x / x_top)` indexes
    a uniform grid (dense where x is small): per grid point the rejection probability, the
    utilisation of the workers, mean/p50/p99 response time and the response-time survival
    function, all of the M/M/c/K whose stationary mean is x (the "equivalent load" of the
    pointwise stationary fluid flow approximation). `v = rho / (1 + rho)` indexes a second
    uniform grid giving the stationary w of an offered load. Built once per (c, K).
    """

    G = 1025  # points on the state grid
    GV = 2001  # points on the load grid
    Y = 320  # points on the response-time grid of the survival table

    def __init__(self, c: int, K: int):
        self.c, self.K = c, K
        self._p99_of_u: tuple[np.ndarray, np.ndarray] | None = None
        v_top = RHO_TOP / (1.0 + RHO_TOP)
        self.v_top = v_top
        # Fine load grid: L(rho), to invert.
        vf = np.linspace(0.0, v_top, self.GV)
        rf = vf / (1.0 - vf)
        Lf = np.concatenate([self._mean_number(rf[i:i + 1000])
                             for i in range(0, len(rf), 1000)])
        Lf = np.maximum.accumulate(Lf)
        self.x_top = x_top = float(Lf[-1])
        # Load grid -> stationary w.
        self.w_of_v = np.sqrt(Lf / x_top)
        self.dw_of_v = _diff(self.w_of_v)
        # State grid -> equivalent load (interpolated, then two Newton steps on the exact L)
        # -> figures.
        w = np.linspace(0.0, 1.0, self.G)
        xg = x_top * w * w
        rho = np.interp(xg, Lf, rf)
        slope = np.gradient(Lf, rf)
        for _ in range(2):
            d = np.interp(rho, rf, slope)
            rho = np.clip(rho + (xg - self._mean_number(rho)) / np.maximum(d, 1e-12),
                          0.0, RHO_TOP)
        self.rho = rho
        p = _stationary(rho, c, K)
        pk = p[:, K]
        util = rho * (1.0 - pk)  # busy share of the workers: lambda (1 - p_K) / (c mu)
        pj = _wait_phases(p, c, K)
        jmax = pj.shape[1] - 1
        mean = 1.0 + (pj * np.arange(jmax + 1)).sum(axis=1) / c
        # Response-time grid: the wait is at most ~(jmax + a few sqrt(jmax)) / c, service tail 40.
        self.y_top = y_top = (jmax + 8.0 * math.sqrt(jmax + 1.0)) / c + 40.0
        u = np.linspace(0.0, 1.0, self.Y)
        self.y = y = y_top * u * u
        surv = np.clip(pj @ _phase_survival(jmax, y, c), 0.0, 1.0)
        surv = np.minimum.accumulate(surv, axis=1)
        surv[:, 0] = 1.0
        self.surv = surv

        def quantile(q: float) -> np.ndarray:
            # first grid index where S <= 1-q, then linear interpolation within the cell
            target = 1.0 - q
            k = np.argmax(surv <= target, axis=1)
            k = np.maximum(k, 1)
            s0 = surv[np.arange(self.G), k - 1]
            s1 = surv[np.arange(self.G), k]
            f = np.where(s0 > s1, (s0 - target) / np.maximum(s0 - s1, 1e-300), 0.0)
            return y[k - 1] + f * (y[k] - y[k - 1])

        cut = np.argmax(surv <= 1e-9, axis=1)
        p50, p99, ycut = quantile(0.50), quantile(0.99), y[np.maximum(cut, 1)]
        self.rows = np.stack([pk, util, mean, p50, p99, ycut])
        # 0 p_K, 1 U, 2 mean, 3 p50, 4 p99, 5 cut (responses beyond it: < 1e-9)
        # What the engine reads every tick at the stationary state: p_K and p99 (interpolated),
        # dU/dx (how fast the queue relaxes) and the cut (nearest grid point is enough).
        # (separate 1-D arrays: indexing a 1-D array is far cheaper than a column gather)
        self.pk, self.p99 = pk.copy(), p99.copy()
        # Differences to the next grid point (the last one 0): a linear interpolation is
        # lo[i] + f * d[i], the same arithmetic as lo[i] + f * (lo[i + 1] - lo[i]) with one
        # gather fewer.
        self.dpk, self.dp99 = _diff(pk), _diff(p99)
        self.dudx = np.gradient(util, x_top * w * w)
        self.cut = ycut.copy()
        self.cut_top = float(ycut.max())
        self.row_list = [r.copy() for r in self.rows]
        self.surv_flat = self.surv.ravel()
        # along the response-time grid: surv[i, k + 1] - surv[i, k] (flat, as surv_flat)
        self.dsurv_flat = _diff(self.surv_flat)

    def p99_at_utilisation(self, u: np.ndarray | float) -> np.ndarray:
        """p99 response time, in units of the mean service time, of this M/M/c/K server when
        its workers are busy a share `u` of the time (the busy share is what a CPU gauge
        shows; U rises monotonically with the load, so this inverts the table's U row).
        Beyond the table's top (a full queue) the top value."""
        inv = self._p99_of_u
        if inv is None:
            util = np.maximum.accumulate(self.rows[1])
            inv = self._p99_of_u = (util, self.rows[4].copy())
        return np.interp(u, inv[0], inv[1])

    def _mean_number(self, rho: np.ndarray) -> np.ndarray:
        p = _stationary(rho, self.c, self.K)
        return p @ np.arange(self.K + 1)

    # -- lookups (vectorised, no searching: every grid is uniform in its coordinate)

    def w_star(self, rho: np.ndarray) -> np.ndarray:
        """Stationary w for offered utilisations rho (>= 0)."""
        v = rho + 1.0
        np.divide(rho, v, out=v)
        v *= (self.GV - 1) / self.v_top
        f = np.minimum(v, self.GV - 1.000001, out=v)
        i = f.astype(np.intp)
        f -= i
        f *= self.dw_of_v.take(i)
        f += self.w_of_v.take(i)
        return f

    def cell(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f = np.maximum(w, 0.0)
        f *= self.G - 1
        np.minimum(f, self.G - 1.000001, out=f)
        i = f.astype(np.intp)
        f -= i
        return i, f

    def at(self, w: np.ndarray) -> list[np.ndarray]:
        """Every table row interpolated at states w: p_K, U, mean, p50, p99, cut."""
        i, f = self.cell(w)
        j = i + 1
        out = []
        for r in self.row_list:
            lo = r[i]
            out.append(lo + f * (r[j] - lo))
        return out

    def survival(self, w: np.ndarray, y: np.ndarray, nonpos: bool = True) -> np.ndarray:
        """P(response > y service times) at states w (bilinear in the two grids); w and y
        broadcast against each other (e.g. w of shape (n, 1) with y of shape (n, m)).
        `nonpos=False` tells that no y is <= 0 (that check is skipped)."""
        i, f = self.cell(w)
        if nonpos:
            g = np.maximum(y, 0.0)
            g /= self.y_top
        else:
            g = y / self.y_top
        np.sqrt(g, out=g)
        g *= self.Y - 1
        np.minimum(g, self.Y - 1.000001, out=g)
        k = g.astype(np.intp)
        g -= k
        s, ds = self.surv_flat, self.dsurv_flat
        # bilinear: along the response-time grid s[a] + g (s[a + 1] - s[a]) in the rows i and
        # i + 1, then along the state grid
        a = i * self.Y + k
        top = ds.take(a)
        top *= g
        top += s.take(a)
        a += self.Y
        bot = ds.take(a)
        bot *= g
        bot += s.take(a)
        bot -= top
        bot *= f
        bot += top
        if nonpos:
            bot[y <= 0.0] = 1.0
        return bot


def _diff(a: np.ndarray) -> np.ndarray:
    """a[i + 1] - a[i] for every i, 0 at the last point."""
    d = np.zeros_like(a)
    d[:-1] = a[1:] - a[:-1]
    return d


_TABLES: dict[tuple[int, int], QueueTable] = {}


def queue_table(c: int, K: int) -> QueueTable:
    """The (shared, read-only) table of an M/M/c/K server."""
    t = _TABLES.get((c, K))
    if t is None:
        t = _TABLES[(c, K)] = QueueTable(c, K)
    return t
